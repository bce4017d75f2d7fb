"""How scheduling plugs into the app: its routes and its background work."""

from __future__ import annotations

from aiohttp import web

from scheduling.appointment_routes import routes as appointment_routes
from scheduling.fhir import routes as fhir_routes
from scheduling.pages import routes as page_routes
from scheduling.routes import routes as calendar_routes
from scheduling.tasks import background


def install(app: web.Application) -> None:
    """Add scheduling's routes and its sender / no-show sweep (after the data layer opens)."""
    app.add_routes(calendar_routes)
    app.add_routes(appointment_routes)
    app.add_routes(fhir_routes)
    app.add_routes(page_routes)
    app.cleanup_ctx.append(background)

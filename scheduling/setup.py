"""How scheduling plugs into the app: its routes, pages, FHIR resources and background jobs."""

from __future__ import annotations

from aiohttp import web

from app.web.setup import add_openapi
from scheduling import (
    appointment_routes,
    consent_routes,
    fhir,
    merge_routes,
    message_routes,
    openapi,
    pages,
    routes,
    tasks,
)
from scheduling.metrics import setup_metrics


def setup(app: web.Application) -> None:
    app.add_routes(routes.routes)
    app.add_routes(merge_routes.routes)
    app.add_routes(appointment_routes.routes)
    app.add_routes(message_routes.routes)
    app.add_routes(consent_routes.routes)
    app.add_routes(fhir.routes)
    app.add_routes(pages.routes)
    tasks.setup_jobs(app)
    setup_metrics(app)
    add_openapi(app, openapi.PATHS, openapi.SCHEMAS)

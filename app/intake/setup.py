"""How intake plugs into the app: the staff routes and pages (the patient's are in check-in)."""

from __future__ import annotations

from aiohttp import web

from app.intake import openapi, pages, routes
from app.web.setup import add_openapi


def setup(app: web.Application) -> None:
    app.add_routes(routes.routes)
    app.add_routes(pages.routes)
    add_openapi(app, openapi.PATHS, openapi.SCHEMAS)

"""How accounts plug into the app: sign-in, users, and the staff landing pages."""

from __future__ import annotations

from aiohttp import web

from app.accounts import mfa_routes, openapi, pages, routes, security_routes
from app.web.setup import add_openapi


def setup(app: web.Application) -> None:
    app.add_routes(routes.routes)
    app.add_routes(mfa_routes.routes)
    app.add_routes(security_routes.routes)
    app.add_routes(pages.routes)
    app.add_routes(pages.LANDING_PAGES)
    add_openapi(app, openapi.PATHS, openapi.SCHEMAS)

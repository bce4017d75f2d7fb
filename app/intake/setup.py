"""How intake plugs into the app: the staff routes (the patient's are part of check-in)."""

from __future__ import annotations

from aiohttp import web

from app.intake import routes


def setup(app: web.Application) -> None:
    app.add_routes(routes.routes)

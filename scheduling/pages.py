"""Scheduling's own pages: the provider hours editor (the data comes from the JSON API)."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from app.web.identity import authorize
from scheduling.routes import MANAGERS

routes = web.RouteTableDef()


@routes.get("/scheduler/hours")
async def provider_hours_page(request: web.Request) -> web.StreamResponse:
    """Weekly hours, days off and extra hours of the clinic's providers, and its visit types."""
    staff = await authorize(request, *MANAGERS)
    return aiohttp_jinja2.render_template("scheduling/hours.html", request, {"staff": staff})

"""The admin's intake page: each visit type's questionnaire and red-flag rules, as JSON."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from app.core.models import Role
from app.web.identity import authorize

routes = web.RouteTableDef()


@routes.get("/admin/intake")
async def intake_admin(request: web.Request) -> web.StreamResponse:
    staff = await authorize(request, Role.ADMIN)
    return aiohttp_jinja2.render_template("intake/admin.html", request, {"staff": staff})

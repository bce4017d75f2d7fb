"""Where staff land: the home redirect and each role's landing page."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from app.accounts.routes import landing_for
from app.core.models import Role
from app.web.identity import authorize, optional_staff

routes = web.RouteTableDef()


@routes.get("/")
async def home(request: web.Request) -> web.StreamResponse:
    staff = await optional_staff(request)
    raise web.HTTPSeeOther(landing_for(staff.role) if staff else "/login")


def _landing(role: Role, template: str, *also: Role) -> web.RouteDef:
    """`role`'s landing page, open to the `also` roles too."""

    async def page(request: web.Request) -> web.StreamResponse:
        staff = await authorize(request, role, *also)
        return aiohttp_jinja2.render_template(template, request, {"staff": staff})

    return web.get(landing_for(role), page, name=f"landing_{role.value}")


LANDING_PAGES = [
    _landing(Role.ADMIN, "accounts/admin.html"),
    # Admins book too, and retry the clinic's failed emails from the scheduler page.
    _landing(Role.SCHEDULER, "accounts/scheduler.html", Role.ADMIN),
    _landing(Role.PROVIDER, "accounts/provider.html"),
]

"""The live queue pages: a provider's own queue, and the clinic's queues for schedulers."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from app.core.models import Role
from app.web.identity import authorize
from app.web.keys import SETTINGS

routes = web.RouteTableDef()


@routes.get("/provider/queue")
async def provider_queue_page(request: web.Request) -> web.StreamResponse:
    staff = await authorize(request, Role.PROVIDER)
    return aiohttp_jinja2.render_template(
        "signaling/clinic_queue.html",
        request,
        {
            "staff": staff,
            "can_act": True,
            # The page holds a warm connection and becomes the visit at the admit.
            "warm": request.app[SETTINGS].warm_waiting,
            "provider_name": staff.user.full_name,
        },
    )


@routes.get("/scheduler/queues")
async def clinic_queues_page(request: web.Request) -> web.StreamResponse:
    staff = await authorize(request, Role.SCHEDULER, Role.ADMIN)
    return aiohttp_jinja2.render_template(
        "signaling/clinic_queue.html", request, {"staff": staff, "can_act": False}
    )

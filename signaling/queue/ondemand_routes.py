"""A provider of the walk-in queue takes the next walk-in (the one who arrived first)."""

from __future__ import annotations

from aiohttp import web

from app.core.errors import NotFound
from app.core.models import Role, User
from app.web.audited import record
from app.web.identity import authorize, staff_actor
from app.web.keys import DATABASE
from signaling.ondemand import service as ondemand
from signaling.queue import service as clinic_queue
from signaling.queue.keys import NOTIFIER
from signaling.rooms import WAITING_NAMESPACE, appointment_room
from signaling.server import SOCKET_SERVER

routes = web.RouteTableDef()


@routes.post("/api/on-demand/take")
async def take_next(request: web.Request) -> web.Response:
    """Admit the walk-in who arrived first; the visit is the taking provider's."""
    staff = await authorize(request, Role.PROVIDER)
    async with request.app[DATABASE].session() as session:
        provider = await session.get(User, staff.id)
        assert provider is not None
        if provider.id not in await ondemand.pool_of_provider(session, provider.id):
            raise NotFound("You do not take walk-ins.", fields={"provider": "not in the queue"})
        appointment_id = await ondemand.next_walk_in(session, provider.clinic_id)
        if appointment_id is None:
            raise NotFound("Nobody is waiting in the walk-in queue.", fields={"queue": "empty"})
        visit = await clinic_queue.admit(session, provider, appointment_id)
    url = f"/visit/{visit.id}"
    await request.app[SOCKET_SERVER].emit(
        "admitted",
        {"visit_id": str(visit.id), "url": url},
        room=appointment_room(appointment_id),
        namespace=WAITING_NAMESPACE,
    )
    await record(
        request,
        staff_actor(request, staff),
        "visit.admit",
        object_type="appointment",
        object_id=appointment_id,
        patient_id=visit.patient_id,
        detail="walk-in taken",
    )
    request.app[NOTIFIER].provider_changed_soon(provider.id)
    return web.json_response(
        {"visit_id": str(visit.id), "url": url, "appointment_id": str(appointment_id)}
    )

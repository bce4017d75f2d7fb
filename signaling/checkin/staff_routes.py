"""What staff do about a patient's check-in: unlock a join link locked by wrong dates of birth."""

from __future__ import annotations

from aiohttp import web

from app.core.models import Role
from app.web.api import path_uuid
from app.web.audited import Recorded, run_audited
from app.web.identity import authorize, staff_actor
from signaling.checkin import service as checkin

routes = web.RouteTableDef()


@routes.post("/api/appointments/{appointment_id}/unlock-checkin")
async def unlock_checkin(request: web.Request) -> web.Response:
    """Admins, schedulers and the appointment's own provider, after calling the patient."""
    actor = staff_actor(
        request, await authorize(request, Role.ADMIN, Role.SCHEDULER, Role.PROVIDER)
    )
    appointment_id = path_uuid(request, "appointment_id")
    view = await run_audited(
        request,
        actor,
        lambda session: checkin.unlock_link(session, actor, appointment_id),
        action="checkin.unlock",
        object_type="appointment",
        object_id=appointment_id,
        recorded=lambda view: Recorded(patient_id=view.patient.id),
    )
    patient = view.patient
    return web.json_response(
        {
            "appointment_id": str(appointment_id),
            "patient_name": f"{patient.given_name} {patient.family_name}",
            "link_locked": False,
        }
    )

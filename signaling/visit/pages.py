"""The visit page (provider, patient or guest) and its ICE servers."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from app.core import audit
from app.core.errors import NotFound
from app.core.models import Patient, User
from app.web.api import path_uuid
from app.web.identity import actor_of, client_addr, optional_staff, refuse
from app.web.keys import DATABASE, SETTINGS
from scheduling.links import join_token
from scheduling.models import Appointment
from signaling.checkin.patient_session import PATIENT_COOKIE, read_patient_token
from signaling.relay.ice import browser_ice_servers
from signaling.visit import attendance
from signaling.visit import service as visits
from signaling.visit.guest_tokens import GUEST_COOKIE, read_guest_session

routes = web.RouteTableDef()


@routes.get("/visit/{visit_id}")
async def visit_page(request: web.Request) -> web.StreamResponse:
    """Where an admit takes both sides: the visit's own provider, or its patient."""
    who = await visit_attendee(request)
    await _audit_visit(request, who, "visit.open")
    ended = who.visit.ended_at is not None
    async with request.app[DATABASE].session() as session:
        provider = await session.get(User, who.visit.provider_id)
        patient = await session.get(Patient, who.visit.patient_id)
        # The provider sees who took part once the visit is over.
        summary = (
            await attendance.summary(session, who.visit)
            if ended and who.role == visits.PROVIDER
            else None
        )
        # The patient's way back to their link, where the visit summary appears after the visit.
        summary_path = None
        if who.role == visits.PATIENT:
            appointment = await session.get(Appointment, who.visit.appointment_id)
            assert appointment is not None
            summary_path = f"/join/{join_token(request.app[SETTINGS], appointment)}"
    assert provider is not None and patient is not None
    if summary is not None:
        await _audit_visit(request, who, "visit.attendance_read")
    return aiohttp_jinja2.render_template(
        "signaling/visit.html",
        request,
        {
            "visit": who.visit,
            "role": who.role,
            "ended": ended,
            "attendance": summary,
            "summary_path": summary_path,
            "provider_name": provider.full_name,
            "patient_name": f"{patient.given_name} {patient.family_name}",
        },
    )


async def visit_attendee(request: web.Request) -> visits.Attendee:
    """The visit's provider, patient or admitted guest making this request; anyone else: 404."""
    visit_id = path_uuid(request, "visit_id")
    staff = await optional_staff(request)
    settings = request.app[SETTINGS]
    claims = read_patient_token(settings, request.cookies.get(PATIENT_COOKIE))
    guest = read_guest_session(settings, request.cookies.get(GUEST_COOKIE))
    try:
        async with request.app[DATABASE].session() as session:
            return await visits.attendee(
                session,
                visit_id,
                staff_id=staff.id if staff else None,
                patient=claims,
                guest=guest,
            )
    except NotFound as exc:
        raise await refuse(request, exc, action="visit.open") from None


def attendee_actor(request: web.Request, who: visits.Attendee) -> audit.Actor:
    if who.role == visits.PROVIDER:
        return actor_of(request)
    return audit.Actor(str(who.person_id), who.role, str(who.visit.clinic_id), client_addr(request))


async def _audit_visit(request: web.Request, who: visits.Attendee, action: str) -> None:
    await audit.record(
        request.app[DATABASE],
        action=action,
        outcome=audit.SUCCESS,
        actor=attendee_actor(request, who),
        object_type="visit",
        object_id=who.visit.id,
        patient_id=who.visit.patient_id,
    )


@routes.get("/api/visits/{visit_id}/ice-servers")
async def visit_ice_servers(request: web.Request) -> web.StreamResponse:
    """STUN/TURN for this attendee's browser, with short-lived TURN credentials."""
    who = await visit_attendee(request)
    servers = browser_ice_servers(request.app[SETTINGS], who.turn_user)
    return web.json_response({"ice_servers": servers}, headers={"Cache-Control": "no-store"})

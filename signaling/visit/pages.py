"""The visit page (provider, patient or guest) and its ICE servers."""

from __future__ import annotations

import contextlib

import aiohttp_jinja2
from aiohttp import web

from app.core.config import Settings
from app.core.errors import TryAgain
from app.core.models import Clinic, Patient, User
from app.web.keys import DATABASE, SETTINGS
from app.web.nodes import place_visit
from scheduling.links import join_token
from scheduling.models import Appointment
from signaling.queue.chart import record_url
from signaling.relay.ice import browser_ice_servers
from signaling.visit import attendance
from signaling.visit import service as visits
from signaling.visit.attendees import record_visit, visit_attendee
from signaling.visit.routing import placement_public

routes = web.RouteTableDef()


@routes.get("/visit/{visit_id}")
async def visit_page(request: web.Request) -> web.StreamResponse:
    """Where an admit takes both sides: the visit's own provider, or its patient."""
    who = await visit_attendee(request)
    await record_visit(request, who, "visit.open")
    ended = who.visit.ended_at is not None
    async with request.app[DATABASE].session() as session:
        provider = await session.get(User, who.visit.provider_id)
        patient = await session.get(Patient, who.visit.patient_id)
        clinic = await session.get(Clinic, who.visit.clinic_id)
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
        await record_visit(request, who, "visit.attendance_read")
    # The first connection needs no extra request for its STUN/TURN servers (short-lived TURN
    # credentials; a reconnect asks /api/visits/{id}/ice-servers again).
    ice_servers = None if ended else browser_ice_servers(request.app[SETTINGS], who.turn_user)
    # The node that runs the visit, so the page's socket goes straight there (None while the
    # registry is out: the page asks again).
    socket_path = None
    if not ended:
        with contextlib.suppress(TryAgain):
            socket_path = placement_public(await place_visit(request.app, who.visit.id))[
                "socket_path"
            ]
    response = aiohttp_jinja2.render_template(
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
            # The visit's provider reads the patient's record: their name leads to it.
            "patient_record_url": record_url(patient.id) if who.role == visits.PROVIDER else None,
            # The patient and guests read whom to call; staff know their own clinic.
            **(
                {"clinic_name": clinic.name, "clinic_phone": clinic.phone}
                if clinic is not None and who.role != visits.PROVIDER
                else {}
            ),
            "ice_servers": ice_servers,
            "ice_transport_policy": ice_transport_policy(request.app[SETTINGS]),
            "socket_path": socket_path,
        },
    )
    response.headers["Cache-Control"] = "no-store"  # it carries TURN credentials
    return response


@routes.get("/api/visits/{visit_id}/ice-servers")
async def visit_ice_servers(request: web.Request) -> web.StreamResponse:
    """STUN/TURN for this attendee's browser, with short-lived TURN credentials."""
    who = await visit_attendee(request)
    settings = request.app[SETTINGS]
    body = {
        "ice_servers": browser_ice_servers(settings, who.turn_user),
        "ice_transport_policy": ice_transport_policy(settings),
    }
    return web.json_response(body, headers={"Cache-Control": "no-store"})


def ice_transport_policy(settings: Settings) -> str:
    """The browsers' RTCPeerConnection `iceTransportPolicy`: "relay" (TURN candidates only)
    with OPENCONSULT_RTC_RELAY_ONLY, else "all"."""
    return "relay" if settings.rtc_relay_only else "all"

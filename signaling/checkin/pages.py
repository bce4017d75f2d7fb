"""The page behind a patient's join link: where check-in starts (never any patient data)."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from app.core.models import Clinic, User, utcnow
from app.web.keys import DATABASE, SETTINGS
from scheduling import availability
from scheduling.links import LinkState, closes_at, link_state, opens_at, read_join_link
from scheduling.mail import local_text
from scheduling.models import Appointment
from signaling.models import CheckIn

routes = web.RouteTableDef()


_REASONS = {
    LinkState.INVALID: "This link is not valid. Please use the link from your latest "
    "appointment email, or contact the clinic.",
    LinkState.CANCELLED: "This appointment was cancelled, so the link no longer works. "
    "Please contact the clinic to book a new time.",
    LinkState.REPLACED: "This appointment was moved to a new time, so this link no longer "
    "works. Please use the link in the newer email.",
    LinkState.EXPIRED: "This visit is over, so the link has expired.",
}


# Link states whose page names the provider and time (the summary itself needs the session).
_SHOWN = (LinkState.OPEN, LinkState.TOO_EARLY, LinkState.VISIT_ENDED)


@routes.get("/join/{token}")
@routes.get("/j/{token}")
async def join_page(request: web.Request) -> web.StreamResponse:
    """What a patient sees behind their link (long, or short `/j/<code>`); no patient data."""
    settings = request.app[SETTINGS]
    appointment = provider = clinic = None
    locked = False
    zone = "UTC"
    async with request.app[DATABASE].session() as session:
        claim = await read_join_link(session, settings, request.match_info["token"])
        if claim is not None:
            appointment = await session.get(Appointment, claim.appointment_id)
            if appointment is not None:
                provider = await session.get(User, appointment.provider_id)
                clinic = await session.get(Clinic, appointment.clinic_id)
                schedule = await availability.find_schedule(session, appointment.provider_id)
                zone = schedule.timezone if schedule else "UTC"
                check_in = await session.get(CheckIn, appointment.id)
                locked = check_in is not None and check_in.locks(appointment.version)
    state = link_state(settings, appointment, claim, utcnow())
    context: dict[str, object] = {"state": state.value, "reason": _REASONS.get(state)}
    if clinic is not None:
        context |= {"clinic_name": clinic.name, "clinic_phone": clinic.phone}
    if appointment is not None and provider is not None and state in _SHOWN:
        context["on_demand"] = appointment.on_demand
        context |= {
            "provider_name": provider.full_name,
            "starts": local_text(appointment.start_at, zone),
            "starts_iso": appointment.start_at.isoformat(),
            "opens": local_text(opens_at(settings, appointment), zone),
            "closes": local_text(closes_at(settings, appointment), zone),
            "token": request.match_info["token"],
        }
    status = 200 if state in _SHOWN else 410
    if state == LinkState.INVALID:
        status = 404
    elif state == LinkState.OPEN and locked:
        context["state"] = "locked"  # what the check-in API would answer too: 423
        status = 423
    return aiohttp_jinja2.render_template("signaling/join.html", request, context, status=status)

"""HTTP handlers for appointments and the patient's join page."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from app.api import model_response, path_uuid
from app.core.errors import DomainError, Forbidden
from app.core.models import Role, User, utcnow
from app.events import appointment_changed
from app.keys import DATABASE, SETTINGS
from app.security import Staff, authorize
from scheduling import availability, service
from scheduling.links import (
    LinkState,
    closes_at,
    join_url,
    link_state,
    opens_at,
    read_join_token,
)
from scheduling.mail import local_text
from scheduling.models import Appointment
from scheduling.routes import ANY_STAFF, MANAGERS, audit_patient_read, audited_refusal
from scheduling.schemas import AppointmentQuery, BookIn, CancelIn, RescheduleIn
from scheduling.views import appointment_public, booked_public, parse, read_body

routes = web.RouteTableDef()


async def _view_for(request: web.Request, staff: Staff, action: str) -> service.AppointmentView:
    """The appointment in the path, if the caller may see it (a provider: their own only)."""
    try:
        async with request.app[DATABASE].session() as session:
            view = await service.get_view(
                session,
                clinic_id=staff.clinic_id,
                appointment_id=path_uuid(request, "appointment_id"),
            )
        if staff.role == Role.PROVIDER and view.appointment.provider_id != staff.id:
            raise Forbidden("Providers see their own appointments only.")
    except DomainError as exc:
        raise await audited_refusal(request, exc, action) from None
    return view


@routes.post("/api/appointments")
async def book(request: web.Request) -> web.Response:
    staff = await authorize(request, *MANAGERS)
    book_in = await read_body(request, BookIn)
    settings = request.app[SETTINGS]
    try:
        async with request.app[DATABASE].session() as session:
            view = await service.book(
                session, settings=settings, clinic_id=staff.clinic_id, book_in=book_in
            )
    except DomainError as exc:
        raise await audited_refusal(request, exc, "appointment.book") from None
    await audit_patient_read(request, staff, [view.patient], "appointment.book")
    return model_response(booked_public(view, join_url(settings, view.appointment)), status=201)


@routes.get("/api/appointments")
async def list_appointments(request: web.Request) -> web.Response:
    staff = await authorize(request, *ANY_STAFF)
    query = parse(AppointmentQuery, dict(request.query))
    provider_id = query.provider_id
    if staff.role == Role.PROVIDER:
        if provider_id not in (None, staff.id):
            raise await audited_refusal(
                request, Forbidden("Providers see their own calendar only."), "appointment.list"
            )
        provider_id = staff.id
    async with request.app[DATABASE].session() as session:
        zone = query.tz
        if zone is None and provider_id is not None:
            schedule = await availability.find_schedule(session, provider_id)
            zone = schedule.timezone if schedule else None
        views = await service.list_views(
            session,
            clinic_id=staff.clinic_id,
            provider_id=provider_id,
            first_day=query.start,
            last_day=query.end,
            zone_name=zone or "UTC",
        )
    await audit_patient_read(
        request, staff, list({v.patient.id: v.patient for v in views}.values()), "appointment.list"
    )
    return model_response([appointment_public(v, query.tz) for v in views])


@routes.get("/api/appointments/{appointment_id}")
async def get_appointment(request: web.Request) -> web.Response:
    staff = await authorize(request, *ANY_STAFF)
    view = await _view_for(request, staff, "appointment.read")
    await audit_patient_read(request, staff, [view.patient], "appointment.read")
    return model_response(appointment_public(view))


@routes.post("/api/appointments/{appointment_id}/reschedule")
async def reschedule(request: web.Request) -> web.Response:
    staff = await authorize(request, *MANAGERS)
    body = await read_body(request, RescheduleIn)
    settings = request.app[SETTINGS]
    try:
        async with request.app[DATABASE].session() as session:
            view = await service.reschedule(
                session,
                settings=settings,
                clinic_id=staff.clinic_id,
                appointment_id=path_uuid(request, "appointment_id"),
                start=body.start,
            )
    except DomainError as exc:
        raise await audited_refusal(request, exc, "appointment.reschedule") from None
    await audit_patient_read(request, staff, [view.patient], "appointment.reschedule")
    await appointment_changed(request.app, view.appointment.id)
    return model_response(booked_public(view, join_url(settings, view.appointment)))


@routes.post("/api/appointments/{appointment_id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    staff = await authorize(request, *MANAGERS)
    body = await read_body(request, CancelIn)
    try:
        async with request.app[DATABASE].session() as session:
            view = await service.cancel(
                session,
                settings=request.app[SETTINGS],
                clinic_id=staff.clinic_id,
                appointment_id=path_uuid(request, "appointment_id"),
                reason=body.reason,
            )
    except DomainError as exc:
        raise await audited_refusal(request, exc, "appointment.cancel") from None
    await audit_patient_read(request, staff, [view.patient], "appointment.cancel")
    await appointment_changed(request.app, view.appointment.id)
    return model_response(appointment_public(view))


@routes.post("/api/appointments/{appointment_id}/no-show")
async def no_show(request: web.Request) -> web.Response:
    staff = await authorize(request, *ANY_STAFF)
    view = await _view_for(request, staff, "appointment.noshow")
    try:
        async with request.app[DATABASE].session() as session:
            view = await service.mark_noshow(
                session, clinic_id=staff.clinic_id, appointment_id=view.appointment.id
            )
    except DomainError as exc:
        raise await audited_refusal(request, exc, "appointment.noshow") from None
    await audit_patient_read(request, staff, [view.patient], "appointment.noshow")
    await appointment_changed(request.app, view.appointment.id)
    return model_response(appointment_public(view))


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
async def join_page(request: web.Request) -> web.StreamResponse:
    """What a patient sees behind their link; never any patient data."""
    settings = request.app[SETTINGS]
    claim = read_join_token(settings, request.match_info["token"])
    appointment = provider = None
    zone = "UTC"
    if claim is not None:
        async with request.app[DATABASE].session() as session:
            appointment = await session.get(Appointment, claim.appointment_id)
            if appointment is not None:
                provider = await session.get(User, appointment.provider_id)
                schedule = await availability.find_schedule(session, appointment.provider_id)
                zone = schedule.timezone if schedule else "UTC"
    state = link_state(settings, appointment, claim, utcnow())
    context: dict[str, object] = {"state": state.value, "reason": _REASONS.get(state)}
    if appointment is not None and provider is not None and state in _SHOWN:
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
    return aiohttp_jinja2.render_template("signaling/join.html", request, context, status=status)

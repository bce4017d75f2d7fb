"""HTTP handlers for appointments and the patient's join page."""

from __future__ import annotations

from aiohttp import web

from app.core.errors import DomainError, Forbidden
from app.core.models import Role
from app.web.api import model_response, path_uuid
from app.web.events import appointment_changed
from app.web.identity import Staff, authorize
from app.web.keys import DATABASE, SETTINGS
from scheduling import availability, service
from scheduling.links import (
    join_url,
)
from scheduling.models import AppointmentView
from scheduling.routes import ANY_STAFF, MANAGERS, audit_patient_read, audited_refusal
from scheduling.schemas import AppointmentQuery, BookIn, CancelIn, RescheduleIn
from scheduling.views import appointment_public, booked_public, parse, read_body

routes = web.RouteTableDef()


async def _view_for(request: web.Request, staff: Staff, action: str) -> AppointmentView:
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

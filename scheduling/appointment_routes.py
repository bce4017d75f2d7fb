"""HTTP handlers for appointments: book, list, read, reschedule, cancel, no-show, resend link."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from functools import partial

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from app.web.api import model_response, path_uuid
from app.web.audited import Recorded, record, run_audited
from app.web.identity import Actor, authorize, staff_actor
from app.web.keys import DATABASE, SETTINGS
from scheduling import lifecycle, service
from scheduling.handover import Handover, handovers
from scheduling.models import AppointmentView
from scheduling.routes import ANY_STAFF, MANAGERS
from scheduling.schemas import AppointmentQuery, BookIn, CancelIn, RescheduleIn
from scheduling.views import (
    appointment_detail,
    appointment_public,
    booked_public,
    parse,
    read_body,
    record_patients,
)

routes = web.RouteTableDef()


@routes.post("/api/appointments")
async def book(request: web.Request) -> web.Response:
    actor = staff_actor(request, await authorize(request, *MANAGERS))
    book_in = await read_body(request, BookIn)
    settings = request.app[SETTINGS]
    view = await run_audited(
        request,
        actor,
        lambda session: service.book(session, actor, book_in, settings=settings),
        action="appointment.book",
        audit_success=False,
        audit_failures=False,
    )
    await record_patients(request, actor, "appointment.book", [view.patient])
    if book_in.text_consent:
        await record(
            request,
            actor,
            "patient.text_consent.agree",
            object_type="patient",
            object_id=view.patient.id,
            patient_id=view.patient.id,
            detail="way=staff_at_booking",
        )
    return model_response(booked_public(view, await handover_of(request, view)), status=201)


async def handover_of(
    request: web.Request, view: AppointmentView, *, with_messages: bool = False
) -> Handover:
    """The join link, warnings and emails of one appointment the caller was allowed to read."""
    return (await handovers_of(request, [view], with_messages=with_messages))[view.appointment.id]


async def handovers_of(
    request: web.Request, views: list[AppointmentView], *, with_messages: bool = False
) -> dict[uuid.UUID, Handover]:
    async with request.app[DATABASE].session() as session:
        result = await handovers(session, request.app[SETTINGS], views, with_messages=with_messages)
        await session.commit()  # short links made for appointments that had none yet
    return result


@routes.get("/api/appointments")
async def list_appointments(request: web.Request) -> web.Response:
    actor = staff_actor(request, await authorize(request, *ANY_STAFF))
    query = parse(AppointmentQuery, dict(request.query))
    views = await run_audited(
        request,
        actor,
        lambda session: service.list_views(
            session,
            actor,
            provider_id=query.provider_id,
            first_day=query.start,
            last_day=query.end,
            zone_name=query.tz,
        ),
        action="appointment.list",
        audit_success=False,
        audit_failures=False,
    )
    await record_patients(request, actor, "appointment.list", [v.patient for v in views])
    handed = await handovers_of(request, views)
    return model_response(
        [appointment_public(v, query.tz, handed[v.appointment.id]) for v in views]
    )


AppointmentWork = Callable[[AsyncSession, Actor, uuid.UUID], Awaitable[AppointmentView]]


async def on_appointment(
    request: web.Request, actor: Actor, action: str, work: AppointmentWork
) -> AppointmentView:
    """Do `work` as `actor` on the appointment in the path. A refusal is audited as denied;
    success as a read of the appointment's patient."""
    appointment_id = path_uuid(request, "appointment_id")
    view = await run_audited(
        request,
        actor,
        lambda session: work(session, actor, appointment_id),
        action=action,
        audit_success=False,
        audit_failures=False,
    )
    await record_patients(request, actor, action, [view.patient])
    return view


@routes.get("/api/appointments/{appointment_id}")
async def get_appointment(request: web.Request) -> web.Response:
    actor = staff_actor(request, await authorize(request, *ANY_STAFF))
    view = await on_appointment(request, actor, "appointment.read", service.appointment_for)
    return model_response(
        appointment_detail(view, await handover_of(request, view, with_messages=True))
    )


@routes.post("/api/appointments/{appointment_id}/reschedule")
async def reschedule(request: web.Request) -> web.Response:
    actor = staff_actor(request, await authorize(request, *MANAGERS))
    body = await read_body(request, RescheduleIn)
    settings = request.app[SETTINGS]
    view = await on_appointment(
        request,
        actor,
        "appointment.reschedule",
        partial(service.reschedule, settings=settings, start=body.start),
    )
    return model_response(booked_public(view, await handover_of(request, view)))


@routes.post("/api/appointments/{appointment_id}/resend-link")
async def resend_link(request: web.Request) -> web.Response:
    """A new join link, emailed when the patient has an address and texted when they agreed to
    texts; the old link stops working.

    Admins and schedulers of the clinic, and the appointment's own provider.
    """
    actor = staff_actor(request, await authorize(request, *ANY_STAFF))
    settings = request.app[SETTINGS]
    appointment_id = path_uuid(request, "appointment_id")
    view = await run_audited(
        request,
        actor,
        lambda session: service.resend_link(session, actor, appointment_id, settings=settings),
        action="appointment.resend_link",
        object_type="appointment",
        object_id=appointment_id,
        recorded=lambda view: Recorded(patient_id=view.patient.id),
    )
    return model_response(booked_public(view, await handover_of(request, view)))


@routes.post("/api/appointments/{appointment_id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    actor = staff_actor(request, await authorize(request, *MANAGERS))
    body = await read_body(request, CancelIn)
    settings = request.app[SETTINGS]
    view = await on_appointment(
        request,
        actor,
        "appointment.cancel",
        partial(service.cancel, settings=settings, reason=body.reason),
    )
    return model_response(appointment_public(view))


@routes.post("/api/appointments/{appointment_id}/no-show")
async def no_show(request: web.Request) -> web.Response:
    actor = staff_actor(request, await authorize(request, *ANY_STAFF))
    view = await on_appointment(request, actor, "appointment.noshow", lifecycle.mark_noshow)
    return model_response(appointment_public(view))

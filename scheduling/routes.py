"""HTTP handlers for patients, provider calendars, appointment types and slot search."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.models import Role
from app.web.api import model_response, path_uuid
from app.web.audited import run_audited
from app.web.identity import Staff, authorize, staff_actor
from app.web.keys import DATABASE
from scheduling import availability, calendars, patients
from scheduling.models import AvailabilityException, AvailabilityRule, ProviderSchedule
from scheduling.schemas import (
    AppointmentTypeIn,
    AppointmentTypePublic,
    ExceptionIn,
    ExceptionPublic,
    PatientCreate,
    PatientPublic,
    PatientQuery,
    RulePublic,
    ScheduleIn,
    SchedulePublic,
    SlotQuery,
)
from scheduling.views import parse, read_body, record_patients, slots_json

routes = web.RouteTableDef()
T = TypeVar("T")
MANAGERS = (Role.ADMIN, Role.SCHEDULER)
ANY_STAFF = (Role.ADMIN, Role.SCHEDULER, Role.PROVIDER)


@routes.post("/api/patients")
async def create_patient(request: web.Request) -> web.Response:
    staff = await authorize(request, *MANAGERS)
    patient_in = await read_body(request, PatientCreate)
    async with request.app[DATABASE].session() as session:
        patient = await patients.create_patient(
            session, clinic_id=staff.clinic_id, patient_in=patient_in
        )
    await record_patients(request, staff_actor(request, staff), "patient.create", [patient])
    return model_response(PatientPublic.model_validate(patient, from_attributes=True), status=201)


@routes.get("/api/patients")
async def search_patients(request: web.Request) -> web.Response:
    staff = await authorize(request, *MANAGERS)
    query = parse(PatientQuery, dict(request.query))
    async with request.app[DATABASE].session() as session:
        found = await patients.search_patients(
            session,
            clinic_id=staff.clinic_id,
            text=query.q,
            birth_date=query.birth_date,
            limit=query.limit,
        )
    await record_patients(request, staff_actor(request, staff), "patient.search", found)
    return model_response([PatientPublic.model_validate(p, from_attributes=True) for p in found])


@routes.get("/api/patients/{patient_id}")
async def get_patient(request: web.Request) -> web.Response:
    staff = await authorize(request, *MANAGERS)
    actor = staff_actor(request, staff)
    patient_id = path_uuid(request, "patient_id")
    patient = await run_audited(
        request,
        actor,
        lambda session: patients.get_patient(
            session, clinic_id=staff.clinic_id, patient_id=patient_id
        ),
        action="patient.read",
        audit_success=False,
        audit_failures=False,
    )
    await record_patients(request, actor, "patient.read", [patient])
    return model_response(PatientPublic.model_validate(patient, from_attributes=True))


@routes.get("/api/providers")
async def list_providers(request: web.Request) -> web.Response:
    staff = await authorize(request, *ANY_STAFF)
    async with request.app[DATABASE].session() as session:
        providers = await calendars.providers(session, staff_actor(request, staff))
    return web.json_response(
        [{"id": str(p.id), "full_name": p.full_name, "timezone": zone} for p, zone in providers]
    )


def _schedule_public(
    schedule: ProviderSchedule, rules: list[AvailabilityRule]
) -> dict[str, object]:
    body = SchedulePublic(
        id=schedule.id,
        provider_id=schedule.provider_id,
        timezone=schedule.timezone,
        min_notice_minutes=schedule.min_notice_minutes,
        horizon_days=schedule.horizon_days,
        rules=[RulePublic(weekday=r.weekday, start=r.start_time, end=r.end_time) for r in rules],
    )
    return body.model_dump(mode="json")


def _exceptions_public(items: list[AvailabilityException]) -> list[dict[str, object]]:
    return [
        ExceptionPublic.model_validate(e, from_attributes=True).model_dump(mode="json")
        for e in items
    ]


@routes.get("/api/providers/{provider_id}/schedule")
async def get_schedule(request: web.Request) -> web.Response:
    actor = staff_actor(request, await authorize(request, *ANY_STAFF))
    provider_id = path_uuid(request, "provider_id")
    hours = await run_audited(
        request,
        actor,
        lambda session: calendars.schedule_of(session, actor, provider_id),
        action="schedule.read",
        audit_success=False,
        audit_failures=False,
    )
    return web.json_response(
        _schedule_public(hours.schedule, hours.rules)
        | {"exceptions": _exceptions_public(hours.exceptions)}
    )


async def _write_hours(
    request: web.Request, staff: Staff, write: Callable[[AsyncSession, uuid.UUID], Awaitable[T]]
) -> T:
    """Change the hours of the provider in the path (of the caller's clinic); refusals audited."""
    provider_id = path_uuid(request, "provider_id")
    return await run_audited(
        request,
        staff_actor(request, staff),
        lambda session: write(session, provider_id),
        action="schedule.write",
        audit_success=False,
        audit_failures=False,
    )


@routes.put("/api/providers/{provider_id}/schedule")
async def put_schedule(request: web.Request) -> web.Response:
    staff = await authorize(request, *MANAGERS)
    schedule_in = await read_body(request, ScheduleIn)
    schedule, rules = await _write_hours(
        request,
        staff,
        lambda session, provider_id: availability.put_schedule(
            session, clinic_id=staff.clinic_id, provider_id=provider_id, schedule_in=schedule_in
        ),
    )
    return web.json_response(_schedule_public(schedule, rules))


@routes.post("/api/providers/{provider_id}/exceptions")
async def add_exception(request: web.Request) -> web.Response:
    staff = await authorize(request, *MANAGERS)
    exception_in = await read_body(request, ExceptionIn)
    exception = await _write_hours(
        request,
        staff,
        lambda session, provider_id: availability.add_exception(
            session, clinic_id=staff.clinic_id, provider_id=provider_id, exception_in=exception_in
        ),
    )
    return web.json_response(_exceptions_public([exception])[0], status=201)


@routes.delete("/api/providers/{provider_id}/exceptions/{exception_id}")
async def remove_exception(request: web.Request) -> web.Response:
    staff = await authorize(request, *MANAGERS)
    await _write_hours(
        request,
        staff,
        lambda session, provider_id: availability.remove_exception(
            session,
            clinic_id=staff.clinic_id,
            provider_id=provider_id,
            exception_id=path_uuid(request, "exception_id"),
        ),
    )
    return web.Response(status=204)


@routes.get("/api/appointment-types")
async def list_types(request: web.Request) -> web.Response:
    staff = await authorize(request, *ANY_STAFF)
    async with request.app[DATABASE].session() as session:
        kinds = await availability.list_types(session, clinic_id=staff.clinic_id)
    return model_response(
        [AppointmentTypePublic.model_validate(k, from_attributes=True) for k in kinds]
    )


@routes.post("/api/appointment-types")
async def create_type(request: web.Request) -> web.Response:
    staff = await authorize(request, *MANAGERS)
    type_in = await read_body(request, AppointmentTypeIn)
    async with request.app[DATABASE].session() as session:
        kind = await availability.create_type(session, clinic_id=staff.clinic_id, type_in=type_in)
    return model_response(
        AppointmentTypePublic.model_validate(kind, from_attributes=True), status=201
    )


@routes.get("/api/providers/{provider_id}/slots")
async def search_slots(request: web.Request) -> web.Response:
    actor = staff_actor(request, await authorize(request, *ANY_STAFF))
    provider_id = path_uuid(request, "provider_id")
    query = parse(SlotQuery, dict(request.query))
    found = await run_audited(
        request,
        actor,
        lambda session: calendars.provider_slots(
            session,
            actor,
            provider_id,
            type_id=query.appointment_type_id,
            first_day=query.start,
            last_day=query.end,
        ),
        action="slots.read",
        audit_success=False,
        audit_failures=False,
    )
    provider_zone = found.schedule.timezone
    return web.Response(
        text=slots_json(provider_id, query.tz or provider_zone, provider_zone, found.spans),
        content_type="application/json",
    )

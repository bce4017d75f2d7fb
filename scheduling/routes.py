"""HTTP handlers for patients, provider calendars, appointment types and slot search."""

from __future__ import annotations

import uuid

from aiohttp import web

from app.core import audit
from app.core.errors import DomainError, Forbidden, InvalidInput
from app.core.models import Patient, Role, utcnow
from app.web.api import model_response, path_uuid
from app.web.identity import Staff, actor_of, authorize, refuse
from app.web.keys import DATABASE
from scheduling import availability, patients
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
    zone_named,
)
from scheduling.views import parse, read_body, slots_json

routes = web.RouteTableDef()
MANAGERS = (Role.ADMIN, Role.SCHEDULER)
ANY_STAFF = (Role.ADMIN, Role.SCHEDULER, Role.PROVIDER)


async def audit_patient_read(
    request: web.Request, staff: Staff, patients_read: list[Patient], action: str
) -> None:
    """One audit event per patient whose data leaves the server."""
    for patient in patients_read:
        await audit.record(
            request.app[DATABASE],
            action=action,
            outcome=audit.SUCCESS,
            actor=actor_of(request, staff),
            object_type="patient",
            object_id=patient.id,
            patient_id=patient.id,
        )


def own_calendar(staff: Staff, provider_id: uuid.UUID) -> None:
    """A provider may look at their own calendar only."""
    if staff.role == Role.PROVIDER and staff.id != provider_id:
        raise Forbidden("Providers see their own calendar only.")


async def audited_refusal(request: web.Request, exc: DomainError, action: str) -> DomainError:
    if exc.status in (403, 404):
        return await refuse(request, exc, action=action)
    return exc


@routes.post("/api/patients")
async def create_patient(request: web.Request) -> web.Response:
    staff = await authorize(request, *MANAGERS)
    patient_in = await read_body(request, PatientCreate)
    async with request.app[DATABASE].session() as session:
        patient = await patients.create_patient(
            session, clinic_id=staff.clinic_id, patient_in=patient_in
        )
    await audit_patient_read(request, staff, [patient], "patient.create")
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
    await audit_patient_read(request, staff, found, "patient.search")
    return model_response([PatientPublic.model_validate(p, from_attributes=True) for p in found])


@routes.get("/api/patients/{patient_id}")
async def get_patient(request: web.Request) -> web.Response:
    staff = await authorize(request, *MANAGERS)
    try:
        async with request.app[DATABASE].session() as session:
            patient = await patients.get_patient(
                session, clinic_id=staff.clinic_id, patient_id=path_uuid(request, "patient_id")
            )
    except DomainError as exc:
        raise await audited_refusal(request, exc, "patient.read") from None
    await audit_patient_read(request, staff, [patient], "patient.read")
    return model_response(PatientPublic.model_validate(patient, from_attributes=True))


@routes.get("/api/providers")
async def list_providers(request: web.Request) -> web.Response:
    staff = await authorize(request, *ANY_STAFF)
    async with request.app[DATABASE].session() as session:
        providers = await availability.list_providers(session, clinic_id=staff.clinic_id)
        zones = {}
        for p in providers:
            schedule = await availability.find_schedule(session, p.id)
            zones[p.id] = schedule.timezone if schedule else None
    return web.json_response(
        [{"id": str(p.id), "full_name": p.full_name, "timezone": zones[p.id]} for p in providers]
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
    staff = await authorize(request, *ANY_STAFF)
    provider_id = path_uuid(request, "provider_id")
    try:
        own_calendar(staff, provider_id)
        async with request.app[DATABASE].session() as session:
            schedule = await availability.get_schedule(
                session, clinic_id=staff.clinic_id, provider_id=provider_id
            )
            rules = await availability.rules_of(session, schedule.id)
            exceptions = await availability.exceptions_of(session, schedule.id)
    except DomainError as exc:
        raise await audited_refusal(request, exc, "schedule.read") from None
    return web.json_response(
        _schedule_public(schedule, rules) | {"exceptions": _exceptions_public(exceptions)}
    )


@routes.put("/api/providers/{provider_id}/schedule")
async def put_schedule(request: web.Request) -> web.Response:
    staff = await authorize(request, *MANAGERS)
    schedule_in = await read_body(request, ScheduleIn)
    try:
        async with request.app[DATABASE].session() as session:
            schedule, rules = await availability.put_schedule(
                session,
                clinic_id=staff.clinic_id,
                provider_id=path_uuid(request, "provider_id"),
                schedule_in=schedule_in,
            )
    except DomainError as exc:
        raise await audited_refusal(request, exc, "schedule.write") from None
    return web.json_response(_schedule_public(schedule, rules))


@routes.post("/api/providers/{provider_id}/exceptions")
async def add_exception(request: web.Request) -> web.Response:
    staff = await authorize(request, *MANAGERS)
    exception_in = await read_body(request, ExceptionIn)
    try:
        async with request.app[DATABASE].session() as session:
            exception = await availability.add_exception(
                session,
                clinic_id=staff.clinic_id,
                provider_id=path_uuid(request, "provider_id"),
                exception_in=exception_in,
            )
    except DomainError as exc:
        raise await audited_refusal(request, exc, "schedule.write") from None
    return web.json_response(_exceptions_public([exception])[0], status=201)


@routes.delete("/api/providers/{provider_id}/exceptions/{exception_id}")
async def remove_exception(request: web.Request) -> web.Response:
    staff = await authorize(request, *MANAGERS)
    try:
        async with request.app[DATABASE].session() as session:
            await availability.remove_exception(
                session,
                clinic_id=staff.clinic_id,
                provider_id=path_uuid(request, "provider_id"),
                exception_id=path_uuid(request, "exception_id"),
            )
    except DomainError as exc:
        raise await audited_refusal(request, exc, "schedule.write") from None
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
    staff = await authorize(request, *ANY_STAFF)
    provider_id = path_uuid(request, "provider_id")
    query = parse(SlotQuery, dict(request.query))
    try:
        own_calendar(staff, provider_id)
        async with request.app[DATABASE].session() as session:
            schedule = await availability.get_schedule(
                session, clinic_id=staff.clinic_id, provider_id=provider_id
            )
            kind = await availability.get_type(
                session, clinic_id=staff.clinic_id, type_id=query.appointment_type_id
            )
            today = utcnow().astimezone(zone_named(schedule.timezone)).date()
            if query.end < today:
                raise InvalidInput(
                    "Those days are in the past; search from today on.",
                    fields={"to": "in the past"},
                )
            found = await availability.search_slots(
                session,
                schedule=schedule,
                kind=kind,
                first_day=query.start,
                last_day=query.end,
                now=utcnow(),
            )
    except DomainError as exc:
        raise await audited_refusal(request, exc, "slots.read") from None
    zone = query.tz or schedule.timezone
    return web.Response(
        text=slots_json(provider_id, zone, schedule.timezone, found),
        content_type="application/json",
    )

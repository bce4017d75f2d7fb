"""FHIR R4 read endpoints: Schedule, Slot (free slots, searched) and Appointment."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from app.core.errors import InvalidInput
from app.web.api import path_uuid
from app.web.audited import run_audited
from app.web.identity import authorize, staff_actor
from scheduling import calendars, service
from scheduling.appointment_routes import on_appointment
from scheduling.models import AppointmentStatus, AppointmentView, ProviderSchedule
from scheduling.routes import ANY_STAFF
from scheduling.slots import Span
from scheduling.views import parse

routes = web.RouteTableDef()
FHIR_JSON = "application/fhir+json"


def _fhir(body: dict[str, Any]) -> web.Response:
    return web.json_response(body, content_type=FHIR_JSON)


def _instant(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def schedule_resource(schedule: ProviderSchedule, provider_name: str) -> dict[str, Any]:
    return {
        "resourceType": "Schedule",
        "id": str(schedule.id),
        "active": True,
        "actor": [{"reference": f"Practitioner/{schedule.provider_id}", "display": provider_name}],
        "comment": f"Times are planned in {schedule.timezone}",
    }


def slot_resource(schedule: ProviderSchedule, span: Span, type_name: str) -> dict[str, Any]:
    slot_id = f"{schedule.id}-{int(span.start.timestamp())}"
    return {
        "resourceType": "Slot",
        "id": slot_id,
        "schedule": {"reference": f"Schedule/{schedule.id}"},
        "status": "free",
        "start": _instant(span.start),
        "end": _instant(span.end),
        "serviceType": [{"text": type_name}],
    }


def appointment_resource(view: AppointmentView) -> dict[str, Any]:
    a = view.appointment
    participant_status = "declined" if a.status == AppointmentStatus.CANCELLED else "accepted"
    body: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": str(a.id),
        "status": a.status.value,
        "serviceType": [{"text": view.kind.name}],
        "start": _instant(a.start_at),
        "end": _instant(a.end_at),
        "minutesDuration": view.kind.duration_minutes,
        "created": a.created_at.date().isoformat(),
        "participant": [
            {
                "actor": {
                    "reference": f"Patient/{view.patient.id}",
                    "display": f"{view.patient.given_name} {view.patient.family_name}",
                },
                "required": "required",
                "status": participant_status,
            },
            {
                "actor": {
                    "reference": f"Practitioner/{view.provider.id}",
                    "display": view.provider.full_name,
                },
                "required": "required",
                "status": participant_status,
            },
        ],
    }
    if a.cancel_reason:
        body["cancelationReason"] = {"text": a.cancel_reason}
    if a.on_demand:
        # HL7 v2 table 0276 (Appointment.appointmentType's example codes): a walk-in.
        body["appointmentType"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0276",
                    "code": "WALKIN",
                    "display": "A previously unscheduled walk-in visit",
                }
            ]
        }
    return body


@routes.get("/fhir/Schedule/{schedule_id}")
async def read_schedule(request: web.Request) -> web.Response:
    actor = staff_actor(request, await authorize(request, *ANY_STAFF))
    schedule_id = path_uuid(request, "schedule_id")
    schedule, provider = await run_audited(
        request,
        actor,
        lambda session: calendars.schedule_by_id(session, actor, schedule_id),
        action="fhir.schedule.read",
        audit_success=False,
        audit_failures=False,
    )
    return _fhir(schedule_resource(schedule, provider.full_name))


class SlotSearch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schedule: uuid.UUID
    service_type: uuid.UUID = Field(alias="service-type")
    start: date
    end: date


@routes.get("/fhir/Slot")
async def search_slots(request: web.Request) -> web.Response:
    actor = staff_actor(request, await authorize(request, *ANY_STAFF))
    query = parse(SlotSearch, dict(request.query))
    if query.end < query.start or (query.end - query.start).days > 62:
        raise InvalidInput(
            "end must be on or after start, at most 62 days later.",
            fields={"end": "outside the allowed range"},
        )
    found = await run_audited(
        request,
        actor,
        lambda session: calendars.schedule_slots(
            session,
            actor,
            query.schedule,
            type_id=query.service_type,
            first_day=query.start,
            last_day=query.end,
        ),
        action="fhir.slot.read",
        audit_success=False,
        audit_failures=False,
    )
    schedule, kind = found.schedule, found.kind
    entries = [{"resource": slot_resource(schedule, s, kind.name)} for s in found.spans]
    return _fhir(
        {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
    )


@routes.get("/fhir/Appointment/{appointment_id}")
async def read_appointment(request: web.Request) -> web.Response:
    actor = staff_actor(request, await authorize(request, *ANY_STAFF))
    view = await on_appointment(request, actor, "fhir.appointment.read", service.appointment_for)
    return _fhir(appointment_resource(view))

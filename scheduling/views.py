"""Turning service results into API shapes, in the viewer's time zone."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from app.core.errors import InvalidInput
from app.core.models import Patient
from app.web.api import parse_model, read_json
from app.web.audited import record
from app.web.identity import Actor
from scheduling.handover import Handover
from scheduling.models import AppointmentView
from scheduling.schemas import (
    AppointmentDetail,
    AppointmentPublic,
    BookedPublic,
    SlotPublic,
    zone_named,
)
from scheduling.slots import Span

M = TypeVar("M", bound=BaseModel)
_NAMED = re.compile(r"^Value error, (\w+): (.+)$")


def _named(exc: InvalidInput) -> InvalidInput:
    """A cross-field check says which field it means ("end: …"); file the error under it."""
    fields: dict[str, str] = {}
    for name, message in exc.fields.items():
        match = _NAMED.match(message)
        if match:
            prefix = "" if name == "body" else name
            fields[f"{prefix}.{match[1]}" if prefix else match[1]] = match[2]
        else:
            fields[name] = message
    names = ", ".join(sorted(fields))
    return InvalidInput(f"Please correct: {names}.", fields=fields)


def parse(model: type[M], data: Any) -> M:
    """app.web.api.parse_model, with cross-field errors filed under their field."""
    try:
        return parse_model(model, data)
    except InvalidInput as exc:
        raise _named(exc) from None


async def read_body(request: web.Request, model: type[M]) -> M:
    """app.web.api.read_json, with cross-field errors filed under their field."""
    try:
        return await read_json(request, model)
    except InvalidInput as exc:
        raise _named(exc) from None


async def record_patients(
    request: web.Request, actor: Actor, action: str, patients: Iterable[Patient]
) -> None:
    """One audit event per patient whose data leaves the server (each named once)."""
    for patient in {p.id: p for p in patients}.values():
        await record(
            request,
            actor,
            action,
            object_type="patient",
            object_id=patient.id,
            patient_id=patient.id,
        )


def local_iso(moment: datetime, zone_name: str) -> str:
    return moment.astimezone(zone_named(zone_name)).isoformat()


def slot_public(span: Span, zone_name: str) -> SlotPublic:
    return SlotPublic(
        start=span.start,
        end=span.end,
        local_start=local_iso(span.start, zone_name),
        local_end=local_iso(span.end, zone_name),
    )


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def slots_json(
    provider_id: uuid.UUID, zone_name: str, provider_zone: str, spans: list[Span]
) -> str:
    """The SlotsPublic document, built by hand: a month of slots is thousands of items."""
    zone = zone_named(zone_name)
    slots = [
        {
            "start": _utc_text(s.start),
            "end": _utc_text(s.end),
            "local_start": s.start.astimezone(zone).isoformat(),
            "local_end": s.end.astimezone(zone).isoformat(),
        }
        for s in spans
    ]
    return json.dumps(
        {
            "provider_id": str(provider_id),
            "timezone": zone_name,
            "provider_timezone": provider_zone,
            "slots": slots,
        },
        separators=(",", ":"),
    )


def appointment_public(
    view: AppointmentView, zone_name: str | None = None, handover: Handover | None = None
) -> AppointmentPublic:
    appointment = view.appointment
    zone = zone_name or view.timezone
    handover = handover or Handover()
    return AppointmentPublic(
        id=appointment.id,
        provider_id=appointment.provider_id,
        provider_name=view.provider.full_name,
        patient_id=appointment.patient_id,
        patient_name=f"{view.patient.given_name} {view.patient.family_name}",
        appointment_type_id=view.kind.id,
        appointment_type=view.kind.name,
        start=appointment.start_at,
        end=appointment.end_at,
        timezone=zone,
        local_start=local_iso(appointment.start_at, zone),
        status=appointment.status,
        cancel_reason=appointment.cancel_reason,
        join_url=handover.join_url,
        email_status=handover.email_status,
        text_status=handover.text_status,
        warnings=handover.warnings,
    )


def appointment_detail(view: AppointmentView, handover: Handover) -> AppointmentDetail:
    return AppointmentDetail(
        **appointment_public(view, None, handover).model_dump(), messages=handover.messages
    )


def booked_public(view: AppointmentView, handover: Handover) -> BookedPublic:
    """A booking (or a new link): the link to hand on, and whether an email carries it."""
    assert handover.join_url is not None
    public = appointment_public(view, None, handover).model_dump()
    return BookedPublic(**public, emailed=bool(view.patient.email), texted=handover.texted)

"""On-demand visits over HTTP: the admin's settings of the walk-in queue, and the public walk-in
link where a patient asks for a visit (then checks in like any patient)."""

from __future__ import annotations

import re
import uuid
from datetime import date, time

import aiohttp_jinja2
from aiohttp import web
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from app.core.errors import InvalidInput, NotFound, TooManyRequests
from app.core.models import Clinic, Role, utcnow
from app.web.api import read_json
from app.web.audited import record
from app.web.events import appointment_changed
from app.web.identity import (
    PATIENT_COOKIE,
    authorize,
    client_addr,
    patient_actor,
    set_visitor_cookie,
    staff_actor,
)
from app.web.keys import DATABASE, RATE_LIMITER, SETTINGS
from scheduling.links import SHORT_PATH
from signaling.checkin.patient_session import issue_patient_token
from signaling.ondemand import service as ondemand
from signaling.ondemand.hours import OpenHours
from signaling.ondemand.records import WalkInDetails

routes = web.RouteTableDef()
PHONE = re.compile(r"^\+?[0-9 ()./-]{6,40}$")


class HoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weekday: int = Field(ge=0, le=6, description="0 = Monday … 6 = Sunday")
    start: time
    end: time = Field(description="00:00 means midnight at the end of the day")

    @model_validator(mode="after")
    def _end_after_start(self) -> HoursIn:
        if self.end <= self.start and self.end != time(0):
            raise ValueError("end: must be after start (00:00 is midnight at the day's end)")
        return self


class OnDemandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=3, max_length=63, description="The link is /walk-in/<code>")
    enabled: bool
    hours: list[HoursIn] = Field(max_length=50)
    appointment_type_id: str
    provider_ids: list[str] = Field(max_length=200)


class WalkInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    birth_date: date
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=40)
    reason: str = Field(min_length=1, max_length=200)

    @field_validator("given_name", "family_name", "reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and value.strip() and not PHONE.match(value.strip()):
            raise ValueError("digits, spaces and + ( ) - only")
        return value.strip() if value and value.strip() else None

    @model_validator(mode="after")
    def _checks(self) -> WalkInIn:
        if self.birth_date > date.today() or self.birth_date.year < 1880:
            raise ValueError("birth_date: must be a real date in the past")
        if not self.email and not self.phone:
            raise ValueError("contact: give an email address or a phone number")
        return self


def _uuids(values: list[str], field: str) -> list[uuid.UUID]:
    found = []
    for value in values:
        try:
            found.append(uuid.UUID(value))
        except ValueError:
            raise InvalidInput("Not an id.", fields={field: f"{value!r} is not an id"}) from None
    return found


@routes.get("/api/on-demand")
async def get_settings(request: web.Request) -> web.Response:
    """The walk-in queue of the admin's clinic."""
    staff = await authorize(request, Role.ADMIN)
    async with request.app[DATABASE].session() as session:
        clinic = await session.get(Clinic, staff.clinic_id)
        assert clinic is not None
        shown = await ondemand.settings_public(session, clinic, request.app[SETTINGS].base_url)
    return web.json_response(shown)


@routes.put("/api/on-demand")
async def put_settings(request: web.Request) -> web.Response:
    """Open, close or change the admin's clinic's walk-in queue."""
    staff = await authorize(request, Role.ADMIN)
    body = await read_json(request, OnDemandIn)
    type_ids = _uuids([body.appointment_type_id], "appointment_type_id")
    provider_ids = _uuids(body.provider_ids, "provider_ids")
    wanted = ondemand.QueueSettings(
        code=body.code,
        enabled=body.enabled,
        hours=[OpenHours(h.weekday, h.start, h.end) for h in body.hours],
        appointment_type_id=type_ids[0],
        provider_ids=provider_ids,
    )
    async with request.app[DATABASE].session() as session:
        clinic = await session.get(Clinic, staff.clinic_id)
        assert clinic is not None
        await ondemand.configure(session, clinic, wanted)
        shown = await ondemand.settings_public(session, clinic, request.app[SETTINGS].base_url)
    await record(
        request,
        staff_actor(request, staff),
        "on_demand.configure",
        object_type="clinic",
        object_id=staff.clinic_id,
        detail=f"enabled={body.enabled} providers={len(provider_ids)}",
    )
    return web.json_response(shown)


@routes.get("/api/walk-in/{code}")
async def walk_in_state(request: web.Request) -> web.Response:
    """Public: the clinic behind a walk-in link, whether it is open now, when it opens next."""
    async with request.app[DATABASE].session() as session:
        public = await ondemand.public_queue(session, request.match_info["code"])
    return web.json_response(public.public(utcnow()))


@routes.post("/api/walk-in/{code}")
async def request_visit(request: web.Request) -> web.Response:
    """Public: a walk-in asks for a visit; they get a patient session and their check-in link.

    The answer is the same whether a record was found or made, so the link tells no one who is
    a patient of the clinic.
    """
    settings = request.app[SETTINGS]
    body = await read_json(request, WalkInIn)
    address = client_addr(request)
    if await request.app[RATE_LIMITER].hit(f"walk-in-addr:{address}", 3600) > (
        settings.on_demand_per_address_hour
    ):
        raise TooManyRequests(
            "Too many walk-in requests from this address; please call the clinic.",
            retry_after=3600,
        )
    details = WalkInDetails(
        given_name=body.given_name,
        family_name=body.family_name,
        birth_date=body.birth_date,
        email=str(body.email) if body.email else None,
        phone=body.phone,
        reason=body.reason,
    )
    async with request.app[DATABASE].session() as session:
        public = await ondemand.public_queue(session, request.match_info["code"])
        walk_in = await ondemand.request_visit(
            session,
            public,
            details,
            client_addr=address,
            max_open_per_contact=settings.on_demand_open_per_contact,
            link_minutes=settings.join_closes_minutes,
        )
    await record(
        request,
        patient_actor(request, walk_in.patient.id, walk_in.appointment.clinic_id),
        "on_demand.request",
        object_type="appointment",
        object_id=walk_in.appointment.id,
        patient_id=walk_in.patient.id,
        detail=f"record {walk_in.match}",
    )
    response = web.json_response({"join_url": f"{SHORT_PATH}{walk_in.code}"}, status=201)
    token = issue_patient_token(settings, walk_in.appointment)
    set_visitor_cookie(response, settings, PATIENT_COOKIE, token)
    await appointment_changed(request.app, walk_in.appointment.id)
    return response


@routes.get("/walk-in/{code}")
async def walk_in_page(request: web.Request) -> web.StreamResponse:
    """The clinic's public walk-in page: who you are, why you come, then check-in."""
    async with request.app[DATABASE].session() as session:
        try:
            public = await ondemand.public_queue(session, request.match_info["code"])
        except NotFound:
            return aiohttp_jinja2.render_template(
                "signaling/walk_in.html", request, {"missing": True}, status=404
            )
    context = public.public(utcnow()) | {"code": public.queue.code}
    return aiohttp_jinja2.render_template("signaling/walk_in.html", request, context)

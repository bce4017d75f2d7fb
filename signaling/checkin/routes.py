"""The patient's check-in over HTTP: identity, consent, device check, entering the queue."""

from __future__ import annotations

from datetime import date
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from app.core import audit
from app.core.errors import InvalidInput, TooManyRequests
from app.core.models import utcnow
from app.web.api import read_json
from app.web.identity import client_addr
from app.web.keys import DATABASE, RATE_LIMITER, SETTINGS
from signaling.checkin import service as checkin
from signaling.checkin.patient_session import (
    PATIENT_COOKIE,
    issue_patient_token,
    read_patient_token,
    set_patient_cookie,
)
from signaling.checkin.service import Arrival, LinkLocked
from signaling.queue.keys import NOTIFIER
from signaling.queue.notifier import CLINIC_NAMESPACE, clinic_room, provider_room
from signaling.server import SOCKET_SERVER

routes = web.RouteTableDef()

IDENTITY_ATTEMPTS_PER_ADDRESS = 20  # per 15 minutes, across links: stops guessing at scale


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    birth_date: date


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    accepted: Literal[True]


DeviceState = Literal["ok", "denied", "missing", "error", "unsupported"]


class DeviceCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera: DeviceState
    microphone: DeviceState
    network_rtt_ms: int | None = Field(default=None, ge=0, le=60_000)
    browser: str | None = Field(default=None, max_length=200)


def _patient_actor(request: web.Request, arrival: Arrival) -> audit.Actor:
    return audit.Actor(
        id=str(arrival.patient.id),
        role="patient",
        clinic_id=str(arrival.appointment.clinic_id),
        client_addr=client_addr(request),
    )


async def _arrival(
    request: web.Request, *, signed_in: bool = True, after_visit: bool = False
) -> Arrival:
    async with request.app[DATABASE].session() as session:
        arrival = await checkin.resolve_link(
            session, request.app[SETTINGS], request.match_info["token"], after_visit=after_visit
        )
    if signed_in:
        claims = read_patient_token(request.app[SETTINGS], request.cookies.get(PATIENT_COOKIE))
        checkin.require_patient(arrival, claims)
    return arrival


async def _audit(
    request: web.Request, arrival: Arrival, action: str, outcome: str = audit.SUCCESS
) -> None:
    await audit.record(
        request.app[DATABASE],
        action=action,
        outcome=outcome,
        actor=_patient_actor(request, arrival),
        object_type="appointment",
        object_id=arrival.appointment.id,
        patient_id=arrival.patient.id,
    )


def _progress(arrival: Arrival) -> dict[str, object]:
    check_in = arrival.check_in
    if check_in.identity_verified_at is None:
        step = "identity"
    elif check_in.consent_id is None:
        step = "consent"
    elif check_in.visit_id is not None:
        step = "admitted"
    elif check_in.waiting_since is not None:
        step = "waiting"
    else:
        step = "device_check"
    return checkin.progress(step, arrival.provider, arrival.appointment, check_in.visit_id)


@routes.post("/api/join/{token}/identity")
async def confirm_identity(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    body = await read_json(request, IdentityIn)
    if await request.app[RATE_LIMITER].hit(f"identity-addr:{client_addr(request)}", 900) > (
        IDENTITY_ATTEMPTS_PER_ADDRESS
    ):
        raise TooManyRequests(
            "Too many attempts from this address; wait and try again.", retry_after=900
        )
    # After the visit the patient may confirm again (another browser) to read the summary.
    arrival = await _arrival(request, signed_in=False, after_visit=True)
    async with request.app[DATABASE].session() as session:
        session.add(arrival.check_in)
        session.add(arrival.appointment)
        matched = await checkin.verify_identity(session, settings, arrival, body.birth_date)
    if not matched:
        locked = arrival.check_in.link_locked_at is not None
        await _audit(request, arrival, "checkin.identity", audit.FAILURE)
        if locked:
            await _tell_clinic_link_locked(request, arrival)
            raise LinkLocked(
                "This link is locked after too many wrong dates of birth. "
                "The clinic has been told; please call them to join your visit."
            )
        left = settings.identity_max_failures - arrival.check_in.identity_failures
        raise InvalidInput(
            f"That date of birth does not match our records. {left} attempt(s) left.",
            fields={"birth_date": "does not match"},
        )
    await _audit(request, arrival, "checkin.identity")
    response = web.json_response(_progress(arrival))
    set_patient_cookie(response, settings, issue_patient_token(settings, arrival.appointment))
    await request.app[NOTIFIER].provider_changed(arrival.appointment.provider_id)
    return response


async def _tell_clinic_link_locked(request: web.Request, arrival: Arrival) -> None:
    alert = {
        "kind": "link_locked",
        "appointment_id": str(arrival.appointment.id),
        "patient_name": f"{arrival.patient.given_name} {arrival.patient.family_name}",
        "message": "A join link was locked after repeated wrong dates of birth. "
        "Call the patient before admitting anyone on this appointment.",
    }
    sio = request.app[SOCKET_SERVER]
    await sio.emit(
        "alert", alert, room=provider_room(arrival.provider.id), namespace=CLINIC_NAMESPACE
    )
    await sio.emit(
        "alert", alert, room=clinic_room(arrival.appointment.clinic_id), namespace=CLINIC_NAMESPACE
    )
    await request.app[NOTIFIER].provider_changed(arrival.provider.id)


@routes.get("/api/join/{token}/status")
async def status(request: web.Request) -> web.Response:
    arrival = await _arrival(request)
    async with request.app[DATABASE].session() as session:
        messages = await checkin.messages_for(session, arrival.appointment.id)
    await _audit(request, arrival, "checkin.status")
    progress = _progress(arrival)
    progress["messages"] = [
        {"text": m.text, "sent_at": m.sent_at.isoformat(), "from": arrival.provider.full_name}
        for m in messages
    ]
    return web.json_response(progress)


@routes.get("/api/join/{token}/consent")
async def consent_text(request: web.Request) -> web.Response:
    arrival = await _arrival(request)
    async with request.app[DATABASE].session() as session:
        document = await checkin.current_consent(session, arrival.appointment.clinic_id)
    return web.json_response(checkin.consent_public(document))


@routes.post("/api/join/{token}/consent")
async def accept_consent(request: web.Request) -> web.Response:
    body = await read_json(request, ConsentIn)
    arrival = await _arrival(request)
    async with request.app[DATABASE].session() as session:
        session.add(arrival.check_in)
        record = await checkin.accept_consent(
            session, arrival, version=body.version, client_addr=client_addr(request)
        )
    await _audit(request, arrival, "checkin.consent")
    return web.json_response(
        {"version": record.version, "accepted_at": record.accepted_at.isoformat()}
        | _progress(arrival)
    )


@routes.post("/api/join/{token}/device-check")
async def device_check(request: web.Request) -> web.Response:
    body = await read_json(request, DeviceCheckIn)
    arrival = await _arrival(request)
    async with request.app[DATABASE].session() as session:
        session.add(arrival.check_in)
        await checkin.record_device_check(session, arrival, body.model_dump())
    await _audit(request, arrival, "checkin.device_check")
    return web.json_response(_progress(arrival))


@routes.post("/api/join/{token}/waiting")
async def enter_waiting_room(request: web.Request) -> web.Response:
    arrival = await _arrival(request)
    async with request.app[DATABASE].session() as session:
        session.add(arrival.check_in)
        session.add(arrival.appointment)
        await checkin.enter_queue(session, arrival)
    await _audit(request, arrival, "checkin.enter_queue")
    await request.app[NOTIFIER].provider_changed(arrival.appointment.provider_id)
    return web.json_response(_progress(arrival))


@routes.get("/api/join/{token}/ping")
async def ping(request: web.Request) -> web.Response:
    """For the network check: the page times a few round trips to the server."""
    await _arrival(request)
    return web.json_response({"server_time": utcnow().isoformat()})

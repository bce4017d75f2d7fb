"""The patient's check-in over HTTP: identity, consent, device check, entering the queue."""

from __future__ import annotations

import uuid
from datetime import date

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core import audit
from app.core.errors import Conflict, InvalidInput, TooManyRequests
from app.web.api import read_json
from app.web.events import appointment_changed
from app.web.identity import (
    PATIENT_COOKIE,
    client_addr,
    patient_actor,
    patient_session,
    set_visitor_cookie,
)
from app.web.keys import DATABASE, RATE_LIMITER, SETTINGS
from signaling.checkin import service as checkin
from signaling.checkin.patient_session import issue_patient_token
from signaling.checkin.service import Arrival
from signaling.checkin.steps import Audited, CheckInSteps
from signaling.rooms import CLINIC_NAMESPACE, clinic_room, provider_room
from signaling.server import SOCKET_SERVER

IDENTITY_ATTEMPTS_PER_ADDRESS = 20  # per 15 minutes, across links: stops guessing at scale
REPLY_MAX_LENGTH = 200  # an answer in the waiting room is short: the visit is for talking
REPLIES_PER_MINUTE = 3


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    birth_date: date


class WaitingTextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=REPLY_MAX_LENGTH)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("write a few words")
        return value.strip()


class PatientCheckIn(CheckInSteps[Arrival]):
    """A patient on their way in by the join link from their appointment email."""

    prefix = "/api/join/{token}"
    actions = {
        "consent": "checkin.consent",
        "device_check": "checkin.device_check",
        "waiting": "checkin.enter_queue",
    }

    async def arrival(
        self, request: web.Request, *, signed_in: bool = True, after_visit: bool = False
    ) -> Arrival:
        async with request.app[DATABASE].session() as session:
            arrival = await checkin.resolve_link(
                session, request.app[SETTINGS], request.match_info["token"], after_visit=after_visit
            )
        if signed_in:
            checkin.require_patient(arrival, patient_session(request))
        return arrival

    def progress(self, arrival: Arrival) -> dict[str, object]:
        return checkin.arrival_progress(arrival)

    def clinic_of(self, arrival: Arrival) -> uuid.UUID:
        return arrival.appointment.clinic_id

    def audited(self, request: web.Request, arrival: Arrival) -> Audited:
        actor = patient_actor(request, arrival.patient.id, arrival.appointment.clinic_id)
        return Audited(actor, "appointment", arrival.appointment.id, arrival.patient.id)

    async def accept_consent(
        self, request: web.Request, session: AsyncSession, arrival: Arrival, version: int
    ) -> dict[str, object]:
        session.add(arrival.check_in)
        consent = await checkin.accept_consent(
            session, arrival, version=version, client_addr=client_addr(request)
        )
        return {"version": consent.version, "accepted_at": consent.accepted_at.isoformat()}

    async def record_device_check(
        self, session: AsyncSession, arrival: Arrival, result: dict[str, object]
    ) -> None:
        session.add(arrival.check_in)
        await checkin.record_device_check(session, arrival, result)

    async def enter_waiting(self, session: AsyncSession, arrival: Arrival) -> None:
        session.add(arrival.check_in)
        session.add(arrival.appointment)
        await checkin.enter_queue(session, arrival)

    async def waiting_changed(self, request: web.Request, arrival: Arrival) -> None:
        await appointment_changed(request.app, arrival.appointment.id)


PATIENTS = PatientCheckIn()
routes = web.RouteTableDef()


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
    arrival = await PATIENTS.arrival(request, signed_in=False, after_visit=True)
    async with request.app[DATABASE].session() as session:
        session.add(arrival.check_in)
        session.add(arrival.appointment)
        matched = await checkin.verify_identity(session, settings, arrival, body.birth_date)
        locked = not matched and arrival.check_in.locks(arrival.appointment.version)
        refusal = (
            await checkin.link_locked(session, arrival.appointment.clinic_id) if locked else None
        )
    if not matched:
        await PATIENTS.audit(request, arrival, "checkin.identity", audit.FAILURE)
        if refusal is not None:
            await _tell_clinic_link_locked(request, arrival)
            raise refusal
        left = settings.identity_max_failures - arrival.check_in.identity_failures
        raise InvalidInput(
            f"That date of birth does not match our records. {left} attempt(s) left.",
            fields={"birth_date": "does not match"},
        )
    await PATIENTS.audit(request, arrival, "checkin.identity")
    response = web.json_response(PATIENTS.progress(arrival))
    token = issue_patient_token(settings, arrival.appointment)
    set_visitor_cookie(response, settings, PATIENT_COOKIE, token)
    await appointment_changed(request.app, arrival.appointment.id)
    return response


async def _tell_clinic_link_locked(request: web.Request, arrival: Arrival) -> None:
    alert = {
        "kind": "link_locked",
        "appointment_id": str(arrival.appointment.id),
        "patient_name": f"{arrival.patient.given_name} {arrival.patient.family_name}",
        "message": "A join link was locked after repeated wrong dates of birth. "
        "Call the patient; once you know it is them, unlock their check-in.",
    }
    sio = request.app[SOCKET_SERVER]
    await sio.emit(
        "alert", alert, room=provider_room(arrival.provider.id), namespace=CLINIC_NAMESPACE
    )
    await sio.emit(
        "alert", alert, room=clinic_room(arrival.appointment.clinic_id), namespace=CLINIC_NAMESPACE
    )
    await appointment_changed(request.app, arrival.appointment.id)


@routes.get("/api/join/{token}/status")
async def status(request: web.Request) -> web.Response:
    arrival = await PATIENTS.arrival(request)
    async with request.app[DATABASE].session() as session:
        messages = await checkin.messages_for(session, arrival.appointment.id)
        reasons = await checkin.reasons_for(session, [arrival.appointment.id])
    await PATIENTS.audit(request, arrival, "checkin.status")
    progress = PATIENTS.progress(arrival)
    # The reason already given: a reload shows it (to edit) instead of an empty field.
    progress["reason"] = reasons.get(arrival.appointment.id)
    progress["messages"] = [
        {
            "text": m.text,
            "sent_at": m.sent_at.isoformat(),
            "sender": m.sender,
            "from": arrival.provider.full_name if m.sender == checkin.CLINIC else "You",
        }
        for m in messages
    ]
    return web.json_response(progress)


async def _waiting_patient(request: web.Request) -> Arrival:
    """The signed-in patient of this link, while they wait in line (not before, not after)."""
    arrival = await PATIENTS.arrival(request)
    if arrival.check_in.waiting_since is None or arrival.check_in.visit_id is not None:
        raise Conflict(
            "You can write to the clinic while you wait in the waiting room.",
            fields={"step": "not waiting"},
        )
    return arrival


async def _within_rate(request: web.Request, arrival: Arrival) -> None:
    key = f"waiting-text:{arrival.appointment.id}"
    if await request.app[RATE_LIMITER].hit(key, 60) > REPLIES_PER_MINUTE:
        raise TooManyRequests(
            "You have written several messages in a row; please wait a minute before the next.",
            retry_after=60,
        )


@routes.post("/api/join/{token}/reply")
async def reply(request: web.Request) -> web.Response:
    """A waiting patient answers the clinic, in a line; the provider's queue shows it."""
    body = await read_json(request, WaitingTextIn)
    arrival = await _waiting_patient(request)
    await _within_rate(request, arrival)
    async with request.app[DATABASE].session() as session:
        message = await checkin.store_waiting_message(
            session, arrival.appointment.id, body.text, sender=checkin.PATIENT
        )
    await PATIENTS.audit(request, arrival, "waiting_room.reply")
    await appointment_changed(request.app, arrival.appointment.id)
    return web.json_response(
        {"text": message.text, "sent_at": message.sent_at.isoformat(), "from": "You"}, status=201
    )


@routes.post("/api/join/{token}/reason")
async def reason(request: web.Request) -> web.Response:
    """What the waiting patient wants to talk about; the provider reads it before admitting."""
    body = await read_json(request, WaitingTextIn)
    arrival = await _waiting_patient(request)
    await _within_rate(request, arrival)
    async with request.app[DATABASE].session() as session:
        message = await checkin.store_waiting_message(
            session,
            arrival.appointment.id,
            body.text,
            sender=checkin.PATIENT,
            kind=checkin.REASON,
        )
    await PATIENTS.audit(request, arrival, "waiting_room.reason")
    await appointment_changed(request.app, arrival.appointment.id)
    return web.json_response({"text": message.text}, status=201)


# Consent, device check, waiting room and ping: the steps a guest takes too.
PATIENTS.add_routes(routes)

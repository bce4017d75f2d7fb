"""The patient's check-in over HTTP: identity, consent, device check, entering the queue."""

from __future__ import annotations

import uuid
from datetime import date

from aiohttp import web
from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core import audit
from app.core.errors import InvalidInput, TooManyRequests
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


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    birth_date: date


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
    await PATIENTS.audit(request, arrival, "checkin.status")
    progress = PATIENTS.progress(arrival)
    progress["messages"] = [
        {"text": m.text, "sent_at": m.sent_at.isoformat(), "from": arrival.provider.full_name}
        for m in messages
    ]
    return web.json_response(progress)


# Consent, device check, waiting room and ping: the steps a guest takes too.
PATIENTS.add_routes(routes)

"""The patient's intake step of check-in: the clinic's questions, saved as they answer, sent.

Between consent and the device check. Every answer is saved as the patient goes (the page sends
changes a moment after they stop typing), so a reload finds them; sending checks the required
questions. Reads and writes are audited as the patient's.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from app.intake import service as intake
from app.web.api import read_json
from app.web.events import appointment_changed
from app.web.keys import DATABASE
from signaling.checkin.routes import PATIENTS
from signaling.checkin.service import Arrival, NeedsStep

routes = web.RouteTableDef()


class AnswersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: linkId → answer; null (or an empty answer) clears it.
    answers: dict[str, Any] = Field(max_length=60)


async def _consented_patient(request: web.Request) -> Arrival:
    arrival = await PATIENTS.arrival(request)
    if arrival.check_in.consent_id is None:
        raise NeedsStep("Please accept the consent first.", fields={"step": "consent"})
    return arrival


@routes.get("/api/join/{token}/intake")
async def read_intake(request: web.Request) -> web.Response:
    arrival = await _consented_patient(request)
    async with request.app[DATABASE].session() as session:
        response = await intake.response_for(session, arrival.appointment)
        shown = intake.response_public(response)
    await PATIENTS.audit(request, arrival, "intake.read")
    return web.json_response(shown)


@routes.patch("/api/join/{token}/intake")
async def save_intake(request: web.Request) -> web.Response:
    body = await read_json(request, AnswersIn)
    arrival = await _consented_patient(request)
    async with request.app[DATABASE].session() as session:
        # A wrong answer is a 400 naming the question, the patient's to fix (not audited).
        response = await intake.save_answers(session, arrival.appointment, body.answers)
        saved = {"updated_at": response.updated_at.isoformat()}
    await PATIENTS.audit(request, arrival, "intake.save")
    return web.json_response(saved)


@routes.post("/api/join/{token}/intake/submit")
async def submit_intake(request: web.Request) -> web.Response:
    arrival = await _consented_patient(request)
    async with request.app[DATABASE].session() as session:
        await intake.submit(session, arrival.appointment)
    await PATIENTS.audit(request, arrival, "intake.submit")
    # The provider's queue shows the cards the answers raise, before the patient waits.
    await appointment_changed(request.app, arrival.appointment.id)
    done = Arrival(
        arrival.appointment, arrival.check_in, arrival.patient, arrival.provider, intake_done=True
    )
    return web.json_response(PATIENTS.progress(done))

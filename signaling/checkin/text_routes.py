"""The patient's own say on text messages, while checking in: "send me the links and reminders
of my visits by text" on the number the clinic has for them. Recorded as given by the patient at
check-in (who, when, how), audited as the patient's; they may take it back the same way.

After the identity check only (the number is shown by its last digits, never whole).
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from app.web.api import read_json
from app.web.keys import DATABASE
from scheduling import consent
from scheduling.models import ConsentWay
from signaling.checkin.routes import PATIENTS
from signaling.checkin.service import Arrival

routes = web.RouteTableDef()


class TextsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agreed: bool


async def _choice(request: web.Request, arrival: Arrival) -> dict[str, object]:
    async with request.app[DATABASE].session() as session:
        number = await consent.number_of(session, arrival.patient)
        agreed = await consent.textable_number(session, arrival.patient) is not None
    return {
        "can_text": number is not None,
        "number_ends": number[-4:] if number else None,
        "agreed": agreed,
    }


@routes.get("/api/join/{token}/texts")
async def read_texts(request: web.Request) -> web.Response:
    arrival = await PATIENTS.arrival(request)
    shown = await _choice(request, arrival)
    await PATIENTS.audit(request, arrival, "patient.text_consent.read")
    return web.json_response(shown)


@routes.put("/api/join/{token}/texts")
async def write_texts(request: web.Request) -> web.Response:
    body = await read_json(request, TextsIn)
    arrival = await PATIENTS.arrival(request)
    async with request.app[DATABASE].session() as session:
        if body.agreed:
            await consent.agree(
                session, arrival.patient, way=ConsentWay.PATIENT_AT_CHECKIN, by=None
            )
        else:
            await consent.withdraw(session, arrival.patient, by=None)
        await session.commit()
    action = "patient.text_consent.agree" if body.agreed else "patient.text_consent.withdraw"
    await PATIENTS.audit(request, arrival, action)
    return web.json_response(await _choice(request, arrival))

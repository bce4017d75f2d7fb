"""Intake over HTTP for staff: admins set a visit type's questionnaire and red-flag rules, the
record's readers (providers and admins of the clinic) read a visit's answers and cards."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.models import Role
from app.intake import service as intake
from app.web.api import path_uuid, read_json
from app.web.audited import Recorded, run_audited
from app.web.identity import authorize, staff_actor
from app.web.keys import DATABASE

#: Who reads a patient's answers: the record's readers.
READERS = (Role.PROVIDER, Role.ADMIN)

routes = web.RouteTableDef()


class IntakeFormIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    questionnaire: dict[str, Any]
    rules: list[Any]


@routes.get("/api/appointment-types/{type_id}/intake")
async def get_form(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.ADMIN)
    type_id = path_uuid(request, "type_id")
    async with request.app[DATABASE].session() as session:
        kind = await intake.clinic_visit_type(session, staff.clinic_id, type_id)
        questionnaire, rules, form = await intake.form_for(session, kind.id)
    return web.json_response(intake.form_public(kind, questionnaire, rules, form))


@routes.put("/api/appointment-types/{type_id}/intake")
async def put_form(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.ADMIN)
    type_id = path_uuid(request, "type_id")
    body = await read_json(request, IntakeFormIn)
    async with request.app[DATABASE].session() as session:
        kind = await intake.clinic_visit_type(session, staff.clinic_id, type_id)
        questionnaire, rules, form = await intake.replace_form(
            session,
            kind,
            questionnaire_data=body.questionnaire,
            rules_data=body.rules,
            by=staff.id,
        )
    return web.json_response(intake.form_public(kind, questionnaire, rules, form))


@routes.get("/api/appointments/{appointment_id}/intake")
async def read_answers(request: web.Request) -> web.Response:
    """A patient's intake answers and the red-flag cards they raise, for the visit page."""
    staff = await authorize(request, *READERS)
    appointment_id = path_uuid(request, "appointment_id")
    patient: list[uuid.UUID] = []

    async def work(session: AsyncSession) -> dict[str, object]:
        shown, patient_id = await intake.staff_view(session, staff.clinic_id, appointment_id)
        patient.append(patient_id)
        return shown

    shown = await run_audited(
        request,
        staff_actor(request, staff),
        work,
        action="intake.read",
        object_type="appointment",
        object_id=appointment_id,
        recorded=lambda _: Recorded(patient_id=patient[0]),
    )
    return web.json_response(shown)

"""Intake: which questionnaire a visit asks, the patient's answers as they save them, the
red-flag cards the answers raise, and the answers as FHIR QuestionnaireResponses."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import InvalidInput, NotFound
from app.core.models import utcnow
from app.intake.models import IntakeForm, IntakeResponse
from app.intake.questionnaire import (
    DEFAULT_QUESTIONNAIRE,
    Answers,
    Questionnaire,
    dumps,
    enabled_answers,
    merge_answers,
    missing_required,
    parse_questionnaire,
)
from app.intake.rules import DEFAULT_RULES, Rule, cards_for, parse_rules
from scheduling.models import Appointment, AppointmentType

Card = dict[str, Any]


def default_form() -> tuple[Questionnaire, list[Rule]]:
    questionnaire = parse_questionnaire(DEFAULT_QUESTIONNAIRE)
    return questionnaire, parse_rules(DEFAULT_RULES, questionnaire)


async def clinic_visit_type(
    session: AsyncSession, clinic_id: uuid.UUID | None, type_id: uuid.UUID
) -> AppointmentType:
    """One of the clinic's visit types; another clinic's is not found."""
    kind = await session.get(AppointmentType, type_id)
    if kind is None or kind.clinic_id != clinic_id:
        raise NotFound("No such visit type.")
    return kind


async def form_for(
    session: AsyncSession, type_id: uuid.UUID
) -> tuple[Questionnaire, list[Rule], IntakeForm | None]:
    """The visit type's questionnaire and rules: the clinic's own, or the default."""
    form = (
        await session.exec(select(IntakeForm).where(IntakeForm.appointment_type_id == type_id))
    ).first()
    if form is None:
        questionnaire, rules = default_form()
        return questionnaire, rules, None
    questionnaire = Questionnaire.model_validate_json(form.questionnaire)
    return questionnaire, parse_rules(json.loads(form.rules), questionnaire), form


def form_public(
    kind: AppointmentType, questionnaire: Questionnaire, rules: list[Rule], form: IntakeForm | None
) -> dict[str, object]:
    return {
        "appointment_type_id": str(kind.id),
        "appointment_type": kind.name,
        "is_default": form is None,
        "updated_at": form.updated_at.isoformat() if form else None,
        "questionnaire": questionnaire.model_dump(exclude_none=True),
        "rules": [rule.model_dump(exclude_none=True) for rule in rules],
    }


async def replace_form(
    session: AsyncSession,
    kind: AppointmentType,
    *,
    questionnaire_data: object,
    rules_data: object,
    by: uuid.UUID,
) -> tuple[Questionnaire, list[Rule], IntakeForm]:
    """Set the visit type's questionnaire and rules (both checked, each error by field)."""
    questionnaire = parse_questionnaire(questionnaire_data)
    rules = parse_rules(rules_data, questionnaire)
    form = (
        await session.exec(select(IntakeForm).where(IntakeForm.appointment_type_id == kind.id))
    ).first()
    if form is None:
        form = IntakeForm(
            clinic_id=kind.clinic_id, appointment_type_id=kind.id, questionnaire="", rules=""
        )
    form.questionnaire = dumps(questionnaire.model_dump(exclude_none=True))
    form.rules = dumps([rule.model_dump(exclude_none=True) for rule in rules])
    form.updated_by = by
    form.updated_at = utcnow()
    session.add(form)
    await session.commit()
    return questionnaire, rules, form


async def response_for(session: AsyncSession, appointment: Appointment) -> IntakeResponse:
    """The appointment's answers so far; the first call fixes the questionnaire they answer."""
    response = await session.get(IntakeResponse, appointment.id)
    if response is not None:
        return response
    questionnaire, _, _ = await form_for(session, appointment.appointment_type_id)
    response = IntakeResponse(
        appointment_id=appointment.id,
        clinic_id=appointment.clinic_id,
        patient_id=appointment.patient_id,
        questionnaire=dumps(questionnaire.model_dump(exclude_none=True)),
        answers="{}",
    )
    session.add(response)
    try:
        await session.commit()
    except sa.exc.IntegrityError:  # two tabs began at once
        await session.rollback()
        found = await session.get(IntakeResponse, appointment.id)
        assert found is not None
        return found
    return response


def questionnaire_of(response: IntakeResponse) -> Questionnaire:
    return Questionnaire.model_validate_json(response.questionnaire)


def answers_of(response: IntakeResponse) -> Answers:
    answers: Answers = json.loads(response.answers)
    return answers


def response_public(response: IntakeResponse) -> dict[str, object]:
    """What the patient's page reads: the questions, their answers, whether they sent them."""
    return {
        "questionnaire": questionnaire_of(response).model_dump(exclude_none=True),
        "answers": answers_of(response),
        "submitted_at": response.submitted_at.isoformat() if response.submitted_at else None,
    }


async def save_answers(
    session: AsyncSession, appointment: Appointment, changes: dict[str, object]
) -> IntakeResponse:
    """Merge the patient's changed answers (autosaved as they go)."""
    response = await response_for(session, appointment)
    merged = merge_answers(questionnaire_of(response), answers_of(response), changes)
    response.answers = dumps(merged)
    response.updated_at = utcnow()
    session.add(response)
    await session.commit()
    return response


async def submit(session: AsyncSession, appointment: Appointment) -> IntakeResponse:
    """The patient is done: every required question that is asked must have an answer."""
    response = await response_for(session, appointment)
    missing = missing_required(questionnaire_of(response), answers_of(response))
    if missing:
        raise InvalidInput("Please answer the questions marked as required.", fields=missing)
    response.submitted_at = response.submitted_at or utcnow()
    response.updated_at = utcnow()
    session.add(response)
    await session.commit()
    return response


async def is_submitted(session: AsyncSession, appointment_id: uuid.UUID) -> bool:
    found = await session.exec(
        select(IntakeResponse.appointment_id)
        .where(IntakeResponse.appointment_id == appointment_id)
        .where(col(IntakeResponse.submitted_at).is_not(None))
    )
    return found.first() is not None


async def cards_by_appointment(
    session: AsyncSession, appointment_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Card]]:
    """The red-flag cards of each appointment whose patient has sent their answers."""
    if not appointment_ids:
        return {}
    rows = (
        await session.exec(
            select(IntakeResponse, Appointment)
            .join(Appointment, col(Appointment.id) == col(IntakeResponse.appointment_id))
            .where(col(IntakeResponse.appointment_id).in_(appointment_ids))
            .where(col(IntakeResponse.submitted_at).is_not(None))
        )
    ).all()
    rules_of: dict[uuid.UUID, list[Rule]] = {}
    found: dict[uuid.UUID, list[Card]] = {}
    for response, appointment in rows:
        type_id = appointment.appointment_type_id
        if type_id not in rules_of:
            rules_of[type_id] = (await form_for(session, type_id))[1]
        cards = cards_for(rules_of[type_id], questionnaire_of(response), answers_of(response))
        if cards:
            found[appointment.id] = cards
    return found


async def staff_view(
    session: AsyncSession, clinic_id: uuid.UUID | None, appointment_id: uuid.UUID
) -> tuple[dict[str, object], uuid.UUID]:
    """The answers and cards of one of the clinic's appointments, and whose they are."""
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None or appointment.clinic_id != clinic_id:
        raise NotFound("No such appointment.")
    response = await session.get(IntakeResponse, appointment.id)
    if response is None:
        return {"submitted_at": None, "answers": [], "cards": []}, appointment.patient_id
    questionnaire = questionnaire_of(response)
    asked = enabled_answers(questionnaire, answers_of(response))
    cards = (await cards_by_appointment(session, [appointment.id])).get(appointment.id, [])
    return {
        "submitted_at": response.submitted_at.isoformat() if response.submitted_at else None,
        "answers": [
            {"linkId": item.linkId, "text": item.text, "answer": asked[item.linkId]}
            for item in questionnaire.item
            if item.linkId in asked
        ],
        "cards": cards,
    }, appointment.patient_id


def _values(kind: str, answer: object) -> list[dict[str, object]]:
    values = answer if isinstance(answer, list) else [answer]
    key = {
        "boolean": "valueBoolean",
        "integer": "valueInteger",
        "decimal": "valueDecimal",
        "date": "valueDate",
    }.get(kind, "valueString")
    return [{key: value} for value in values]


def _instant(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds")


def questionnaire_response(response: IntakeResponse) -> dict[str, Any]:
    """One appointment's answers as a FHIR R4 QuestionnaireResponse."""
    questionnaire = questionnaire_of(response)
    asked = enabled_answers(questionnaire, answers_of(response))
    return {
        "resourceType": "QuestionnaireResponse",
        "id": str(response.appointment_id),
        "status": "completed" if response.submitted_at else "in-progress",
        "subject": {"reference": f"Patient/{response.patient_id}"},
        "authored": _instant(response.submitted_at or response.updated_at),
        "item": [
            {
                "linkId": item.linkId,
                "text": item.text,
                "answer": _values(item.type, asked[item.linkId]),
            }
            for item in questionnaire.item
            if item.linkId in asked
        ],
    }


async def patient_responses(session: AsyncSession, patient_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every intake of the patient that has an answer, oldest first, for `$everything`."""
    rows = await session.exec(
        select(IntakeResponse)
        .where(IntakeResponse.patient_id == patient_id)
        .order_by(col(IntakeResponse.created_at), col(IntakeResponse.appointment_id))
    )
    resources = [questionnaire_response(r) for r in rows.all()]
    return [r for r in resources if r["item"]]

"""The intake over HTTP: the patient's step (autosave, resume, required answers, sealed at rest,
audited), the staff's reads and the admin's questionnaire, each route's authorization matrix,
and the answers as a FHIR R4B QuestionnaireResponse in `$everything`."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from sqlmodel import col, select

from app.core.crypto import Keyring
from app.core.db import Database
from app.core.models import AuditEvent, Role
from app.intake.models import IntakeResponse
from app.intake.questionnaire import DEFAULT_QUESTIONNAIRE
from app.intake.rules import DEFAULT_RULES
from app.records.rotation import rotate_note_key
from scheduling.models import AppointmentType
from tests.conftest import Factory, bearer_login
from tests.signaling.conftest import BIRTH_DATE, WaitingFactory


@pytest.fixture
def waiting(db: Database, factory: Factory, settings: Any) -> WaitingFactory:
    return WaitingFactory(db, factory, settings)


async def consent(client: Any, token: str) -> str:
    base = f"/api/join/{token}"
    resp = await client.post(f"{base}/identity", json={"birth_date": BIRTH_DATE.isoformat()})
    assert resp.status == 200, await resp.text()
    version = (await (await client.get(f"{base}/consent")).json())["version"]
    resp = await client.post(f"{base}/consent", json={"version": version, "accepted": True})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["step"] == "intake"
    return base


async def answer(client: Any, token: str, answers: dict[str, Any]) -> None:
    """Consent, answer and send, as the patient's page does."""
    base = await consent(client, token)
    resp = await client.patch(f"{base}/intake", json={"answers": answers})
    assert resp.status == 200, await resp.text()
    resp = await client.post(f"{base}/intake/submit")
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["step"] == "device_check"


async def test_answers_save_as_they_go_resume_and_are_checked_at_submit(
    client, waiting: WaitingFactory, db: Database
):
    v = await waiting.visitable()
    base = f"/api/join/{v.token}"
    resp = await client.post(f"{base}/identity", json={"birth_date": BIRTH_DATE.isoformat()})
    assert resp.status == 200
    early = await client.get(f"{base}/intake")
    assert early.status == 409 and (await early.json())["error"]["fields"] == {"step": "consent"}
    await consent(client, v.token)

    first = await (await client.get(f"{base}/intake")).json()
    assert first["questionnaire"]["item"][0]["linkId"] == "reason"
    assert first["answers"] == {} and first["submitted_at"] is None

    resp = await client.patch(
        f"{base}/intake", json={"answers": {"pain": 6, "symptoms": ["Cough"]}}
    )
    assert resp.status == 200, await resp.text()
    bad = await client.patch(f"{base}/intake", json={"answers": {"pain": 12, "nope": 1}})
    assert bad.status == 400
    assert (await bad.json())["error"]["fields"] == {
        "pain": "give a number from 0 to 10",
        "nope": "no such question",
    }
    missing = await client.post(f"{base}/intake/submit")
    assert missing.status == 400
    assert (await missing.json())["error"]["fields"] == {"reason": "Please answer this question."}

    # A reload finds what was saved; the step is still the intake.
    assert (await (await client.get(f"{base}/status")).json())["step"] == "intake"
    again = await (await client.get(f"{base}/intake")).json()
    assert again["answers"] == {"pain": 6, "symptoms": ["Cough"]}

    await client.patch(f"{base}/intake", json={"answers": {"reason": "Cough for a week"}})
    done = await client.post(f"{base}/intake/submit")
    assert done.status == 200 and (await done.json())["step"] == "device_check"
    assert (await (await client.get(f"{base}/status")).json())["step"] == "device_check"

    async with db.session() as session:
        stored = (await session.exec(sa.text("SELECT answers FROM intake_response"))).one()[0]
        events = (
            await session.exec(select(AuditEvent).where(AuditEvent.patient_id == str(v.patient.id)))
        ).all()
    assert stored.startswith("oc1s:") and "Cough" not in stored
    actions = [e.action for e in events if e.action.startswith("intake.")]
    assert {"intake.read", "intake.save", "intake.submit"} <= set(actions)
    assert all(e.actor_role == "patient" for e in events if e.action.startswith("intake."))


async def test_a_patient_reads_only_their_own_appointment_s_answers(
    client, waiting: WaitingFactory, db: Database
):
    v = await waiting.visitable()
    async with db.session() as session:
        kind = await session.get(AppointmentType, v.appointment.appointment_type_id)
    assert kind is not None
    _, _, omar_token = await waiting.appointment(
        v.clinic, v.provider, kind, starts_in=timedelta(minutes=26), given="Omar"
    )
    await consent(client, omar_token)
    # Signed in for Omar's appointment: Nora's link does not open for this session.
    for resp in (
        await client.get(f"/api/join/{v.token}/intake"),
        await client.patch(f"/api/join/{v.token}/intake", json={"answers": {"pain": 1}}),
        await client.post(f"/api/join/{v.token}/intake/submit"),
    ):
        assert resp.status == 409
        assert (await resp.json())["error"]["fields"] == {"step": "identity"}


async def _staff(factory: Factory, clinic: Any) -> dict[str, Any]:
    return {
        "admin": await factory.staff(Role.ADMIN, clinic),
        "provider": await factory.staff(Role.PROVIDER, clinic),
        "scheduler": await factory.staff(Role.SCHEDULER, clinic),
    }


async def test_staff_read_answers_and_cards_by_role_and_clinic(
    client, waiting: WaitingFactory, factory: Factory, db: Database
):
    v = await waiting.visitable()
    await answer(
        client,
        v.token,
        {"reason": "Tight chest", "symptoms": ["Chest pain", "Shortness of breath"], "pain": 9},
    )
    own = await _staff(factory, v.clinic)
    other = await _staff(factory, await factory.clinic())
    url = f"/api/appointments/{v.appointment.id}/intake"
    expected = {
        ("admin", "own"): 200,
        ("provider", "own"): 200,
        ("scheduler", "own"): 403,
        ("admin", "other"): 404,
        ("provider", "other"): 404,
        ("scheduler", "other"): 403,
    }
    seen = {}
    for (role, where), _ in expected.items():
        account = (own if where == "own" else other)[role]
        resp = await client.get(url, headers=await bearer_login(client, account))
        seen[(role, where)] = resp.status
        if resp.status == 200:
            shown = await resp.json()
            assert [c["indicator"] for c in shown["cards"]] == ["critical", "warning"]
            assert shown["cards"][0]["summary"] == "Chest pain with shortness of breath"
            assert "not a diagnosis" in shown["cards"][0]["detail"]
            assert {
                "linkId": "pain",
                "text": DEFAULT_QUESTIONNAIRE["item"][7]["text"],
                "answer": 9,
            } in shown["answers"]
    assert seen == expected
    assert (await client.get(url)).status == 401
    async with db.session() as session:
        reads = (
            await session.exec(
                select(AuditEvent).where(
                    AuditEvent.action == "intake.read", AuditEvent.actor_role != "patient"
                )
            )
        ).all()
    outcomes = sorted((e.actor_role, e.outcome) for e in reads)
    assert ("provider", "success") in outcomes and ("provider", "denied") in outcomes
    assert all(e.patient_id == str(v.patient.id) for e in reads if e.outcome == "success")


async def test_admins_of_the_clinic_view_and_replace_a_visit_type_s_questionnaire(
    client, waiting: WaitingFactory, factory: Factory
):
    v = await waiting.visitable()
    type_id = v.appointment.appointment_type_id
    own = await _staff(factory, v.clinic)
    other = await _staff(factory, await factory.clinic())
    url = f"/api/appointment-types/{type_id}/intake"
    mine = {
        "resourceType": "Questionnaire",
        "title": "Skin check",
        "item": [
            {"linkId": "where", "text": "Where is the rash?", "type": "string", "required": True},
            {"linkId": "itch", "text": "Does it itch?", "type": "boolean"},
        ],
    }
    rules = [
        {
            "id": "itchy",
            "when": {"all": [{"linkId": "itch", "operator": "=", "value": True}]},
            "indicator": "info",
            "summary": "Itchy rash",
        }
    ]
    expected = {
        ("admin", "own"): (200, 200),
        ("provider", "own"): (403, 403),
        ("scheduler", "own"): (403, 403),
        ("admin", "other"): (404, 404),
        ("provider", "other"): (403, 403),
        ("scheduler", "other"): (403, 403),
    }
    seen = {}
    for role, where in expected:
        headers = await bearer_login(client, (own if where == "own" else other)[role])
        got = await client.get(url, headers=headers)
        put = await client.put(url, json={"questionnaire": mine, "rules": rules}, headers=headers)
        seen[(role, where)] = (got.status, put.status)
    assert seen == expected
    assert (await client.get(url)).status == 401

    headers = await bearer_login(client, own["admin"])
    shown = await (await client.get(url, headers=headers)).json()
    assert shown["is_default"] is False and shown["questionnaire"]["title"] == "Skin check"
    assert shown["rules"][0]["id"] == "itchy"
    broken = {**mine, "item": [{"linkId": "x", "text": "Pick", "type": "choice"}]}
    bad = await client.put(
        url, json={"questionnaire": broken, "rules": DEFAULT_RULES}, headers=headers
    )
    assert bad.status == 400
    assert "questionnaire.item.0" in " ".join((await bad.json())["error"]["fields"])
    bad = await client.put(
        url, json={"questionnaire": mine, "rules": DEFAULT_RULES}, headers=headers
    )
    assert bad.status == 400 and (await bad.json())["error"]["fields"]["rules.0.when"].startswith(
        "no question with linkId"
    )

    # The visit type's next patient answers the clinic's own questions.
    client.session.cookie_jar.clear()
    base = await consent(client, v.token)
    asked = await (await client.get(f"{base}/intake")).json()
    assert [i["linkId"] for i in asked["questionnaire"]["item"]] == ["where", "itch"]


async def test_answers_export_as_a_valid_fhir_questionnaire_response(
    client, waiting: WaitingFactory
):
    v = await waiting.visitable()
    await answer(
        client,
        v.token,
        {"reason": "Bleeding", "pregnant": True, "pregnancy-bleeding": True, "pain": 4},
    )
    # The patient's own provider (in their care) reads the record.
    resp = await client.get(
        f"/fhir/Patient/{v.patient.id}/$everything", headers=await bearer_login(client, v.provider)
    )
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    Bundle.model_validate(data)
    found = [
        e["resource"]
        for e in data["entry"]
        if e["resource"]["resourceType"] == "QuestionnaireResponse"
    ]
    assert len(found) == 1
    response = QuestionnaireResponse.model_validate(found[0])
    assert response.status == "completed" and response.id == str(v.appointment.id)
    assert response.subject.reference == f"Patient/{v.patient.id}"
    answers = {item.linkId: item.answer[0] for item in response.item}
    assert answers["pregnant"].valueBoolean is True and answers["pain"].valueInteger == 4
    assert answers["reason"].valueString == "Bleeding"
    assert uuid.UUID(response.id)


async def test_key_rotation_seals_and_reseals_intake_answers(
    client, waiting: WaitingFactory, db: Database, settings: Any
):
    v = await waiting.visitable()
    await answer(client, v.token, {"reason": "Headache", "pain": 3})
    async with db.session() as session:  # as if stored before sealing
        await session.exec(
            sa.update(IntakeResponse)
            .where(col(IntakeResponse.appointment_id) == v.appointment.id)
            .values(answers=sa.type_coerce('{"reason":"Headache","pain":3}', sa.Text))
        )
        await session.commit()
    report = await rotate_note_key(db, Keyring.from_settings(settings))
    assert report.intake_answers == 1
    async with db.session() as session:
        stored = (await session.exec(sa.text("SELECT answers FROM intake_response"))).one()[0]
        response = await session.get(IntakeResponse, v.appointment.id)
    assert stored.startswith("oc1s:") and "Headache" not in stored
    assert response is not None and '"Headache"' in response.answers

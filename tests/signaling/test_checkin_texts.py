"""The patient's say on text messages while checking in: after the identity check they see
whether the clinic can text them (the number's last four digits only) and agree or stop; the
consent is recorded as theirs (at check-in, by nobody on staff) and audited. Nobody else can
read or change it through the patient's link."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from app.core.db import Database
from app.core.models import AuditEvent, Patient, Role
from scheduling.models import AppointmentType, ConsentWay, TextConsent
from tests.conftest import Factory, bearer_login
from tests.signaling.conftest import BIRTH_DATE, WaitingFactory


async def _give_phone(db: Database, patient: Patient, phone: str) -> None:
    async with db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        row.phone = phone
        session.add(row)
        await session.commit()


async def _identify(client: Any, token: str) -> str:
    base = f"/api/join/{token}"
    resp = await client.post(f"{base}/identity", json={"birth_date": BIRTH_DATE.isoformat()})
    assert resp.status == 200, await resp.text()
    return base


async def test_the_patient_agrees_to_texts_at_check_in_and_takes_it_back(
    client, waiting: WaitingFactory, db: Database
):
    v = await waiting.visitable()
    base = await _identify(client, v.token)
    nothing = await (await client.get(f"{base}/texts")).json()
    assert nothing == {"can_text": False, "number_ends": None, "agreed": False}
    refused = await client.put(f"{base}/texts", json={"agreed": True})
    assert refused.status == 400

    await _give_phone(db, v.patient, "+1 212 555 0100")
    shown = await (await client.get(f"{base}/texts")).json()
    assert shown == {"can_text": True, "number_ends": "0100", "agreed": False}
    resp = await client.put(f"{base}/texts", json={"agreed": True})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["agreed"] is True
    async with db.session() as session:
        row = await session.get(TextConsent, v.patient.id)
    assert row is not None and row.way == ConsentWay.PATIENT_AT_CHECKIN
    assert row.given_by is None and row.phone == "+12125550100"

    resp = await client.put(f"{base}/texts", json={"agreed": False})
    assert (await resp.json())["agreed"] is False
    async with db.session() as session:
        events = (
            await session.exec(
                select(AuditEvent).where(col(AuditEvent.action).startswith("patient.text_consent"))
            )
        ).all()
    assert [e.action for e in events] == [
        "patient.text_consent.read",
        "patient.text_consent.read",
        "patient.text_consent.agree",
        "patient.text_consent.withdraw",
    ]
    assert {(e.actor_role, e.patient_id) for e in events} == {("patient", str(v.patient.id))}


async def test_only_the_identified_patient_of_the_link_reaches_it(
    client, waiting: WaitingFactory, db: Database, factory: Factory
):
    v = await waiting.visitable()
    await _give_phone(db, v.patient, "+1 212 555 0100")
    url = f"/api/join/{v.token}/texts"
    # Before the identity check: the step is asked for.
    for resp in (await client.get(url), await client.put(url, json={"agreed": True})):
        assert resp.status == 409
        assert (await resp.json())["error"]["fields"] == {"step": "identity"}
    # Staff of the clinic are not the patient.
    for role in (Role.ADMIN, Role.SCHEDULER, Role.PROVIDER):
        headers = await bearer_login(client, await factory.staff(role, v.clinic))
        resp = await client.put(url, json={"agreed": True}, headers=headers)
        assert resp.status == 409, role
    # Another patient, identified on their own link, cannot use this one.
    async with db.session() as session:
        kind = await session.get(AppointmentType, v.appointment.appointment_type_id)
    assert kind is not None
    _, _, omar_token = await waiting.appointment(
        v.clinic, v.provider, kind, starts_in=timedelta(minutes=26), given="Omar"
    )
    await _identify(client, omar_token)
    for resp in (await client.get(url), await client.put(url, json={"agreed": True})):
        assert resp.status == 409
    # An unknown link.
    resp = await client.get("/api/join/not-a-link/texts")
    assert resp.status in (404, 410)
    async with db.session() as session:
        assert await session.get(TextConsent, v.patient.id) is None

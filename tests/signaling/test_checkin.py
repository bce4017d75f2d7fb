"""A patient's check-in over HTTP: identity, consent, devices, queue, and what goes wrong."""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import select

from app.core.models import AuditEvent
from scheduling.models import Appointment, AppointmentStatus, AppointmentType
from signaling.models import CheckIn, ConsentRecord
from tests.signaling.conftest import BIRTH_DATE, WaitingFactory, check_in


async def test_the_whole_check_in_records_consent_and_moves_the_appointment(
    client, waiting: WaitingFactory, db
):
    v = await waiting.visitable()
    base = f"/api/join/{v.token}"
    before = await client.get(f"{base}/status")
    assert before.status == 409 and (await before.json())["error"]["fields"] == {"step": "identity"}

    await check_in(client, v.token)

    status = await (await client.get(f"{base}/status")).json()
    assert status["step"] == "waiting"
    assert status["provider_name"] == v.provider.user.full_name
    async with db.session() as session:
        appointment = await session.get(Appointment, v.appointment.id)
        record = (await session.exec(select(ConsentRecord))).one()
        entry = await session.get(CheckIn, v.appointment.id)
        events = (
            await session.exec(select(AuditEvent).where(AuditEvent.patient_id == str(v.patient.id)))
        ).all()
    assert appointment.status == AppointmentStatus.CHECKED_IN
    assert record.version == 1 and record.appointment_id == v.appointment.id
    assert record.accepted_at is not None and record.client_addr == "127.0.0.1"
    assert entry.waiting_since is not None and '"camera": "ok"' in entry.device_check
    actions = {e.action for e in events}
    assert {
        "checkin.identity",
        "checkin.consent",
        "checkin.device_check",
        "checkin.enter_queue",
    } <= actions
    assert all(e.actor_role == "patient" for e in events)


async def test_wrong_birth_dates_count_down_then_lock_the_link(client, waiting: WaitingFactory):
    v = await waiting.visitable()
    url = f"/api/join/{v.token}/identity"
    wrong = {"birth_date": (BIRTH_DATE + timedelta(days=1)).isoformat()}
    messages = []
    for _ in range(4):
        resp = await client.post(url, json=wrong)
        assert resp.status == 400
        body = await resp.json()
        assert body["error"]["fields"] == {"birth_date": "does not match"}
        messages.append(body["error"]["message"])
    assert messages[0].endswith("4 attempt(s) left.") and messages[-1].endswith(
        "1 attempt(s) left."
    )
    locked = await client.post(url, json=wrong)
    assert locked.status == 423
    assert "The clinic has been told" in (await locked.json())["error"]["message"]
    # Even the right date no longer opens it, and the page says why.
    right = await client.post(url, json={"birth_date": BIRTH_DATE.isoformat()})
    assert right.status == 423
    assert (await client.get(f"/api/join/{v.token}/consent")).status == 423


async def test_steps_cannot_be_skipped(client, waiting: WaitingFactory):
    v = await waiting.visitable()
    base = f"/api/join/{v.token}"
    for method, path, body in (
        ("GET", "/consent", None),
        ("POST", "/consent", {"version": 1, "accepted": True}),
        ("POST", "/waiting", None),
    ):
        resp = await client.request(method, base + path, json=body)
        assert resp.status == 409, path
        assert (await resp.json())["error"]["fields"]["step"] == "identity"
    await client.post(f"{base}/identity", json={"birth_date": BIRTH_DATE.isoformat()})
    resp = await client.post(f"{base}/waiting")
    assert resp.status == 409 and (await resp.json())["error"]["fields"]["step"] == "consent"


async def test_consent_must_match_the_current_version_and_be_given(client, waiting: WaitingFactory):
    v = await waiting.visitable()
    base = f"/api/join/{v.token}"
    await client.post(f"{base}/identity", json={"birth_date": BIRTH_DATE.isoformat()})
    stale = await client.post(f"{base}/consent", json={"version": 7, "accepted": True})
    assert stale.status == 409 and "changed" in (await stale.json())["error"]["message"]
    refused = await client.post(f"{base}/consent", json={"version": 1, "accepted": False})
    assert refused.status == 400 and "accepted" in (await refused.json())["error"]["fields"]


async def test_a_cookie_of_another_appointment_does_not_carry_over(client, waiting: WaitingFactory):
    v = await waiting.visitable()
    async with waiting.db.session() as session:
        kind = await session.get(AppointmentType, v.appointment.appointment_type_id)
    _, _, other_token = await waiting.appointment(
        v.clinic, v.provider, kind, starts_in=timedelta(minutes=26)
    )
    await client.post(f"/api/join/{v.token}/identity", json={"birth_date": BIRTH_DATE.isoformat()})
    resp = await client.get(f"/api/join/{other_token}/consent")
    assert resp.status == 409


async def test_bad_links_say_why(client, waiting: WaitingFactory):
    clinic, provider, _, kind = await waiting.clinic_day()
    _, _, early = await waiting.appointment(clinic, provider, kind, starts_in=timedelta(hours=3))
    resp = await client.post(f"/api/join/{early}/identity", json={"birth_date": "1979-04-02"})
    assert resp.status == 410
    body = await resp.json()
    assert body["error"]["fields"] == {"link": "too_early"}
    resp = await client.post("/api/join/garbage/identity", json={"birth_date": "1979-04-02"})
    assert resp.status == 404
    resp = await client.post(f"/api/join/{early}/identity", json={"birth_date": "not a date"})
    assert resp.status == 400 and "birth_date" in (await resp.json())["error"]["fields"]
    assert date.fromisoformat("1979-04-02") == BIRTH_DATE

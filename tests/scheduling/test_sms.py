"""Join links and reminders by text message, through the outbox, against a stand-in for a
Twilio-compatible provider on loopback (tests/support/sms_provider.py): sent once, retried after
500 or 429, failed at once after 400 with the provider's reason, never twice after the sender
crashed between the provider's answer and marking the row sent; no text without consent.
The sender's drain (`send_due`) is called directly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from app.core.config import SettingsError
from app.core.models import AuditEvent, Patient, utcnow
from scheduling import outbox
from scheduling.models import Channel, OutboxMessage, OutboxStatus
from tests.conftest import bearer_login
from tests.scheduling.conftest import at, book_body, next_weekday
from tests.support.sms_provider import ACCOUNT, SENDER, TOKEN, SmsProvider
from tests.support.waiting import wait_for

NUMBER = "+12125550100"


@pytest.fixture
async def provider(aiohttp_server) -> AsyncIterator[SmsProvider]:  # type: ignore[no-untyped-def]
    stand_in = SmsProvider()
    server = await aiohttp_server(stand_in.app(), host="127.0.0.1")
    stand_in.url = str(server.make_url("")).rstrip("/")
    yield stand_in
    stand_in.release()


@pytest.fixture
def texting(settings_factory, provider):  # type: ignore[no-untyped-def]
    """Settings whose outbox sends texts to the stand-in; retries at once."""
    return settings_factory(
        background_tasks=False,
        sms_url=provider.url,
        sms_account=ACCOUNT,
        sms_token=TOKEN,
        sms_from=SENDER,
        outbox_backoff_seconds=0,
    )


async def _phone_only(db, cal, phone: str = "+1 212 555 0100") -> Patient:  # type: ignore[no-untyped-def]
    patient = Patient(
        clinic_id=cal.clinic.id,
        given_name="Tomas",
        family_name="Phoneonly",
        birth_date=date(1970, 1, 2),
        phone=phone,
        timezone="America/New_York",
    )
    async with db.session() as session:
        session.add(patient)
        await session.commit()
    return patient


async def _book(client, cal, patient, headers, *, consent: bool, day: int = 0) -> dict:  # type: ignore[no-untyped-def]
    body = book_body(cal, at(next_weekday(day), 9)) | {
        "patient_id": str(patient.id),
        "text_consent": consent,
    }
    resp = await client.post("/api/appointments", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def _texts(db, appointment_id: str) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    async with db.session() as session:
        rows = await session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.channel == Channel.SMS)
            .order_by(col(OutboxMessage.send_after))
        )
        return [r for r in rows.all() if str(r.appointment_id) == appointment_id]


async def _detail(client, appointment_id: str, headers) -> dict:  # type: ignore[no-untyped-def]
    resp = await client.get(f"/api/appointments/{appointment_id}", headers=headers)
    assert resp.status == 200
    return await resp.json()


async def test_a_booking_with_consent_texts_the_short_link_once(
    client, sched, db, provider, texting, caplog
):
    caplog.set_level(logging.DEBUG)
    cal = await sched.calendar()
    patient = await _phone_only(db, cal)
    headers = await bearer_login(client, cal.scheduler)
    booked = await _book(client, cal, patient, headers, consent=True)
    assert booked["texted"] is True and booked["emailed"] is False
    assert [w["code"] for w in booked["warnings"]] == ["no_email"]
    assert "by text message" in booked["warnings"][0]["message"]

    assert await outbox.send_due(db, texting) == 1
    [text] = provider.delivered
    [seen] = provider.requests
    assert seen.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert seen.auth == (ACCOUNT, TOKEN) and seen.key
    assert (text["To"], text["From"]) == (NUMBER, SENDER)
    assert booked["join_url"] in text["Body"] and "/j/" in booked["join_url"]
    assert cal.clinic.name in text["Body"]
    # No health details: neither the provider nor the kind of visit.
    assert cal.provider.user.full_name not in text["Body"]
    assert cal.kind.name not in text["Body"]

    detail = await _detail(client, booked["id"], headers)
    assert detail["text_status"] == "sent" and detail["email_status"] is None
    [sent] = [m for m in detail["messages"] if m["kind"] == "confirmation"]
    assert sent["channel"] == "sms" and sent["status"] == "sent" and sent["to"] == NUMBER
    assert sent["provider_ref"] == text["sid"] and sent["delivered_via"] == "sms"
    # Reminders wait for their time; nothing is sent twice.
    reminders = [m for m in detail["messages"] if m["kind"] == "reminder"]
    assert len(reminders) == 2 and {m["channel"] for m in reminders} == {"sms"}
    assert await outbox.send_due(db, texting) == 0
    assert len(provider.delivered) == 1
    assert TOKEN not in caplog.text

    async with db.session() as session:
        actions = {
            (e.action, e.patient_id, e.detail)
            for e in (await session.exec(select(AuditEvent))).all()
        }
    assert ("sms.confirmation", str(patient.id), None) in actions
    assert ("patient.text_consent.agree", str(patient.id), "way=staff_at_booking") in actions


async def test_reminders_go_by_text_at_their_time(client, sched, db, provider, texting):
    cal = await sched.calendar()
    patient = await _phone_only(db, cal)
    headers = await bearer_login(client, cal.scheduler)
    booked = await _book(client, cal, patient, headers, consent=True)
    assert await outbox.send_due(db, texting) == 1
    async with db.session() as session:  # the day-before reminder's time has come
        connection = await session.connection()
        await connection.execute(
            sa.update(OutboxMessage)
            .where(col(OutboxMessage.kind) == "reminder", col(OutboxMessage.send_after) > utcnow())
            .values(send_after=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    assert await outbox.send_due(db, texting) == 2
    bodies = [t["Body"] for t in provider.texts_to(NUMBER)]
    assert len(bodies) == 3 and all(booked["join_url"] in b for b in bodies)
    assert sum("reminder" in b for b in bodies) == 2


@pytest.mark.parametrize("status", [500, 429, 503])
async def test_a_text_is_retried_after_a_server_error(client, sched, db, provider, texting, status):
    cal = await sched.calendar()
    patient = await _phone_only(db, cal)
    headers = await bearer_login(client, cal.scheduler)
    booked = await _book(client, cal, patient, headers, consent=True)
    provider.answer(status, {"code": 20429, "message": "Too many requests"})
    assert await outbox.send_due(db, texting) == 0
    [first] = [
        m
        for m in (await _detail(client, booked["id"], headers))["messages"]
        if m["kind"] == "confirmation"
    ]
    assert first["status"] == "retrying" and first["attempts"] == 1
    assert str(status) in first["last_error"]
    assert provider.delivered == []
    assert await outbox.send_due(db, texting) == 1
    detail = await _detail(client, booked["id"], headers)
    [sent] = [m for m in detail["messages"] if m["kind"] == "confirmation"]
    assert sent["status"] == "sent" and sent["attempts"] == 2 and sent["last_error"] is None
    assert len(provider.texts_to(NUMBER)) == 1


async def test_an_unreachable_provider_is_retried(client, sched, db, provider, settings_factory):
    from tests.support.servers import free_port

    cal = await sched.calendar()
    patient = await _phone_only(db, cal)
    headers = await bearer_login(client, cal.scheduler)
    booked = await _book(client, cal, patient, headers, consent=True)
    down = settings_factory(
        background_tasks=False,
        sms_url=f"http://127.0.0.1:{free_port()}",
        sms_account=ACCOUNT,
        sms_token=TOKEN,
        sms_from=SENDER,
        outbox_backoff_seconds=0,
    )
    assert await outbox.send_due(db, down) == 0
    detail = await _detail(client, booked["id"], headers)
    assert detail["text_status"] == "retrying"
    [first] = [m for m in detail["messages"] if m["kind"] == "confirmation"]
    assert "unreachable" in first["last_error"] and TOKEN not in first["last_error"]


async def test_a_refused_text_fails_at_once_with_the_providers_reason(
    client, sched, db, provider, texting
):
    cal = await sched.calendar()
    patient = await _phone_only(db, cal)
    headers = await bearer_login(client, cal.scheduler)
    booked = await _book(client, cal, patient, headers, consent=True)
    provider.answer(400, {"code": 21211, "message": "The 'To' number is not a valid phone number."})
    assert await outbox.send_due(db, texting) == 0
    detail = await _detail(client, booked["id"], headers)
    assert detail["text_status"] == "failed"
    [failed] = [m for m in detail["messages"] if m["kind"] == "confirmation"]
    assert failed["status"] == "failed" and failed["attempts"] == 1  # no retry of a 4xx
    assert "21211" in failed["last_error"] and "not a valid phone number" in failed["last_error"]
    assert await outbox.send_due(db, texting) == 0 and provider.delivered == []
    trouble = await (await client.get("/api/messages/undelivered", headers=headers)).json()
    assert [m["id"] for m in trouble["messages"]] == [failed["id"]]
    assert trouble["messages"][0]["channel"] == "sms"
    # An admin may retry it (say, once the number is fixed at the provider).
    admin = await bearer_login(client, cal.admin)
    resp = await client.post(f"/api/messages/{failed['id']}/retry", headers=admin)
    assert resp.status == 200, await resp.text()
    assert await outbox.send_due(db, texting) == 1
    assert len(provider.texts_to(NUMBER)) == 1


async def test_never_twice_after_the_sender_crashed_before_marking_it_sent(
    client, sched, db, provider, texting
):
    cal = await sched.calendar()
    patient = await _phone_only(db, cal)
    headers = await bearer_login(client, cal.scheduler)
    booked = await _book(client, cal, patient, headers, consent=True)
    provider.hang_next()  # the provider accepts the text, the answer never reaches the sender
    sender = asyncio.create_task(outbox.send_due(db, texting))
    await wait_for(lambda: provider.delivered, 10, "the provider to accept the text")
    sender.cancel()  # the worker dies here: the row is still pending, its claim held
    with pytest.raises(asyncio.CancelledError):
        await sender
    provider.release()
    [row] = [t for t in await _texts(db, booked["id"]) if t.kind == "confirmation"]
    assert row.status == OutboxStatus.PENDING and row.attempts == 1
    # A restarted worker does not take it while the claim holds…
    assert await outbox.send_due(db, texting) == 0
    # …and takes it again once the claim has expired.
    async with db.session() as session:
        connection = await session.connection()
        await connection.execute(
            sa.update(OutboxMessage)
            .where(col(OutboxMessage.id) == row.id)
            .values(claimed_until=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    assert await outbox.send_due(db, texting) == 1
    first, again = provider.requests
    assert first.key == again.key == str(row.id)  # the same idempotency key both times
    assert len(provider.delivered) == 1  # one text on the phone
    [sent] = [t for t in await _texts(db, booked["id"]) if t.kind == "confirmation"]
    assert sent.status == OutboxStatus.SENT and sent.provider_ref == provider.delivered[0]["sid"]
    assert await outbox.send_due(db, texting) == 0
    assert len(provider.requests) == 2


async def test_no_text_without_consent(client, sched, db, provider, texting):
    cal = await sched.calendar()
    patient = await _phone_only(db, cal)
    headers = await bearer_login(client, cal.scheduler)
    booked = await _book(client, cal, patient, headers, consent=False)
    assert booked["texted"] is False
    assert "no_text_consent" in [w["code"] for w in booked["warnings"]]
    assert await _texts(db, booked["id"]) == []
    assert await outbox.send_due(db, texting) == 0 and provider.requests == []

    # Agreed later (recorded by staff), then a new link goes by text…
    url = f"/api/patients/{patient.id}/text-consent"
    resp = await client.put(url, json={"agreed": True}, headers=headers)
    assert resp.status == 200, await resp.text()
    given = await resp.json()
    assert given["agreed"] and given["phone"] == NUMBER and given["way"] == "staff"
    assert given["given_by"] == str(cal.scheduler.id)
    resent = await (
        await client.post(f"/api/appointments/{booked['id']}/resend-link", headers=headers)
    ).json()
    assert resent["texted"] is True
    assert await outbox.send_due(db, texting) == 1
    assert resent["join_url"] in provider.delivered[0]["Body"]

    # …withdrawn: the reminders already queued are withdrawn, and a new time is not texted.
    pending = [t for t in await _texts(db, booked["id"]) if t.status == OutboxStatus.PENDING]
    assert [t.kind for t in pending] == ["reminder", "reminder"]
    resp = await client.put(url, json={"agreed": False}, headers=headers)
    assert (await resp.json())["agreed"] is False
    detail = await _detail(client, booked["id"], headers)
    statuses = {m["status"] for m in detail["messages"] if m["kind"] == "reminder"}
    assert statuses == {"withdrawn"}
    moved = await client.post(
        f"/api/appointments/{booked['id']}/reschedule",
        json={"start": at(next_weekday(1), 10).isoformat()},
        headers=headers,
    )
    assert moved.status == 200, await moved.text()
    async with db.session() as session:  # every reminder due now
        connection = await session.connection()
        await connection.execute(
            sa.update(OutboxMessage).values(send_after=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    assert await outbox.send_due(db, texting) == 0
    assert len(provider.delivered) == 1

    # Consent is for a number: a changed number needs it again.
    await client.put(url, json={"agreed": True}, headers=headers)
    async with db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        row.phone = "+1 212 555 0199"
        session.add(row)
        await session.commit()
    again = await (
        await client.post(f"/api/appointments/{booked['id']}/resend-link", headers=headers)
    ).json()
    assert again["texted"] is False


async def test_consent_needs_a_valid_number(client, sched, db):
    cal = await sched.calendar()  # its patient has an email and no phone
    headers = await bearer_login(client, cal.scheduler)
    body = book_body(cal, at(next_weekday(0), 9)) | {"text_consent": True}
    resp = await client.post("/api/appointments", json=body, headers=headers)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_input" and "text_consent" in error["fields"]
    # Nothing was booked.
    listed = await client.get(
        f"/api/appointments?from={next_weekday(0)}&to={next_weekday(0)}&tz=UTC", headers=headers
    )
    assert await listed.json() == []
    resp = await client.put(
        f"/api/patients/{cal.patient.id}/text-consent", json={"agreed": True}, headers=headers
    )
    assert resp.status == 400


async def test_without_a_provider_texts_wait_in_the_development_mailbox(
    client, sched, db, settings
):
    assert settings.sms_url is None and settings.sms_dev_mailbox
    cal = await sched.calendar()
    patient = await _phone_only(db, cal)
    headers = await bearer_login(client, cal.scheduler)
    booked = await _book(client, cal, patient, headers, consent=True)
    assert await outbox.send_due(db, settings) == 1
    detail = await _detail(client, booked["id"], headers)
    [kept] = [m for m in detail["messages"] if m["kind"] == "confirmation"]
    assert kept["status"] == "sent" and kept["delivered_via"] == "dev_mailbox"
    page = await client.get("/dev/mailbox", headers=headers)
    assert page.status == 200
    html = await page.text()
    assert "Text message to " + NUMBER in html and booked["join_url"] in html


async def test_production_without_a_provider_fails_with_the_reason(
    client, sched, db, settings_factory
):
    cal = await sched.calendar()
    patient = await _phone_only(db, cal)
    headers = await bearer_login(client, cal.scheduler)
    booked = await _book(client, cal, patient, headers, consent=True)
    production = settings_factory(background_tasks=False).model_copy(
        update={"env": "production", "outbox_max_attempts": 1}
    )
    assert not production.sms_dev_mailbox
    await outbox.send_due(db, production)
    detail = await _detail(client, booked["id"], headers)
    [failed] = [m for m in detail["messages"] if m["kind"] == "confirmation"]
    assert failed["status"] == "failed" and "OPENCONSULT_SMS_URL" in failed["last_error"]


def test_an_sms_provider_needs_its_account_token_and_sender(settings_factory):
    with pytest.raises(SettingsError) as refused:
        settings_factory(sms_url="https://sms.example", sms_account=ACCOUNT)
    assert "OPENCONSULT_SMS_TOKEN" in str(refused.value)
    assert "OPENCONSULT_SMS_FROM" in str(refused.value)
    ok = settings_factory(
        sms_url="https://sms.example", sms_account=ACCOUNT, sms_token=TOKEN, sms_from=SENDER
    )
    assert TOKEN not in repr(ok) and TOKEN not in str(ok.model_dump())
    assert settings_factory(sms_url="").sms_url is None


async def test_phone_numbers_are_stored_in_e164(client, sched, db):
    cal = await sched.calendar()
    headers = await bearer_login(client, cal.scheduler)
    base = {"given_name": "Ana", "family_name": "Ruiz", "birth_date": "1990-01-01"}
    resp = await client.post(
        "/api/patients", json=base | {"phone": "+34 612 34 56 78"}, headers=headers
    )
    assert resp.status == 201 and (await resp.json())["phone"] == "+34612345678"
    # Without a country code, the clinic's country (from its phone number) is meant.
    resp = await client.post("/api/patients", json=base | {"phone": "12345"}, headers=headers)
    assert resp.status == 400
    assert "phone" in (await resp.json())["error"]["fields"]
    resp = await client.post(
        "/api/patients", json=base | {"phone": "(212) 555-0142"}, headers=headers
    )
    assert resp.status == 400  # this clinic has no phone: the country is unknown
    async with db.session() as session:
        clinic = await session.get(type(cal.clinic), cal.clinic.id)
        assert clinic is not None
        clinic.phone = "+1 212 555 0142"
        session.add(clinic)
        await session.commit()
    resp = await client.post(
        "/api/patients", json=base | {"phone": "(212) 555-0142"}, headers=headers
    )
    assert resp.status == 201 and (await resp.json())["phone"] == "+12125550142"


@pytest.mark.parametrize(
    ("who", "read", "write"),
    [
        ("admin", 200, 200),
        ("scheduler", 200, 200),
        ("provider", 403, 403),
        ("other_admin", 404, 404),
        ("other_scheduler", 404, 404),
        ("other_provider", 403, 403),
        ("nobody", 401, 401),
    ],
)
async def test_text_consent_authorization_matrix(client, sched, db, factory, who, read, write):
    cal = await sched.calendar()
    patient = await _phone_only(db, cal)
    other = await sched.calendar()
    accounts = {
        "admin": cal.admin,
        "scheduler": cal.scheduler,
        "provider": cal.provider,
        "other_admin": other.admin,
        "other_scheduler": other.scheduler,
        "other_provider": other.provider,
    }
    headers = await bearer_login(client, accounts[who]) if who in accounts else {}
    url = f"/api/patients/{patient.id}/text-consent"
    got = await client.get(url, headers=headers)
    assert got.status == read, await got.text()
    put = await client.put(url, json={"agreed": True}, headers=headers)
    assert put.status == write, await put.text()
    async with db.session() as session:
        events = (
            await session.exec(
                select(AuditEvent).where(col(AuditEvent.action).startswith("patient.text_consent"))
            )
        ).all()
    outcomes = sorted((e.action, e.outcome) for e in events)
    if write == 200:
        assert outcomes == [
            ("patient.text_consent.agree", "success"),
            ("patient.text_consent.read", "success"),
        ]
        assert {e.patient_id for e in events} == {str(patient.id)}
    elif write == 404:
        assert outcomes == [
            ("patient.text_consent.agree", "denied"),
            ("patient.text_consent.read", "denied"),
        ]

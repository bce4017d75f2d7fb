"""Confirmation, reschedule and cancel emails with .ics invites, sent through the outbox to a
real SMTP server on loopback; reminders, retries, and no message sent twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from icalendar import Calendar
from sqlmodel import col, select

from app.core.models import AuditEvent, Patient
from app.main import create_app
from scheduling import outbox
from scheduling.models import OutboxMessage, OutboxStatus
from tests.conftest import bearer_login
from tests.scheduling.conftest import at, book_body, free_port, next_weekday


def _invite(message):
    parts = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1
    return Calendar.from_ical(parts[0].get_content())


def _event(cal):
    events = [c for c in cal.walk("VEVENT")]
    assert len(events) == 1
    return events[0]


async def _outbox(db):
    async with db.session() as session:
        return list(
            (
                await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.send_after)))
            ).all()
        )


async def test_confirmation_reschedule_cancel_emails_update_one_calendar_event(
    client, sched, db, smtp, settings_factory
):
    inbox, port = smtp
    settings = settings_factory(smtp_host="127.0.0.1", smtp_port=port, background_tasks=False)
    cal = await sched.calendar(patient_email="maria@mail.example")
    headers = await bearer_login(client, cal.scheduler)
    monday = next_weekday(0, weeks_ahead=2)
    booked = await (
        await client.post("/api/appointments", json=book_body(cal, at(monday, 9)), headers=headers)
    ).json()

    assert await outbox.send_due(db, settings) == 1
    assert await outbox.send_due(db, settings) == 0  # never twice
    [confirmation] = inbox.to("maria@mail.example")
    assert confirmation["Subject"].startswith("Your appointment is booked")
    body = confirmation.get_body(("plain",)).get_content()
    assert booked["join_url"] in body
    assert "Europe/Madrid" in body  # the patient's own zone, named
    event = _event(_invite(confirmation))
    uid = str(event["UID"])
    assert uid == f"appointment-{booked['id']}@openconsult"
    assert event["DTSTART"].params["TZID"] == "America/New_York"
    assert event["DTSTART"].dt.hour == 9
    assert event["DTSTART"].dt.astimezone(UTC) == at(monday, 9)
    assert _invite(confirmation)["METHOD"] == "REQUEST"

    # Reminders wait in the outbox at 24 h and 1 h before the start.
    pending = [m for m in await _outbox(db) if m.status == OutboxStatus.PENDING]
    assert [m.send_after for m in pending] == [
        at(monday, 9) - timedelta(hours=24),
        at(monday, 9) - timedelta(hours=1),
    ]

    moved = await client.post(
        f"/api/appointments/{booked['id']}/reschedule",
        json={"start": at(monday, 10).isoformat()},
        headers=headers,
    )
    assert moved.status == 200
    new_link = (await moved.json())["join_url"]
    assert await outbox.send_due(db, settings) == 1
    rescheduled = inbox.to("maria@mail.example")[1]
    assert new_link in rescheduled.get_body(("plain",)).get_content()
    event = _event(_invite(rescheduled))
    assert str(event["UID"]) == uid and int(event["SEQUENCE"]) == 2
    assert event["DTSTART"].dt.astimezone(UTC) == at(monday, 10)
    statuses = sorted((m.kind, m.status.value, m.send_after) for m in await _outbox(db))
    reminders = [s for s in statuses if s[0] == "reminder"]
    assert [r[1] for r in reminders].count("cancelled") == 2
    assert {r[2] for r in reminders if r[1] == "pending"} == {
        at(monday, 10) - timedelta(hours=24),
        at(monday, 10) - timedelta(hours=1),
    }

    resp = await client.post(
        f"/api/appointments/{booked['id']}/cancel", json={"reason": "Doctor ill"}, headers=headers
    )
    assert resp.status == 200
    assert await outbox.send_due(db, settings) == 1
    cancelled = inbox.to("maria@mail.example")[2]
    assert "Doctor ill" in cancelled.get_body(("plain",)).get_content()
    cancel_cal = _invite(cancelled)
    assert cancel_cal["METHOD"] == "CANCEL"
    assert str(_event(cancel_cal)["UID"]) == uid
    assert all(m.status != OutboxStatus.PENDING for m in await _outbox(db))
    assert len(inbox.messages) == 3
    async with db.session() as session:
        sent = (
            await session.exec(
                select(AuditEvent).where(col(AuditEvent.action).startswith("email."))
            )
        ).all()
    assert [(e.action, e.patient_id) for e in sent] == [
        ("email.confirmation", str(cal.patient.id)),
        ("email.rescheduled", str(cal.patient.id)),
        ("email.cancellation", str(cal.patient.id)),
    ]


async def test_smtp_down_retries_with_backoff_then_delivers_once(
    client, sched, db, smtp, settings_factory
):
    inbox, port = smtp
    dead_port = free_port()
    cal = await sched.calendar(patient_email="retry@mail.example")
    headers = await bearer_login(client, cal.scheduler)
    resp = await client.post(
        "/api/appointments", json=book_body(cal, at(next_weekday(2), 9)), headers=headers
    )
    assert resp.status == 201
    down = settings_factory(
        smtp_host="127.0.0.1",
        smtp_port=dead_port,
        outbox_backoff_seconds=3600,
        smtp_timeout_seconds=2,
    )
    assert await outbox.send_due(db, down) == 0
    [message] = [m for m in await _outbox(db) if m.kind == "confirmation"]
    assert message.status == OutboxStatus.PENDING and message.attempts == 1
    assert message.last_error and message.send_after > datetime.now(UTC) + timedelta(minutes=59)
    # Not due yet: even a working server gets nothing.
    up = settings_factory(smtp_host="127.0.0.1", smtp_port=port)
    assert await outbox.send_due(db, up) == 0
    async with db.session() as session:
        row = await session.get(OutboxMessage, message.id)
        row.send_after = datetime.now(UTC)
        session.add(row)
        await session.commit()
    assert await outbox.send_due(db, up) == 1
    assert await outbox.send_due(db, up) == 0
    assert len(inbox.to("retry@mail.example")) == 1


async def test_gives_up_after_max_attempts(client, sched, db, settings_factory):
    cal = await sched.calendar(patient_email="never@mail.example")
    headers = await bearer_login(client, cal.scheduler)
    await client.post(
        "/api/appointments", json=book_body(cal, at(next_weekday(2), 9)), headers=headers
    )
    down = settings_factory(
        smtp_host="127.0.0.1",
        smtp_port=free_port(),
        outbox_backoff_seconds=0,
        outbox_max_attempts=2,
    )
    await outbox.send_due(db, down)
    await outbox.send_due(db, down)
    [message] = [m for m in await _outbox(db) if m.kind == "confirmation"]
    assert message.status == OutboxStatus.FAILED and message.attempts == 2


async def test_outbox_survives_a_restart_and_the_running_sender_delivers(
    client, sched, db, smtp, settings_factory, aiohttp_client
):
    """Booked while no sender ran; a freshly started app (a restart) sends it from the table."""
    inbox, port = smtp
    cal = await sched.calendar(patient_email="restart@mail.example")
    headers = await bearer_login(client, cal.scheduler)
    resp = await client.post(
        "/api/appointments", json=book_body(cal, at(next_weekday(3), 9)), headers=headers
    )
    assert resp.status == 201
    restarted = create_app(
        settings_factory(
            smtp_host="127.0.0.1", smtp_port=port, background_tasks=True, outbox_poll_seconds=0.1
        )
    )
    await aiohttp_client(restarted)
    async with asyncio.timeout(15):
        # The SMTP server runs in its own thread; polling is the simple bridge.
        while not inbox.to("restart@mail.example"):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    assert len(inbox.to("restart@mail.example")) == 1


async def test_two_senders_at_once_deliver_each_message_once(
    client, sched, db, smtp, settings_factory, database_url
):
    """Two processes' senders (two engines) racing over one outbox never double-send."""
    from app.core.db import Database

    inbox, port = smtp
    cal = await sched.calendar(patient_email="twice@mail.example")
    headers = await bearer_login(client, cal.scheduler)
    day = next_weekday(1)
    for hour in (9, 10, 11):
        resp = await client.post(
            "/api/appointments", json=book_body(cal, at(day, hour)), headers=headers
        )
        assert resp.status == 201
    settings = settings_factory(smtp_host="127.0.0.1", smtp_port=port)
    other = Database.from_settings(settings)
    try:
        sent = await asyncio.gather(
            outbox.send_due(db, settings),
            outbox.send_due(other, settings),
            outbox.send_due(db, settings),
        )
    finally:
        await other.dispose()
    assert sum(sent) == 3
    assert len(inbox.to("twice@mail.example")) == 3
    assert len({m["Message-ID"] for m in inbox.to("twice@mail.example")}) == 3


async def test_a_patient_in_utc_reads_the_zone_once(client, sched, db, smtp, settings_factory):
    inbox, port = smtp
    settings = settings_factory(smtp_host="127.0.0.1", smtp_port=port, background_tasks=False)
    cal = await sched.calendar(patient_email="ines@mail.example")
    async with db.session() as session:
        patient = await session.get(Patient, cal.patient.id)
        assert patient is not None
        patient.timezone = "UTC"
        session.add(patient)
        await session.commit()
    headers = await bearer_login(client, cal.scheduler)
    monday = next_weekday(0, weeks_ahead=2)
    resp = await client.post(
        "/api/appointments", json=book_body(cal, at(monday, 9)), headers=headers
    )
    assert resp.status == 201, await resp.text()
    assert await outbox.send_due(db, settings) == 1
    [confirmation] = inbox.to("ines@mail.example")
    body = confirmation.get_body(("plain",)).get_content()
    assert "(UTC)" in body and "UTC, UTC" not in body, body

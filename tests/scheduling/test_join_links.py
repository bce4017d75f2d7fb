"""Join links in staff hands: seen on the appointment, copied, resent (the old link stops
working, short or long); a patient without email is booked with a warning and the link; every
email names the clinic, comes from the configured sender and carries a short, unguessable link."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import aiohttp
import pytest
from sqlmodel import col, select

from app.core.models import AuditEvent, Clinic, Patient, Role
from app.web.access_log import loggable_path
from scheduling import links, outbox
from scheduling.links import join_url
from scheduling.models import Appointment, OutboxMessage
from tests.conftest import bearer_login
from tests.scheduling.conftest import at, book_body, next_weekday
from tests.support.servers import app_server
from tests.support.waiting import wait_for

RIGHT = {"birth_date": "1980-05-17"}
WRONG = {"birth_date": "1999-01-01"}


async def _soon(db, cal) -> Appointment:
    """An appointment whose link is open now (inserted as an older booking would be)."""
    start = datetime.now(UTC) + timedelta(minutes=10)
    appointment = Appointment(
        clinic_id=cal.clinic.id,
        provider_id=cal.provider.id,
        patient_id=cal.patient.id,
        appointment_type_id=cal.kind.id,
        start_at=start,
        end_at=start + timedelta(minutes=30),
        busy_until=start + timedelta(minutes=30),
    )
    async with db.session() as session:
        session.add(appointment)
        await session.commit()
    return appointment


def _code(url: str) -> str:
    path = urlsplit(url).path
    assert path.startswith("/j/"), url
    return path.removeprefix("/j/")


async def test_staff_see_the_link_and_a_resend_replaces_it(client, sched, db, settings):
    cal = await sched.calendar(patient_email="link@mail.example")
    scheduler = await bearer_login(client, cal.scheduler)
    booked_resp = await client.post(
        "/api/appointments", json=book_body(cal, at(next_weekday(0), 9)), headers=scheduler
    )
    assert booked_resp.status == 201
    booked = await booked_resp.json()
    assert booked["emailed"] is True and booked["warnings"] == []
    first = booked["join_url"]
    _code(first)

    detail = await (await client.get(f"/api/appointments/{booked['id']}", headers=scheduler)).json()
    assert detail["join_url"] == first
    assert detail["messages"][0]["kind"] == "confirmation"
    day = next_weekday(0).isoformat()
    listed = await (
        await client.get(f"/api/appointments?from={day}&to={day}", headers=scheduler)
    ).json()
    assert [a["join_url"] for a in listed] == [first]

    provider = await bearer_login(client, cal.provider)
    resent = await client.post(f"/api/appointments/{booked['id']}/resend-link", headers=provider)
    assert resent.status == 200, await resent.text()
    second = (await resent.json())["join_url"]
    assert second != first and _code(second) != _code(first)
    assert (await client.get(urlsplit(first).path)).status == 410  # "moved": use the newer email
    assert (await client.get(urlsplit(second).path)).status == 200

    await outbox.send_due(db, settings)
    async with db.session() as session:
        sent = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.kind == "link_resent"))
        ).all()
        events = (
            await session.exec(
                select(AuditEvent).where(AuditEvent.action == "appointment.resend_link")
            )
        ).all()
    assert len(sent) == 1 and second in sent[0].body_text and first not in sent[0].body_text
    assert [(e.actor_id, e.patient_id, e.outcome) for e in events] == [
        (str(cal.provider.id), str(cal.patient.id), "success")
    ]


async def test_a_resend_invalidates_the_old_short_and_long_link_and_locks_still_apply(
    client, sched, db, settings
):
    cal = await sched.calendar()
    appointment = await _soon(db, cal)
    long_link = join_url(settings, appointment)  # links sent before short links keep working
    admin = await bearer_login(client, cal.admin)
    detail = await (await client.get(f"/api/appointments/{appointment.id}", headers=admin)).json()
    code = _code(detail["join_url"])
    assert (await client.get(urlsplit(long_link).path)).status == 200
    page = await client.get(f"/j/{code}")
    assert page.status == 200 and "Check-in is open" in await page.text()

    for _ in range(settings.identity_max_failures):
        await client.post(f"/api/join/{code}/identity", json=WRONG)
    locked = await client.post(f"/api/join/{code}/identity", json=RIGHT)
    assert locked.status == 423
    assert (await client.get(f"/j/{code}")).status == 423

    resent = await client.post(f"/api/appointments/{appointment.id}/resend-link", headers=admin)
    new_code = _code((await resent.json())["join_url"])
    for old in (f"/j/{code}", urlsplit(long_link).path):
        assert (await client.get(old)).status == 410
    assert (await client.post(f"/api/join/{code}/identity", json=RIGHT)).status == 410
    ok = await client.post(f"/api/join/{new_code}/identity", json=RIGHT)
    assert ok.status == 200, await ok.text()


async def test_a_patient_without_email_is_booked_with_a_warning_and_the_link(client, sched, db):
    cal = await sched.calendar()
    patient = Patient(
        clinic_id=cal.clinic.id,
        given_name="Tomas",
        family_name="Phoneonly",
        birth_date=date(1970, 1, 2),
        email=None,
        phone="+1 212 555 0100",
    )
    async with db.session() as session:
        session.add(patient)
        await session.commit()
    headers = await bearer_login(client, cal.scheduler)
    body = book_body(cal, at(next_weekday(1), 9)) | {"patient_id": str(patient.id)}
    resp = await client.post("/api/appointments", json=body, headers=headers)
    assert resp.status == 201
    booked = await resp.json()
    assert booked["emailed"] is False and booked["texted"] is False
    # No email, and no text either: the phone number alone is not consent to texts.
    assert [w["code"] for w in booked["warnings"]] == ["no_email", "no_text_consent"]
    assert "no email address" in booked["warnings"][0]["message"]
    assert "not agreed to text messages" in booked["warnings"][1]["message"]
    _code(booked["join_url"])
    detail = await (await client.get(f"/api/appointments/{booked['id']}", headers=headers)).json()
    assert detail["messages"] == [] and detail["warnings"][0]["code"] == "no_email"
    resent = await (
        await client.post(f"/api/appointments/{booked['id']}/resend-link", headers=headers)
    ).json()
    assert resent["emailed"] is False and resent["join_url"] != booked["join_url"]


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("admin", 200),
        ("scheduler", 200),
        ("provider", 200),
        ("colleague", 403),  # another provider of the same clinic
        ("other_admin", 404),
        ("other_scheduler", 404),
        ("other_provider", 404),
    ],
)
async def test_who_sees_and_resends_a_link(client, sched, factory, db, who, expected):
    cal = await sched.calendar()
    other = await sched.calendar()
    accounts = {
        "admin": cal.admin,
        "scheduler": cal.scheduler,
        "provider": cal.provider,
        "colleague": await factory.staff(Role.PROVIDER, cal.clinic),
        "other_admin": other.admin,
        "other_scheduler": other.scheduler,
        "other_provider": other.provider,
    }
    appointment = await _soon(db, cal)
    headers = await bearer_login(client, accounts[who])
    read = await client.get(f"/api/appointments/{appointment.id}", headers=headers)
    assert read.status == expected
    if expected == 200:
        assert "/j/" in (await read.json())["join_url"]
    else:
        assert "/j/" not in await read.text()
    resend = await client.post(f"/api/appointments/{appointment.id}/resend-link", headers=headers)
    assert resend.status == expected
    if expected != 200:
        assert (await resend.json())["error"]["code"] in ("forbidden", "not_found")
        async with db.session() as session:
            current = await session.get(Appointment, appointment.id)
        assert current is not None and current.version == 1  # nothing re-issued
    async with db.session() as session:
        denied = (
            await session.exec(
                select(AuditEvent).where(
                    AuditEvent.action == "appointment.resend_link",
                    col(AuditEvent.actor_id) == str(accounts[who].id),
                )
            )
        ).all()
    assert [e.outcome for e in denied] == ["success" if expected == 200 else "denied"]


async def test_resending_a_cancelled_appointments_link_is_refused(client, sched):
    cal = await sched.calendar()
    headers = await bearer_login(client, cal.scheduler)
    booked = await (
        await client.post(
            "/api/appointments", json=book_body(cal, at(next_weekday(2), 9)), headers=headers
        )
    ).json()
    await client.post(
        f"/api/appointments/{booked['id']}/cancel", json={"reason": "ill"}, headers=headers
    )
    detail = await (await client.get(f"/api/appointments/{booked['id']}", headers=headers)).json()
    assert detail["join_url"] is None
    resp = await client.post(f"/api/appointments/{booked['id']}/resend-link", headers=headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "conflict"


async def test_emails_name_the_clinic_come_from_the_sender_and_carry_a_short_link(
    client, sched, db, smtp, settings_factory
):
    inbox, port = smtp
    settings = settings_factory(
        smtp_host="127.0.0.1",
        smtp_port=port,
        mail_from="Riverside visits <visits@riverside.example>",
    )
    cal = await sched.calendar(patient_email="short@mail.example")
    async with db.session() as session:
        clinic = await session.get(Clinic, cal.clinic.id)
        assert clinic is not None
        clinic.phone = "+1 212 555 0142"
        session.add(clinic)
        await session.commit()
    headers = await bearer_login(client, cal.scheduler)
    booked = await (
        await client.post(
            "/api/appointments", json=book_body(cal, at(next_weekday(3), 9)), headers=headers
        )
    ).json()
    assert await outbox.send_due(db, settings) == 1
    [email] = inbox.to("short@mail.example")
    assert email["From"] == "Riverside visits <visits@riverside.example>"
    assert cal.clinic.name in email["Subject"]
    body = email.get_body(("plain",)).get_content()
    assert cal.clinic.name in body and "+1 212 555 0142" in body
    links = re.findall(r"https?://\S+", body)
    assert links == [booked["join_url"]]
    code = _code(links[0])
    assert len(code) >= 22  # >= 128 random bits of base64url
    assert len(links[0]) < 80 and "." not in code
    assert loggable_path(f"/j/{code}") == "/j/***"
    assert loggable_path(f"/j/{code}/anything") == "/j/***/anything"


async def test_a_real_servers_log_never_shows_a_short_link(process_env, sched, db, settings):
    """The access log of `python -m app serve` masks the short link's code like a long token."""
    cal = await sched.calendar()
    appointment = await _soon(db, cal)
    async with db.session() as session:
        current = await session.get(Appointment, appointment.id)
        assert current is not None
        code = _code(await links.current_link(session, settings, current))
        await session.commit()
    env = process_env | {"OPENCONSULT_LOG_LEVEL": "INFO", "OPENCONSULT_BACKGROUND_TASKS": "false"}
    with app_server(env) as server:
        async with aiohttp.ClientSession() as http:
            assert (await http.get(f"{server.url}/j/{code}")).status == 200
            bad = await http.post(f"{server.url}/api/join/{code}/identity", json=WRONG)
            assert bad.status == 400
            assert (await http.get(f"{server.url}/static/end-of-short-link-test")).status == 404
        await wait_for(
            lambda: "end-of-short-link-test" in server.log.read_text(), 10, "the last log line"
        )
        log = server.log.read_text()
    assert "/j/*** " in log or '/j/***"' in log
    assert "/api/join/***/identity" in log
    assert code not in log

"""Email delivery staff can see: each appointment's messages (queued, sent, retrying, failed with
the reason, attempts), the clinic's undelivered emails, an admin's retry (audited), and the
development mailbox when no SMTP server is configured. Real SMTP on loopback (aiosmtpd) for
sent, a port nobody listens on for failed; the sender's drain (`send_due`) is called directly."""

from __future__ import annotations

from sqlmodel import select

from app.core.models import AuditEvent, Role
from app.main import create_app
from scheduling import outbox
from tests.conftest import bearer_login, cookie_login
from tests.scheduling.conftest import at, book_body, free_port, next_weekday


async def _book(client, cal, headers, weekday: int = 0, hour: int = 9) -> dict:
    resp = await client.post(
        "/api/appointments", json=book_body(cal, at(next_weekday(weekday), hour)), headers=headers
    )
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def _messages(client, appointment_id: str, headers) -> list[dict]:
    detail = await client.get(f"/api/appointments/{appointment_id}", headers=headers)
    assert detail.status == 200
    return [m for m in (await detail.json())["messages"] if m["kind"] != "reminder"]


async def test_sent_through_smtp_shows_as_sent(client, sched, db, smtp, settings_factory):
    inbox, port = smtp
    cal = await sched.calendar(patient_email="sent@mail.example")
    headers = await bearer_login(client, cal.scheduler)
    booked = await _book(client, cal, headers)
    [queued] = await _messages(client, booked["id"], headers)
    assert (queued["status"], queued["attempts"], queued["sent_at"]) == ("queued", 0, None)
    listed = await (
        await client.get(
            f"/api/appointments?from={booked['start'][:10]}&to={booked['start'][:10]}&tz=UTC",
            headers=headers,
        )
    ).json()
    assert listed[0]["email_status"] == "queued"

    up = settings_factory(smtp_host="127.0.0.1", smtp_port=port)
    assert await outbox.send_due(db, up) == 1
    assert len(inbox.to("sent@mail.example")) == 1
    [sent] = await _messages(client, booked["id"], headers)
    assert sent["status"] == "sent" and sent["attempts"] == 1 and sent["delivered_via"] == "smtp"
    assert sent["sent_at"] is not None and sent["last_error"] is None


async def test_unreachable_smtp_fails_visibly_and_an_admin_retries(
    client, sched, db, smtp, settings_factory, factory
):
    inbox, port = smtp
    cal = await sched.calendar(patient_email="down@mail.example")
    scheduler = await bearer_login(client, cal.scheduler)
    booked = await _book(client, cal, scheduler)
    dead = free_port()
    retrying = settings_factory(
        smtp_host="127.0.0.1", smtp_port=dead, outbox_backoff_seconds=0, outbox_max_attempts=2
    )
    assert await outbox.send_due(db, retrying) == 0
    [first] = await _messages(client, booked["id"], scheduler)
    assert first["status"] == "retrying" and first["attempts"] == 1 and first["last_error"]
    assert await outbox.send_due(db, retrying) == 0
    [failed] = await _messages(client, booked["id"], scheduler)
    assert failed["status"] == "failed" and failed["attempts"] == 2
    assert "SMTPConnect" in failed["last_error"] or "refused" in failed["last_error"].lower()

    trouble = await (await client.get("/api/messages/undelivered", headers=scheduler)).json()
    assert trouble["failed"] == 1 and trouble["retrying"] == 0
    [item] = trouble["messages"]
    assert item["id"] == failed["id"] and item["patient_name"] == "Maria Lopez"
    assert item["appointment_id"] == booked["id"]

    # Who may see and retry: admins and schedulers see; only the clinic's admins retry.
    other = await sched.calendar()
    provider = await bearer_login(client, cal.provider)
    assert (await client.get("/api/messages/undelivered", headers=provider)).status == 403
    elsewhere = await (
        await client.get(
            "/api/messages/undelivered", headers=await bearer_login(client, other.admin)
        )
    ).json()
    assert elsewhere["messages"] == []
    retry_url = f"/api/messages/{failed['id']}/retry"
    for account, status in (
        (cal.scheduler, 403),
        (cal.provider, 403),
        (other.admin, 404),
        (await factory.staff(Role.SCHEDULER, other.clinic), 403),
    ):
        resp = await client.post(retry_url, headers=await bearer_login(client, account))
        assert resp.status == status, (account.user.role, await resp.text())
    admin = await bearer_login(client, cal.admin)
    resp = await client.post(retry_url, headers=admin)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "retrying"  # queued again; the old reason kept
    again = await client.post(retry_url, headers=admin)
    assert again.status == 409 and (await again.json())["error"]["code"] == "conflict"

    up = settings_factory(smtp_host="127.0.0.1", smtp_port=port)
    assert await outbox.send_due(db, up) == 1
    assert len(inbox.to("down@mail.example")) == 1
    [sent] = await _messages(client, booked["id"], scheduler)
    assert sent["status"] == "sent" and sent["last_error"] is None
    trouble = await (await client.get("/api/messages/undelivered", headers=scheduler)).json()
    assert trouble["failed"] == 0 and trouble["messages"] == []
    async with db.session() as session:
        events = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "email.retry"))
        ).all()
    outcomes = sorted((e.actor_id, e.outcome) for e in events)
    assert (str(cal.admin.id), "success") in outcomes
    assert (str(other.admin.id), "denied") in outcomes
    assert [e.patient_id for e in events if e.outcome == "success"] == [str(cal.patient.id)]


async def test_production_without_smtp_fails_with_the_reason(client, sched, db, settings_factory):
    cal = await sched.calendar(patient_email="prod@mail.example")
    headers = await bearer_login(client, cal.scheduler)
    booked = await _book(client, cal, headers)
    base = settings_factory()
    production = base.model_copy(update={"env": "production", "outbox_max_attempts": 1})
    assert not production.dev_mailbox
    assert await outbox.send_due(db, production) == 0
    [failed] = await _messages(client, booked["id"], headers)
    assert failed["status"] == "failed" and "OPENCONSULT_SMTP_HOST" in failed["last_error"]


async def test_without_smtp_emails_wait_in_the_development_mailbox(
    client, sched, db, settings, settings_factory, aiohttp_client
):
    assert settings.smtp_host is None and settings.dev_mailbox
    cal = await sched.calendar(patient_email="dev@mail.example")
    headers = await bearer_login(client, cal.scheduler)
    booked = await _book(client, cal, headers)
    assert await outbox.send_due(db, settings) == 1
    [kept] = await _messages(client, booked["id"], headers)
    assert kept["status"] == "sent" and kept["delivered_via"] == "dev_mailbox"
    trouble = await (await client.get("/api/messages/undelivered", headers=headers)).json()
    assert trouble["dev_mailbox"] is True

    anonymous = await client.get("/dev/mailbox", allow_redirects=False)
    assert anonymous.status in (303, 401)
    await cookie_login(client, cal.scheduler)
    page = await client.get("/dev/mailbox")
    html = await page.text()
    assert page.status == 200 and "Your appointment is booked" in html
    assert f'<a href="{booked["join_url"]}">' in html
    other = await sched.calendar()
    client.session.cookie_jar.clear()
    await cookie_login(client, other.scheduler)
    assert "Your appointment is booked" not in await (await client.get("/dev/mailbox")).text()
    async with db.session() as session:
        reads = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "email.dev_mailbox"))
        ).all()
    assert [e.patient_id for e in reads] == [str(cal.patient.id)]

    # With an SMTP server but no SMS provider, the mailbox stays for the texts it keeps; with
    # both configured, there is no mailbox.
    with_smtp = await aiohttp_client(create_app(settings_factory(smtp_host="127.0.0.1")))
    await cookie_login(with_smtp, cal.scheduler)
    assert (await with_smtp.get("/dev/mailbox")).status == 200
    both = settings_factory(
        smtp_host="127.0.0.1",
        sms_url="http://127.0.0.1:9",
        sms_account="AC1",
        sms_token="token",
        sms_from="+15005550006",
    )
    with_both = await aiohttp_client(create_app(both))
    await cookie_login(with_both, cal.scheduler)
    assert (await with_both.get("/dev/mailbox")).status == 404


def test_a_blank_smtp_host_means_none(settings_factory):
    assert settings_factory(smtp_host="").smtp_host is None
    assert settings_factory(smtp_host="mail.example").dev_mailbox is False

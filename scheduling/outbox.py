"""The outbox: emails and text messages are rows written in the booking's own transaction, and a
sender loop delivers them (emails over SMTP, texts through the SMS provider, `scheduling.sms`)
with retries and back-off.

With no SMTP server configured outside production, a message is "delivered" to the development
mailbox instead: marked sent with `delivered_via = "dev_mailbox"`, readable at /dev/mailbox.
In production without a server it fails with that reason, which staff see on the appointment.

A row is claimed (status stays pending, `claimed_until` set) by a conditional UPDATE, so two
senders never hold one message; it is marked sent right after the SMTP server accepts it. Each
message carries a Message-ID derived from its row, so a resend after a crash between those two
steps is recognisable as the same message. A text carries its row id as the provider's
idempotency key and, once accepted, the provider's message id is stored with the row marked sent
(see `scheduling.sms` for the remaining at-least-once window). A text the provider refuses for
good (4xx other than 429) fails at once, with the provider's reason.

Without an SMS provider outside production, texts go to the development mailbox like emails.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib
import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core import audit
from app.core.config import Settings
from app.core.db import Database
from app.core.models import utcnow
from scheduling import sms
from scheduling.models import Appointment, Channel, OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)
CLAIM_SECONDS = 120
SYSTEM = audit.Actor(id="system", role="system", clinic_id=None, client_addr=None)
VIA_SMTP = "smtp"
VIA_SMS = "sms"
VIA_DEV_MAILBOX = "dev_mailbox"
NO_SMTP_SERVER = "No SMTP server is configured (set OPENCONSULT_SMTP_HOST)."
NO_SMS_PROVIDER = "No SMS provider is configured (set OPENCONSULT_SMS_URL)."


def enqueue(
    session: AsyncSession,
    *,
    appointment_id: uuid.UUID | None,
    kind: str,
    to_addr: str,
    subject: str,
    body: str,
    ics: str | None = None,
    send_after: datetime | None = None,
    channel: Channel = Channel.EMAIL,
) -> OutboxMessage:
    """Add a message to the session; it is sent once the caller's transaction commits."""
    message = OutboxMessage(
        appointment_id=appointment_id,
        channel=channel,
        kind=kind,
        to_addr=to_addr,
        subject=subject,
        body_text=body,
        ics=ics,
        send_after=send_after or utcnow(),
    )
    session.add(message)
    return message


async def cancel_pending(session: AsyncSession, appointment_id: uuid.UUID, kinds: set[str]) -> None:
    """Withdraw unsent messages (reminders of an old time) of an appointment."""
    connection = await session.connection()
    await connection.execute(
        sa.update(OutboxMessage)
        .where(
            col(OutboxMessage.appointment_id) == appointment_id,
            col(OutboxMessage.status) == OutboxStatus.PENDING,
            col(OutboxMessage.kind).in_(kinds),
        )
        .values(status=OutboxStatus.CANCELLED)
    )


def build_email(settings: Settings, message: OutboxMessage) -> EmailMessage:
    email = EmailMessage()
    email["From"] = settings.mail_from
    email["To"] = message.to_addr
    email["Subject"] = message.subject
    email["Date"] = format_datetime(utcnow())
    domain = settings.mail_from.rpartition("@")[2].rstrip(">") or "openconsult.invalid"
    email["Message-ID"] = f"<{message.id}@{domain}>" if domain else make_msgid()
    email.set_content(message.body_text)
    if message.ics:
        method = "CANCEL" if "METHOD:CANCEL" in message.ics else "REQUEST"
        email.add_attachment(
            message.ics.encode(),
            maintype="text",
            subtype="calendar",
            filename="invite.ics",
            params={"method": method},
        )
    return email


async def _claim(db: Database, now: datetime, limit: int) -> list[OutboxMessage]:
    async with db.session() as session:
        due = await session.exec(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING,
                col(OutboxMessage.send_after) <= now,
                sa.or_(
                    col(OutboxMessage.claimed_until).is_(None),
                    col(OutboxMessage.claimed_until) < now,
                ),
            )
            .order_by(col(OutboxMessage.send_after))
            .limit(limit)
        )
        ids = list(due.all())
    claimed: list[OutboxMessage] = []
    for message_id in ids:
        async with db.session() as session:
            connection = await session.connection()
            result = await connection.execute(
                sa.update(OutboxMessage)
                .where(
                    col(OutboxMessage.id) == message_id,
                    col(OutboxMessage.status) == OutboxStatus.PENDING,
                    sa.or_(
                        col(OutboxMessage.claimed_until).is_(None),
                        col(OutboxMessage.claimed_until) < now,
                    ),
                )
                .values(
                    claimed_until=now + timedelta(seconds=CLAIM_SECONDS),
                    attempts=col(OutboxMessage.attempts) + 1,
                )
            )
            await session.commit()
            if result.rowcount == 1:
                message = await session.get(OutboxMessage, message_id)
                if message is not None:
                    claimed.append(message)
    return claimed


async def _finish(
    db: Database,
    settings: Settings,
    message: OutboxMessage,
    error: str | None,
    via: str = VIA_SMTP,
    *,
    permanent: bool = False,
    provider_ref: str | None = None,
) -> None:
    async with db.session() as session:
        row = await session.get(OutboxMessage, message.id)
        if row is None:
            return
        if error is None:
            row.status = OutboxStatus.SENT
            row.sent_at = utcnow()
            row.last_error = None
            row.delivered_via = via
            row.provider_ref = provider_ref
        else:
            row.last_error = error[:500]
            if permanent or row.attempts >= settings.outbox_max_attempts:
                row.status = OutboxStatus.FAILED
            else:
                delay = settings.outbox_backoff_seconds * 2 ** (row.attempts - 1)
                row.send_after = utcnow() + timedelta(seconds=delay)
        row.claimed_until = None
        session.add(row)
        await session.commit()


async def _audit_sent(db: Database, message: OutboxMessage) -> None:
    """An email about an appointment discloses patient data: the trail records it."""
    patient_id = clinic_id = None
    if message.appointment_id is not None:
        async with db.session() as session:
            appointment = await session.get(Appointment, message.appointment_id)
        if appointment is not None:
            patient_id, clinic_id = appointment.patient_id, appointment.clinic_id
    await audit.record(
        db,
        action=f"{'sms' if message.channel == Channel.SMS else 'email'}.{message.kind}",
        outcome=audit.SUCCESS,
        actor=SYSTEM,
        object_type="outbox_message",
        object_id=message.id,
        patient_id=patient_id,
        clinic_id=clinic_id,
    )


async def _text(settings: Settings, message: OutboxMessage) -> tuple[str, str | None]:
    """Hand a text on; how it went out and the provider's id. Raises sms.SmsError, NoServer."""
    if settings.sms_dev_mailbox:
        return VIA_DEV_MAILBOX, None
    if settings.sms_url is None:
        raise NoServer(NO_SMS_PROVIDER)
    sid = await sms.send(settings, key=str(message.id), to=message.to_addr, body=message.body_text)
    return VIA_SMS, sid


async def _deliver(settings: Settings, message: OutboxMessage) -> str:
    """Hand the message on; returns how it went out, raises when it did not."""
    if settings.dev_mailbox:
        return VIA_DEV_MAILBOX
    if settings.smtp_host is None:
        raise NoServer(NO_SMTP_SERVER)
    await aiosmtplib.send(
        build_email(settings, message),
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=(settings.smtp_password.get_secret_value() if settings.smtp_password else None),
        start_tls=settings.smtp_starttls,
        timeout=settings.smtp_timeout_seconds,
    )
    return VIA_SMTP


class NoServer(Exception):
    """Production without OPENCONSULT_SMTP_HOST (or OPENCONSULT_SMS_URL): nothing can be sent."""


async def _send_text(db: Database, settings: Settings, message: OutboxMessage) -> bool:
    """Send one claimed text and record how it went; True when it went out."""
    try:
        via, sid = await _text(settings, message)
    except NoServer as exc:
        log.warning("outbox: text %s failed: no SMS provider configured", message.id)
        await _finish(db, settings, message, str(exc))
        return False
    except sms.SmsError as exc:
        log.warning("outbox: text %s failed: %s", message.id, exc)
        await _finish(db, settings, message, str(exc), permanent=exc.permanent)
        return False
    if via == VIA_DEV_MAILBOX:
        log.info("outbox: text %s kept in the development mailbox (/dev/mailbox)", message.id)
    await _finish(db, settings, message, None, via, provider_ref=sid)
    await _audit_sent(db, message)
    return True


async def send_due(db: Database, settings: Settings, *, limit: int = 50) -> int:
    """Deliver every due message once; returns how many went out (to SMTP, the SMS provider or
    the dev mailbox)."""
    sent = 0
    for message in await _claim(db, utcnow(), limit):
        if message.channel == Channel.SMS:
            sent += await _send_text(db, settings, message)
            continue
        try:
            via = await _deliver(settings, message)
        except NoServer as exc:
            log.warning("outbox: sending %s failed: no SMTP server configured", message.id)
            await _finish(db, settings, message, str(exc))
            continue
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            log.warning("outbox: sending %s failed: %s", message.id, type(exc).__name__)
            await _finish(db, settings, message, f"{type(exc).__name__}: {exc}")
            continue
        if via == VIA_DEV_MAILBOX:
            log.info("outbox: %s kept in the development mailbox (/dev/mailbox)", message.id)
        await _finish(db, settings, message, None, via)
        await _audit_sent(db, message)
        sent += 1
    return sent


FAILED_WINDOW = timedelta(hours=24)


async def figures(
    db: Database, now: datetime
) -> tuple[dict[Channel, int], dict[Channel, int], float]:
    """Per channel, the messages due and not sent yet (the backlog) and those given up on whose
    send time fell in the last day; and how long the oldest due message has waited (seconds)."""
    due = sa.and_(
        col(OutboxMessage.status) == OutboxStatus.PENDING, col(OutboxMessage.send_after) <= now
    )
    failed = sa.and_(
        col(OutboxMessage.status) == OutboxStatus.FAILED,
        col(OutboxMessage.send_after) >= now - FAILED_WINDOW,
    )
    count = sa.func.count()
    async with db.session() as session:
        connection = await session.connection()
        backlog_rows = await connection.execute(
            sa.select(col(OutboxMessage.channel), count).where(due).group_by(OutboxMessage.channel)
        )
        failed_rows = await connection.execute(
            sa.select(col(OutboxMessage.channel), count)
            .where(failed)
            .group_by(OutboxMessage.channel)
        )
        oldest = await session.scalar(
            sa.select(sa.func.min(col(OutboxMessage.send_after))).where(due)
        )
    backlog = {Channel(channel): int(n) for channel, n in backlog_rows.all()}
    gave_up = {Channel(channel): int(n) for channel, n in failed_rows.all()}
    waited = 0.0
    if oldest is not None:
        if oldest.tzinfo is None:  # SQLite hands back naive UTC
            oldest = oldest.replace(tzinfo=now.tzinfo)
        waited = max((now - oldest).total_seconds(), 0.0)
    return backlog, gave_up, waited

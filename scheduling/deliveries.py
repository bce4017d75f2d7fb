"""What staff see of the outbox: each appointment's emails and texts and how they went, the clinic's
failed messages, an admin's retry, and the development mailbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Conflict, NotFound
from app.core.models import Patient, utcnow
from scheduling.models import Appointment, Channel, OutboxMessage, OutboxStatus
from scheduling.outbox import VIA_DEV_MAILBOX


async def messages_of(session: AsyncSession, appointment_id: uuid.UUID) -> list[OutboxMessage]:
    """An appointment's emails, oldest first."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.appointment_id == appointment_id)
        .order_by(col(OutboxMessage.created_at), col(OutboxMessage.send_after))
    )
    return list((await session.exec(query)).all())


async def latest_status(
    session: AsyncSession, appointment_ids: list[uuid.UUID], *, channel: Channel = Channel.EMAIL
) -> dict[uuid.UUID, OutboxMessage]:
    """Each appointment's most recent message of `channel` that is due (not a future
    reminder)."""
    if not appointment_ids:
        return {}
    query = (
        select(OutboxMessage)
        .where(
            col(OutboxMessage.appointment_id).in_(appointment_ids),
            col(OutboxMessage.channel) == channel,
            col(OutboxMessage.status) != OutboxStatus.CANCELLED,
            sa.or_(
                col(OutboxMessage.send_after) <= utcnow(),
                col(OutboxMessage.status) != OutboxStatus.PENDING,
            ),
        )
        .order_by(col(OutboxMessage.created_at))
    )
    latest: dict[uuid.UUID, OutboxMessage] = {}
    for message in (await session.exec(query)).all():
        assert message.appointment_id is not None
        latest[message.appointment_id] = message
    return latest


@dataclass(frozen=True)
class Trouble:
    """A message of the clinic that failed or is being retried, with whom it was for."""

    message: OutboxMessage
    appointment: Appointment
    patient: Patient


async def troubles(
    session: AsyncSession, clinic_id: uuid.UUID, *, limit: int = 100
) -> list[Trouble]:
    """The clinic's failed messages and those whose last attempt failed, newest first."""
    query = (
        select(OutboxMessage, Appointment, Patient)
        .join(Appointment, col(Appointment.id) == OutboxMessage.appointment_id)
        .join(Patient, col(Patient.id) == Appointment.patient_id)
        .where(
            Appointment.clinic_id == clinic_id,
            sa.or_(
                col(OutboxMessage.status) == OutboxStatus.FAILED,
                sa.and_(
                    col(OutboxMessage.status) == OutboxStatus.PENDING,
                    col(OutboxMessage.last_error).is_not(None),
                ),
            ),
        )
        .order_by(col(OutboxMessage.created_at).desc())
        .limit(limit)
    )
    return [Trouble(m, a, p) for m, a, p in (await session.exec(query)).all()]


async def clinic_message(
    session: AsyncSession, clinic_id: uuid.UUID, message_id: uuid.UUID
) -> tuple[OutboxMessage, Appointment]:
    """A message about one of the clinic's appointments; 404 for any other."""
    message = await session.get(OutboxMessage, message_id)
    appointment = (
        await session.get(Appointment, message.appointment_id)
        if message is not None and message.appointment_id is not None
        else None
    )
    if message is None or appointment is None or appointment.clinic_id != clinic_id:
        raise NotFound("No such message in your clinic.")
    return message, appointment


async def retry(
    session: AsyncSession, clinic_id: uuid.UUID, message_id: uuid.UUID
) -> tuple[OutboxMessage, Appointment]:
    """Put a failed message back in the queue, due now, with a fresh count of attempts."""
    message, appointment = await clinic_message(session, clinic_id, message_id)
    if message.status != OutboxStatus.FAILED:
        raise Conflict(
            f"Only a failed message can be retried; this one is {message.status.value}.",
            fields={"status": message.status.value},
        )
    message.status = OutboxStatus.PENDING
    message.attempts = 0
    message.send_after = utcnow()
    message.claimed_until = None
    session.add(message)
    await session.commit()
    await session.refresh(message)
    return message, appointment


async def dev_mailbox_with_patients(
    session: AsyncSession, clinic_id: uuid.UUID, *, limit: int = 50
) -> list[tuple[OutboxMessage, Patient]]:
    """The clinic's emails kept in the development mailbox, newest first, with their patient."""
    query = (
        select(OutboxMessage, Patient)
        .join(Appointment, col(Appointment.id) == OutboxMessage.appointment_id)
        .join(Patient, col(Patient.id) == Appointment.patient_id)
        .where(
            Appointment.clinic_id == clinic_id,
            OutboxMessage.delivered_via == VIA_DEV_MAILBOX,
        )
        .order_by(col(OutboxMessage.sent_at).desc())
        .limit(limit)
    )
    return [(m, p) for m, p in (await session.exec(query)).all()]

"""Patients' consent to text messages: who recorded it, when and how; withdrawing it.

No consent, no text: `textable_number` is the only way the outbox learns a patient's number.
Consent names the number it was given for, so a changed number needs it again.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import InvalidInput
from app.core.models import Clinic, Patient, utcnow
from scheduling import phones
from scheduling.models import (
    Appointment,
    Channel,
    ConsentWay,
    OutboxMessage,
    OutboxStatus,
    TextConsent,
)

NO_MOBILE = "The patient has no valid phone number to send text messages to."


async def number_of(session: AsyncSession, patient: Patient) -> str | None:
    """The patient's number in E.164 (numbers stored before they were checked are read with
    the clinic's country), or None when they have no valid one."""
    if not patient.phone:
        return None
    clinic = await session.get(Clinic, patient.clinic_id)
    return phones.e164(patient.phone, phones.region_of(clinic.phone if clinic else None))


async def consent_of(session: AsyncSession, patient_id: uuid.UUID) -> TextConsent | None:
    return await session.get(TextConsent, patient_id)


async def textable_number(session: AsyncSession, patient: Patient) -> str | None:
    """The number to text the patient at: they have a valid one and agreed to texts on it."""
    number = await number_of(session, patient)
    if number is None:
        return None
    consent = await consent_of(session, patient.id)
    if consent is None or consent.withdrawn_at is not None or consent.phone != number:
        return None
    return number


async def textable_numbers(
    session: AsyncSession, patients: list[Patient]
) -> dict[uuid.UUID, str | None]:
    """`textable_number` of many patients, in two queries."""
    ids = list({p.id for p in patients})
    if not ids:
        return {}
    rows = await session.exec(select(TextConsent).where(col(TextConsent.patient_id).in_(ids)))
    consents = {c.patient_id: c for c in rows.all()}
    regions: dict[uuid.UUID, str | None] = {}
    result: dict[uuid.UUID, str | None] = {}
    for patient in patients:
        if patient.clinic_id not in regions:
            clinic = await session.get(Clinic, patient.clinic_id)
            regions[patient.clinic_id] = phones.region_of(clinic.phone if clinic else None)
        number = phones.e164(patient.phone, regions[patient.clinic_id]) if patient.phone else None
        given = consents.get(patient.id)
        agreed = given is not None and given.withdrawn_at is None and given.phone == number
        result[patient.id] = number if agreed else None
    return result


async def agree(
    session: AsyncSession, patient: Patient, *, way: ConsentWay, by: uuid.UUID | None
) -> TextConsent:
    """Record that the patient agreed to texts on their current number (commit after)."""
    number = await number_of(session, patient)
    if number is None:
        raise InvalidInput(NO_MOBILE, fields={"text_consent": "no valid phone number"})
    consent = await consent_of(session, patient.id) or TextConsent(
        patient_id=patient.id, clinic_id=patient.clinic_id, phone=number, given_at=utcnow(), way=way
    )
    consent.phone = number
    consent.given_at = utcnow()
    consent.given_by = by
    consent.way = way
    consent.withdrawn_at = None
    consent.withdrawn_by = None
    session.add(consent)
    await session.flush()
    return consent


async def withdraw(
    session: AsyncSession, patient: Patient, *, by: uuid.UUID | None
) -> TextConsent | None:
    """No more texts to the patient, the queued ones (reminders) withdrawn too (commit after);
    None when they never agreed."""
    consent = await consent_of(session, patient.id)
    if consent is None or consent.withdrawn_at is not None:
        return consent
    consent.withdrawn_at = utcnow()
    consent.withdrawn_by = by
    session.add(consent)
    await session.flush()
    theirs = select(Appointment.id).where(Appointment.patient_id == patient.id)
    connection = await session.connection()
    await connection.execute(
        sa.update(OutboxMessage)
        .where(
            col(OutboxMessage.channel) == Channel.SMS,
            col(OutboxMessage.status) == OutboxStatus.PENDING,
            col(OutboxMessage.appointment_id).in_(theirs.scalar_subquery()),
        )
        .values(status=OutboxStatus.CANCELLED)
    )
    return consent

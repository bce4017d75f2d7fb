"""Demo calendars: weekday hours for every provider of a clinic and two visit types."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.models import Patient, Role, User, utcnow
from scheduling.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentType,
    AvailabilityRule,
    ProviderSchedule,
    appointment_of,
)

DEMO_TYPES = (("Video visit", 30, 0), ("Follow-up", 15, 5))


async def seed_calendars(session: AsyncSession, *, clinic_id: uuid.UUID, timezone: str) -> None:
    """Add what is missing; safe to run twice."""
    existing = {
        t.name
        for t in (
            await session.exec(
                select(AppointmentType).where(AppointmentType.clinic_id == clinic_id)
            )
        ).all()
    }
    for name, duration, buffer in DEMO_TYPES:
        if name not in existing:
            session.add(
                AppointmentType(
                    clinic_id=clinic_id, name=name, duration_minutes=duration, buffer_minutes=buffer
                )
            )
    providers = (
        await session.exec(
            select(User).where(User.clinic_id == clinic_id, User.role == Role.PROVIDER)
        )
    ).all()
    for provider in providers:
        found = await session.exec(
            select(ProviderSchedule).where(ProviderSchedule.provider_id == provider.id)
        )
        if found.first() is not None:
            continue
        schedule = ProviderSchedule(clinic_id=clinic_id, provider_id=provider.id, timezone=timezone)
        session.add(schedule)
        await session.flush()
        session.add_all(
            AvailabilityRule(schedule_id=schedule.id, weekday=day, start_time=start, end_time=end)
            for day in range(5)
            for start, end in ((time(9), time(12)), (time(13), time(17)))
        )
    await session.commit()


@dataclass(frozen=True)
class DemoVisit:
    appointment: Appointment
    patient: Patient
    provider: User
    timezone: str  # the provider's, as the clinic reads the visit's time


async def seed_demo_visit(
    session: AsyncSession, *, clinic_id: uuid.UUID, now: datetime | None = None
) -> DemoVisit | None:
    """An appointment that can be joined in a few minutes, so the waiting room can be tried.

    Kept when one is still ahead (within two hours); none when the demo has no provider,
    patient or visit type yet, or every tried time is taken.
    """
    now = now or utcnow()
    provider = (
        await session.exec(
            select(User)
            .where(User.clinic_id == clinic_id, User.role == Role.PROVIDER)
            .order_by(col(User.email))
        )
    ).first()
    patient = (
        await session.exec(
            select(Patient).where(Patient.clinic_id == clinic_id).order_by(col(Patient.birth_date))
        )
    ).first()
    kind = (
        await session.exec(
            select(AppointmentType).where(
                AppointmentType.clinic_id == clinic_id, AppointmentType.name == DEMO_TYPES[0][0]
            )
        )
    ).first()
    if provider is None or patient is None or kind is None:
        return None
    schedule = (
        await session.exec(
            select(ProviderSchedule).where(ProviderSchedule.provider_id == provider.id)
        )
    ).first()
    zone = schedule.timezone if schedule else "UTC"
    upcoming = (
        await session.exec(
            select(Appointment).where(
                Appointment.patient_id == patient.id,
                col(Appointment.start_at) > now - timedelta(minutes=5),
                col(Appointment.start_at) < now + timedelta(hours=2),
                col(Appointment.status).in_(ACTIVE_STATUSES),
            )
        )
    ).first()
    if upcoming is not None:
        return DemoVisit(upcoming, patient, provider, zone)
    for minutes in (10, 45, 80):
        start = (now + timedelta(minutes=minutes)).replace(second=0, microsecond=0)
        appointment = appointment_of(
            kind, provider_id=provider.id, patient_id=patient.id, start=start
        )
        session.add(appointment)
        try:
            await session.commit()
        except sa.exc.IntegrityError:  # the provider is busy then; try a later time
            await session.rollback()
            continue
        return DemoVisit(appointment, patient, provider, zone)
    return None

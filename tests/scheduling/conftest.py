"""Scheduling test data (patients, calendars, appointment types) and a real SMTP server."""

from __future__ import annotations

import email
import email.policy
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from app.core.db import Database
from app.core.models import Clinic, Patient, Role, User
from scheduling.models import AppointmentType, AvailabilityRule, ProviderSchedule
from tests.conftest import Factory, StaffAccount
from tests.support.servers import free_port

NY = "America/New_York"


class Inbox:
    """Collects what the SMTP server accepted."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Envelope] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.envelopes.append(envelope)
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def next_weekday(weekday: int, *, weeks_ahead: int = 1) -> date:
    """A date of `weekday` at least a week from today, safely past any minimum notice."""
    today = datetime.now(UTC).date()
    days = (weekday - today.weekday()) % 7 + 7 * weeks_ahead
    return today + timedelta(days=days)


def at(day: date, hour: int, minute: int = 0, zone: str = NY) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(zone)).astimezone(UTC)


class Calendar:
    """A clinic with a scheduler, an admin, a provider with weekday hours, a type and a patient."""

    def __init__(
        self,
        clinic: Clinic,
        admin: StaffAccount,
        scheduler: StaffAccount,
        provider: StaffAccount,
        kind: AppointmentType,
        patient: Patient,
        schedule: ProviderSchedule,
    ) -> None:
        self.clinic = clinic
        self.admin = admin
        self.scheduler = scheduler
        self.provider = provider
        self.kind = kind
        self.patient = patient
        self.schedule = schedule


class SchedulingFactory:
    def __init__(self, db: Database, factory: Factory) -> None:
        self.db = db
        self.factory = factory

    async def patient(
        self, clinic: Clinic, *, email_addr: str | None = None, given: str = "Maria"
    ) -> Patient:
        patient = Patient(
            clinic_id=clinic.id,
            given_name=given,
            family_name="Lopez",
            birth_date=date(1980, 5, 17),
            email=email_addr or f"patient-{uuid.uuid4().hex[:6]}@mail.example",
            timezone="Europe/Madrid",
        )
        async with self.db.session() as session:
            session.add(patient)
            await session.commit()
        return patient

    async def schedule(
        self,
        provider: User,
        *,
        zone: str = NY,
        hours: tuple[time, time] = (time(9), time(12)),
        weekdays: tuple[int, ...] = (0, 1, 2, 3, 4),
        min_notice_minutes: int = 60,
        horizon_days: int = 400,
    ) -> ProviderSchedule:
        schedule = ProviderSchedule(
            clinic_id=provider.clinic_id,
            provider_id=provider.id,
            timezone=zone,
            min_notice_minutes=min_notice_minutes,
            horizon_days=horizon_days,
        )
        async with self.db.session() as session:
            session.add(schedule)
            await session.flush()
            session.add_all(
                AvailabilityRule(
                    schedule_id=schedule.id, weekday=w, start_time=hours[0], end_time=hours[1]
                )
                for w in weekdays
            )
            await session.commit()
        return schedule

    async def kind(self, clinic: Clinic, *, duration: int = 30, buffer: int = 0) -> AppointmentType:
        kind = AppointmentType(
            clinic_id=clinic.id,
            name=f"Video visit {duration} min",
            duration_minutes=duration,
            buffer_minutes=buffer,
        )
        async with self.db.session() as session:
            session.add(kind)
            await session.commit()
        return kind

    async def calendar(
        self,
        *,
        patient_email: str | None = None,
        hours: tuple[time, time] = (time(9), time(12)),
        weekdays: tuple[int, ...] = (0, 1, 2, 3, 4),
    ) -> Calendar:
        clinic = await self.factory.clinic()
        admin = await self.factory.staff(Role.ADMIN, clinic)
        scheduler = await self.factory.staff(Role.SCHEDULER, clinic)
        provider = await self.factory.staff(Role.PROVIDER, clinic)
        schedule = await self.schedule(provider.user, hours=hours, weekdays=weekdays)
        kind = await self.kind(clinic)
        patient = await self.patient(clinic, email_addr=patient_email)
        return Calendar(clinic, admin, scheduler, provider, kind, patient, schedule)


@pytest.fixture
def sched(db: Database, factory: Factory) -> SchedulingFactory:
    return SchedulingFactory(db, factory)


def book_body(cal: Calendar, start: datetime) -> dict[str, str]:
    return {
        "provider_id": str(cal.provider.id),
        "patient_id": str(cal.patient.id),
        "appointment_type_id": str(cal.kind.id),
        "start": start.isoformat(),
    }


@pytest.fixture
def settings(settings_factory):  # type: ignore[no-untyped-def]
    """Scheduling tests run the sender themselves, so the background loops stay off."""
    return settings_factory(background_tasks=False)

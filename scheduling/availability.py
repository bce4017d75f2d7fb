"""Provider schedules, weekly rules, date exceptions, appointment types and slot search."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import InvalidInput, NotFound
from app.core.models import Role, User, utcnow
from scheduling import slots as slot_math
from scheduling.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentType,
    AvailabilityException,
    AvailabilityRule,
    ExceptionKind,
    ProviderSchedule,
)
from scheduling.schemas import AppointmentTypeIn, ExceptionIn, ScheduleIn, zone_named


async def get_provider(
    session: AsyncSession, *, clinic_id: uuid.UUID, provider_id: uuid.UUID
) -> User:
    """A provider of the clinic; other clinics' staff do not exist from here."""
    user = await session.get(User, provider_id)
    if (
        user is None
        or user.clinic_id != clinic_id
        or user.role != Role.PROVIDER
        or not user.is_active
    ):
        raise NotFound("No such provider in your clinic.", fields={"provider_id": "not found"})
    return user


async def list_providers(session: AsyncSession, *, clinic_id: uuid.UUID) -> list[User]:
    rows = await session.exec(
        select(User)
        .where(User.clinic_id == clinic_id, User.role == Role.PROVIDER, col(User.is_active))
        .order_by(col(User.full_name))
    )
    return list(rows.all())


async def find_schedule(session: AsyncSession, provider_id: uuid.UUID) -> ProviderSchedule | None:
    rows = await session.exec(
        select(ProviderSchedule).where(ProviderSchedule.provider_id == provider_id)
    )
    return rows.first()


async def get_schedule(
    session: AsyncSession, *, clinic_id: uuid.UUID, provider_id: uuid.UUID
) -> ProviderSchedule:
    await get_provider(session, clinic_id=clinic_id, provider_id=provider_id)
    schedule = await find_schedule(session, provider_id)
    if schedule is None:
        raise NotFound("This provider has no availability set up yet.")
    return schedule


async def rules_of(session: AsyncSession, schedule_id: uuid.UUID) -> list[AvailabilityRule]:
    rows = await session.exec(
        select(AvailabilityRule)
        .where(AvailabilityRule.schedule_id == schedule_id)
        .order_by(col(AvailabilityRule.weekday), col(AvailabilityRule.start_time))
    )
    return list(rows.all())


async def exceptions_of(
    session: AsyncSession, schedule_id: uuid.UUID, first_day: date | None = None
) -> list[AvailabilityException]:
    query = select(AvailabilityException).where(AvailabilityException.schedule_id == schedule_id)
    if first_day is not None:
        query = query.where(col(AvailabilityException.day) >= first_day)
    rows = await session.exec(query.order_by(col(AvailabilityException.day)))
    return list(rows.all())


async def put_schedule(
    session: AsyncSession, *, clinic_id: uuid.UUID, provider_id: uuid.UUID, schedule_in: ScheduleIn
) -> tuple[ProviderSchedule, list[AvailabilityRule]]:
    """Replace the provider's zone, limits and weekly rules in one transaction."""
    await get_provider(session, clinic_id=clinic_id, provider_id=provider_id)
    weekly = [slot_math.WeeklyRule(r.weekday, r.start, r.end) for r in schedule_in.rules]
    clash = slot_math.rules_overlap(weekly)
    if clash is not None:
        first, second = clash
        raise InvalidInput(
            f"Rules {first} and {second} overlap on the same weekday.",
            fields={f"rules.{second}": f"overlaps rule {first}"},
        )
    schedule = await find_schedule(session, provider_id)
    if schedule is None:
        schedule = ProviderSchedule(
            clinic_id=clinic_id, provider_id=provider_id, timezone=schedule_in.timezone
        )
    schedule.timezone = schedule_in.timezone
    schedule.min_notice_minutes = schedule_in.min_notice_minutes
    schedule.horizon_days = schedule_in.horizon_days
    schedule.updated_at = utcnow()
    session.add(schedule)
    await session.flush()
    for old in await rules_of(session, schedule.id):
        await session.delete(old)
    rules = [
        AvailabilityRule(
            schedule_id=schedule.id, weekday=r.weekday, start_time=r.start, end_time=r.end
        )
        for r in schedule_in.rules
    ]
    session.add_all(rules)
    await session.commit()
    return schedule, rules


async def add_exception(
    session: AsyncSession,
    *,
    clinic_id: uuid.UUID,
    provider_id: uuid.UUID,
    exception_in: ExceptionIn,
) -> AvailabilityException:
    schedule = await get_schedule(session, clinic_id=clinic_id, provider_id=provider_id)
    if exception_in.day < utcnow().astimezone(ZoneInfo(schedule.timezone)).date():
        raise InvalidInput("The date is in the past.", fields={"day": "in the past"})
    exception = AvailabilityException(
        schedule_id=schedule.id,
        day=exception_in.day,
        kind=exception_in.kind,
        start_time=exception_in.start,
        end_time=exception_in.end,
        note=exception_in.note,
    )
    session.add(exception)
    await session.commit()
    return exception


async def remove_exception(
    session: AsyncSession, *, clinic_id: uuid.UUID, provider_id: uuid.UUID, exception_id: uuid.UUID
) -> None:
    schedule = await get_schedule(session, clinic_id=clinic_id, provider_id=provider_id)
    exception = await session.get(AvailabilityException, exception_id)
    if exception is None or exception.schedule_id != schedule.id:
        raise NotFound("No such exception on this provider's calendar.")
    await session.delete(exception)
    await session.commit()


async def create_type(
    session: AsyncSession, *, clinic_id: uuid.UUID, type_in: AppointmentTypeIn
) -> AppointmentType:
    kind = AppointmentType(clinic_id=clinic_id, **type_in.model_dump())
    session.add(kind)
    await session.commit()
    return kind


async def list_types(session: AsyncSession, *, clinic_id: uuid.UUID) -> list[AppointmentType]:
    rows = await session.exec(
        select(AppointmentType)
        .where(AppointmentType.clinic_id == clinic_id)
        .order_by(col(AppointmentType.name))
    )
    return list(rows.all())


async def get_type(
    session: AsyncSession, *, clinic_id: uuid.UUID, type_id: uuid.UUID
) -> AppointmentType:
    kind = await session.get(AppointmentType, type_id)
    if kind is None or kind.clinic_id != clinic_id:
        raise NotFound(
            "No such appointment type in your clinic.",
            fields={"appointment_type_id": "not found"},
        )
    return kind


async def busy_spans(
    session: AsyncSession,
    provider_id: uuid.UUID,
    start: datetime,
    end: datetime,
    exclude: uuid.UUID | None = None,
) -> list[slot_math.Span]:
    query = select(Appointment.start_at, Appointment.busy_until, Appointment.id).where(
        Appointment.provider_id == provider_id,
        col(Appointment.status).in_(ACTIVE_STATUSES),
        col(Appointment.start_at) < end,
        col(Appointment.busy_until) > start,
    )
    rows = await session.exec(query)
    return [slot_math.Span(s, e) for s, e, i in rows.all() if i != exclude]


def _weekly(rules: list[AvailabilityRule]) -> list[slot_math.WeeklyRule]:
    return [slot_math.WeeklyRule(r.weekday, r.start_time, r.end_time) for r in rules]


def _exceptions(items: list[AvailabilityException]) -> list[slot_math.DayException]:
    return [
        slot_math.DayException(e.day, e.kind == ExceptionKind.EXTRA, e.start_time, e.end_time)
        for e in items
    ]


async def search_slots(
    session: AsyncSession,
    *,
    schedule: ProviderSchedule,
    kind: AppointmentType,
    first_day: date,
    last_day: date,
    now: datetime,
    exclude: uuid.UUID | None = None,
) -> list[slot_math.Span]:
    """Free slots of one provider for local days first_day..last_day."""
    zone = zone_named(schedule.timezone)
    rules = await rules_of(session, schedule.id)
    exceptions = await exceptions_of(session, schedule.id, first_day)
    window_start = datetime.combine(first_day, datetime.min.time(), tzinfo=zone) - timedelta(days=1)
    window_end = datetime.combine(last_day, datetime.min.time(), tzinfo=zone) + timedelta(days=2)
    busy = await busy_spans(session, schedule.provider_id, window_start, window_end, exclude)
    return slot_math.free_slots(
        zone=zone,
        rules=_weekly(rules),
        exceptions=_exceptions(exceptions),
        first_day=first_day,
        last_day=last_day,
        duration=timedelta(minutes=kind.duration_minutes),
        buffer=timedelta(minutes=kind.buffer_minutes),
        busy=busy,
        earliest=now + timedelta(minutes=schedule.min_notice_minutes),
        latest=now + timedelta(days=schedule.horizon_days),
    )


async def offers_slot(
    session: AsyncSession, *, schedule: ProviderSchedule, kind: AppointmentType, start: datetime
) -> bool:
    """Whether availability (ignoring bookings) has a slot starting exactly at `start`."""
    zone = zone_named(schedule.timezone)
    day = start.astimezone(zone).date()
    candidates = slot_math.candidate_starts(
        zone=zone,
        rules=_weekly(await rules_of(session, schedule.id)),
        exceptions=_exceptions(await exceptions_of(session, schedule.id, day)),
        first_day=day - timedelta(days=1),
        last_day=day,
        duration=timedelta(minutes=kind.duration_minutes),
        buffer=timedelta(minutes=kind.buffer_minutes),
    )
    return any(c.start == start for c in candidates)

"""Provider calendars as the acting staff member may read them: hours, days off, free slots."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import InvalidInput, NotFound
from app.core.models import User, utcnow
from app.web.identity import Actor
from scheduling import availability
from scheduling.access import clinic_of, own_calendar
from scheduling.models import (
    AppointmentType,
    AvailabilityException,
    AvailabilityRule,
    ProviderSchedule,
)
from scheduling.schemas import zone_named
from scheduling.slots import Span


@dataclass(frozen=True)
class Hours:
    """A provider's schedule with its weekly rules and date exceptions."""

    schedule: ProviderSchedule
    rules: list[AvailabilityRule]
    exceptions: list[AvailabilityException]


@dataclass(frozen=True)
class FreeSlots:
    schedule: ProviderSchedule
    kind: AppointmentType
    spans: list[Span]


async def providers(session: AsyncSession, actor: Actor) -> list[tuple[User, str | None]]:
    """The clinic's providers, each with the zone of their schedule (None without one)."""
    found = []
    for provider in await availability.list_providers(session, clinic_id=clinic_of(actor)):
        schedule = await availability.find_schedule(session, provider.id)
        found.append((provider, schedule.timezone if schedule else None))
    return found


async def schedule_of(session: AsyncSession, actor: Actor, provider_id: uuid.UUID) -> Hours:
    own_calendar(actor, provider_id)
    schedule = await availability.get_schedule(
        session, clinic_id=clinic_of(actor), provider_id=provider_id
    )
    return Hours(
        schedule,
        await availability.rules_of(session, schedule.id),
        await availability.exceptions_of(session, schedule.id),
    )


async def _readable_schedule(
    session: AsyncSession, actor: Actor, schedule_id: uuid.UUID
) -> ProviderSchedule:
    schedule = await session.get(ProviderSchedule, schedule_id)
    if schedule is None or schedule.clinic_id != clinic_of(actor):
        raise NotFound("No such Schedule.")
    own_calendar(actor, schedule.provider_id)
    return schedule


async def schedule_by_id(
    session: AsyncSession, actor: Actor, schedule_id: uuid.UUID
) -> tuple[ProviderSchedule, User]:
    """A schedule of the actor's clinic (a provider: their own), with its provider."""
    schedule = await _readable_schedule(session, actor, schedule_id)
    provider = await availability.get_provider(
        session, clinic_id=schedule.clinic_id, provider_id=schedule.provider_id
    )
    return schedule, provider


async def schedule_slots(
    session: AsyncSession,
    actor: Actor,
    schedule_id: uuid.UUID,
    *,
    type_id: uuid.UUID,
    first_day: date,
    last_day: date,
) -> FreeSlots:
    """Free slots of a readable schedule for local days first_day..last_day."""
    schedule = await _readable_schedule(session, actor, schedule_id)
    kind = await availability.get_type(session, clinic_id=schedule.clinic_id, type_id=type_id)
    return await _search(session, schedule, kind, first_day, last_day)


async def provider_slots(
    session: AsyncSession,
    actor: Actor,
    provider_id: uuid.UUID,
    *,
    type_id: uuid.UUID,
    first_day: date,
    last_day: date,
) -> FreeSlots:
    """Free slots of a provider for local days first_day..last_day, which may not all be past."""
    own_calendar(actor, provider_id)
    schedule = await availability.get_schedule(
        session, clinic_id=clinic_of(actor), provider_id=provider_id
    )
    kind = await availability.get_type(session, clinic_id=schedule.clinic_id, type_id=type_id)
    today = utcnow().astimezone(zone_named(schedule.timezone)).date()
    if last_day < today:
        raise InvalidInput(
            "Those days are in the past; search from today on.", fields={"to": "in the past"}
        )
    return await _search(session, schedule, kind, first_day, last_day)


async def _search(
    session: AsyncSession,
    schedule: ProviderSchedule,
    kind: AppointmentType,
    first_day: date,
    last_day: date,
) -> FreeSlots:
    spans = await availability.search_slots(
        session,
        schedule=schedule,
        kind=kind,
        first_day=first_day,
        last_day=last_day,
        now=utcnow(),
    )
    return FreeSlots(schedule, kind, spans)

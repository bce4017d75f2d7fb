"""Each waiting patient's place, computed apart from the whole queue: an admit must reach
a thousand waiting patients fast, so their places come from one narrow query (no names, chart
facts, messages or presence), before the staff's full queue is built."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.models import User
from scheduling.models import Appointment, AppointmentStatus, AppointmentType
from signaling.models import CheckIn
from signaling.ondemand import service as ondemand
from signaling.queue.places import QueuePlace, WaitingPatient, queue_places
from signaling.queue.service import current_delay, provider_day, queue_rows_of


@dataclass(frozen=True)
class WaitingPlaces:
    """The places in one provider's queue, what holds the provider, and which are walk-ins
    that any provider of the walk-in queue may still take."""

    places: list[QueuePlace]
    provider_status: str | None
    untaken: set[uuid.UUID]


async def waiting_places(session: AsyncSession, provider: User, now: datetime) -> WaitingPlaces:
    """The same places as `provider_queue` gives its rows, from one narrow query."""
    _zone, _local, day_start, day_end = await provider_day(session, provider, now)
    mine = await queue_rows_of(session, provider)
    query = (
        sa.select(
            col(Appointment.id),
            col(Appointment.start_at),
            col(Appointment.end_at),
            col(Appointment.status),
            col(Appointment.on_demand),
            col(AppointmentType.duration_minutes),
            col(CheckIn.waiting_since),
            col(CheckIn.visit_id),
        )
        .join(AppointmentType, col(AppointmentType.id) == Appointment.appointment_type_id)
        .join(CheckIn, col(CheckIn.appointment_id) == Appointment.id)
        .where(
            mine,
            col(Appointment.start_at) >= day_start,
            col(Appointment.start_at) < day_end,
            col(Appointment.status) != AppointmentStatus.CANCELLED,
        )
    )
    rows = (await session.exec(query)).all()  # type: ignore[call-overload]
    waiting = []
    busy_until: datetime | None = None
    in_visit = False
    for id_, start_at, end_at, status, on_demand, minutes, waiting_since, visit_id in rows:
        if visit_id is not None and status != AppointmentStatus.FULFILLED:
            in_visit = True
            busy_until = max(busy_until or now, end_at)
        elif waiting_since is not None:
            waiting.append(
                WaitingPatient(
                    appointment_id=id_,
                    scheduled_start=start_at,
                    duration=timedelta(minutes=minutes),
                    checked_in_at=waiting_since,
                    on_demand=on_demand,
                )
            )
    delay = await current_delay(session, provider.id, since=day_start)
    places = queue_places(
        waiting, now=now, provider_free_at=busy_until, delay=timedelta(minutes=delay)
    )
    said = []
    if in_visit:
        said.append(f"{provider.full_name} is finishing another visit.")
    if delay:
        said.append(f"{provider.full_name} is running about {delay} minutes late.")
    untaken = await ondemand.untaken_among(
        session, [w.appointment_id for w in waiting if w.on_demand]
    )
    return WaitingPlaces(places, " ".join(said) or None, untaken)

"""Each waiting patient's place, computed apart from the whole queue: an admit must reach
a thousand waiting patients fast, so their places come from one narrow query (no names, chart
facts, messages or presence), before the staff's full queue is built."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.models import User
from scheduling.models import Appointment, AppointmentStatus, AppointmentType
from signaling.models import CheckIn
from signaling.ondemand.models import OnDemandRequest
from signaling.queue.places import QueuePlace, WaitingPatient, queue_places
from signaling.queue.service import current_delay, provider_day


@dataclass(frozen=True)
class WaitingPlaces:
    """The places in one provider's queue, what holds the provider, and which are walk-ins
    that any provider of the walk-in queue may still take."""

    places: list[QueuePlace]
    provider_status: str | None
    untaken: set[uuid.UUID]


async def waiting_places(
    session: AsyncSession,
    providers: list[User],
    now: datetime,
    *,
    pool: list[uuid.UUID],
) -> dict[uuid.UUID, WaitingPlaces]:
    """The same places as `provider_queue` gives its rows, for several providers at once (the
    walk-in queue's `pool`, which share its walk-ins), from one narrow query."""
    if not providers:
        return {}
    days = {p.id: await provider_day(session, p, now) for p in providers}
    appointment = sa.inspect(Appointment).local_table
    kind = sa.inspect(AppointmentType).local_table
    check_in = sa.inspect(CheckIn).local_table
    request = sa.inspect(OnDemandRequest).local_table
    untaken = request.c.appointment_id.is_not(None) & request.c.taken_at.is_(None)
    theirs = appointment.c.provider_id.in_([p.id for p in providers]) & ~untaken
    if any(p.id in pool for p in providers):
        theirs = theirs | ((appointment.c.clinic_id == providers[0].clinic_id) & untaken)
    query = (
        sa.select(
            appointment.c.id,
            appointment.c.provider_id,
            appointment.c.start_at,
            appointment.c.end_at,
            appointment.c.status,
            appointment.c.on_demand,
            kind.c.duration_minutes,
            check_in.c.waiting_since,
            check_in.c.visit_id,
            untaken,
        )
        .select_from(appointment)
        .join(kind, kind.c.id == appointment.c.appointment_type_id)
        .join(check_in, check_in.c.appointment_id == appointment.c.id)
        .outerjoin(request, request.c.appointment_id == appointment.c.id)
        .where(
            theirs,
            appointment.c.start_at >= min(d[2] for d in days.values()),
            appointment.c.start_at < max(d[3] for d in days.values()),
            appointment.c.status != AppointmentStatus.CANCELLED.value,
        )
    )
    # Core rows, not ORM objects: a thousand of them cost a fraction.
    rows = (await (await session.connection()).execute(query)).all()
    found = {}
    for provider in providers:
        _zone, _local, day_start, day_end = days[provider.id]
        waiting = []
        free = set()
        busy_until: datetime | None = None
        in_visit = False
        for (
            id_,
            provider_id,
            start_at,
            end_at,
            status,
            on_demand,
            minutes,
            since,
            visit_id,
            open_,
        ) in rows:
            if not day_start <= start_at < day_end:
                continue
            if open_:
                if provider.id not in pool:
                    continue
            elif provider_id != provider.id:
                continue
            if visit_id is not None and status != AppointmentStatus.FULFILLED.value:
                in_visit = True
                busy_until = max(busy_until or now, end_at)
            elif since is not None:
                waiting.append(
                    WaitingPatient(
                        appointment_id=id_,
                        scheduled_start=start_at,
                        duration=timedelta(minutes=minutes),
                        checked_in_at=since,
                        on_demand=bool(on_demand),
                    )
                )
                if open_:
                    free.add(id_)
        delay = await current_delay(session, provider.id, since=day_start)
        places = queue_places(
            waiting, now=now, provider_free_at=busy_until, delay=timedelta(minutes=delay)
        )
        said = []
        if in_visit:
            said.append(f"{provider.full_name} is finishing another visit.")
        if delay:
            said.append(f"{provider.full_name} is running about {delay} minutes late.")
        found[provider.id] = WaitingPlaces(places, " ".join(said) or None, free)
    return found

"""A provider's waiting-room queue: who is next and when each patient can expect to be seen."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class WaitingPatient:
    """A checked-in patient waiting for their provider."""

    appointment_id: uuid.UUID
    scheduled_start: datetime
    duration: timedelta
    checked_in_at: datetime
    #: A walk-in: `scheduled_start` is when they arrived; the provider's delay does not apply.
    on_demand: bool = False


@dataclass(frozen=True)
class QueuePlace:
    appointment_id: uuid.UUID
    position: int  # 1 is next
    expected_start: datetime
    waited: timedelta

    def expected_wait(self, now: datetime) -> timedelta:
        return max(timedelta(0), self.expected_start - now)


def order_queue(waiting: Iterable[WaitingPatient]) -> list[WaitingPatient]:
    """By due time: a booked patient's booked time, a walk-in's arrival; at the same time the
    booked patient first; then who checked in first."""
    return sorted(
        waiting,
        key=lambda w: (w.scheduled_start, w.on_demand, w.checked_in_at, w.appointment_id),
    )


def queue_places(
    waiting: Iterable[WaitingPatient],
    *,
    now: datetime,
    provider_free_at: datetime | None = None,
    delay: timedelta = timedelta(0),
) -> list[QueuePlace]:
    """Each patient's place and expected start, following the real queue.

    The provider is free at `provider_free_at` (the end of the visit in progress) or now; each
    visit ahead then takes its booked length, and nobody is expected before their booked time
    plus the delay the provider says they run behind it.
    """
    free_at = max(now, provider_free_at or now)
    places = []
    for position, patient in enumerate(order_queue(waiting), start=1):
        due = patient.scheduled_start + (timedelta(0) if patient.on_demand else delay)
        start = max(free_at, due)
        places.append(
            QueuePlace(
                appointment_id=patient.appointment_id,
                position=position,
                expected_start=start,
                waited=max(timedelta(0), now - patient.checked_in_at),
            )
        )
        free_at = start + patient.duration
    return places

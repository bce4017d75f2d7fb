"""Queue order and expected waits, as the waiting patient and the provider see them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from signaling.queue.places import WaitingPatient, queue_places

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def patient(start_min: int, checked_in_min: int, duration_min: int = 20) -> WaitingPatient:
    return WaitingPatient(
        appointment_id=uuid.uuid4(),
        scheduled_start=NOON + start_min * MIN,
        duration=duration_min * MIN,
        checked_in_at=NOON + checked_in_min * MIN,
    )


def test_booked_time_orders_the_queue_then_check_in_time():
    late_booking_early_arrival = patient(30, -10)
    early_booking = patient(0, -2)
    same_time_later_arrival = patient(0, -1)
    places = queue_places(
        [late_booking_early_arrival, same_time_later_arrival, early_booking], now=NOON
    )
    assert [p.appointment_id for p in places] == [
        early_booking.appointment_id,
        same_time_later_arrival.appointment_id,
        late_booking_early_arrival.appointment_id,
    ]
    assert [p.position for p in places] == [1, 2, 3]


def test_expected_start_follows_the_visits_before_and_never_precedes_the_booking():
    a, b, c = patient(0, -5, 20), patient(10, -3, 15), patient(90, -1, 20)
    places = queue_places([a, b, c], now=NOON, provider_free_at=NOON + 5 * MIN)
    assert places[0].expected_start == NOON + 5 * MIN  # after the visit in progress
    assert places[1].expected_start == NOON + 25 * MIN  # after a's 20 minutes
    assert places[2].expected_start == NOON + 90 * MIN  # not before c's booked time
    assert places[0].expected_wait(NOON) == 5 * MIN
    assert places[0].waited == 5 * MIN


def test_a_provider_free_in_the_past_means_now():
    places = queue_places([patient(-15, -20)], now=NOON, provider_free_at=NOON - 30 * MIN)
    assert places[0].expected_start == NOON
    assert places[0].expected_wait(NOON) == timedelta(0)

"""Slot math: wall-clock rules across DST changes, exceptions, buffers, notice and horizon."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scheduling.slots import DayException, Span, WeeklyRule, free_slots, rules_overlap

NY = ZoneInfo("America/New_York")
EARLY = datetime(2000, 1, 1, tzinfo=UTC)
LATE = datetime(2100, 1, 1, tzinfo=UTC)


def _slots(first: date, last: date, rules, exceptions=(), busy=(), duration=30, buffer=0):
    return free_slots(
        zone=NY,
        rules=rules,
        exceptions=list(exceptions),
        first_day=first,
        last_day=last,
        duration=timedelta(minutes=duration),
        buffer=timedelta(minutes=buffer),
        busy=list(busy),
        earliest=EARLY,
        latest=LATE,
    )


def _local_starts(slots):
    return [s.start.astimezone(NY).strftime("%a %H:%M") for s in slots]


def test_nine_oclock_stays_nine_local_across_spring_forward():
    # 2026-03-08 is the US spring-forward Sunday: Saturday 09:00 EST, Monday 09:00 EDT.
    rules = [WeeklyRule(w, time(9), time(10)) for w in range(7)]
    slots = _slots(date(2026, 3, 7), date(2026, 3, 9), rules)
    assert _local_starts(slots) == [
        "Sat 09:00",
        "Sat 09:30",
        "Sun 09:00",
        "Sun 09:30",
        "Mon 09:00",
        "Mon 09:30",
    ]
    assert slots[0].start == datetime(2026, 3, 7, 14, 0, tzinfo=UTC)
    assert slots[4].start == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)


def test_nine_oclock_stays_nine_local_across_fall_back():
    rules = [WeeklyRule(w, time(9), time(9, 30)) for w in range(7)]
    slots = _slots(date(2026, 10, 31), date(2026, 11, 2), rules)
    assert [s.start for s in slots] == [
        datetime(2026, 10, 31, 13, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 14, 0, tzinfo=UTC),
        datetime(2026, 11, 2, 14, 0, tzinfo=UTC),
    ]


def test_night_window_over_the_change_counts_real_hours():
    # 01:00-04:00 local on spring-forward day is only two real hours long.
    rules = [WeeklyRule(6, time(1), time(4))]
    slots = _slots(date(2026, 3, 8), date(2026, 3, 8), rules, duration=60)
    assert len(slots) == 2
    # On fall-back day the same window is four real hours.
    slots = _slots(date(2026, 11, 1), date(2026, 11, 1), rules, duration=60)
    assert len(slots) == 4


def test_time_off_extra_hours_and_whole_day_off():
    rules = [WeeklyRule(0, time(9), time(12))]
    monday = date(2026, 6, 1)
    slots = _slots(
        monday,
        monday + timedelta(days=7),
        rules,
        exceptions=[
            DayException(monday, extra=False, start=time(10), end=time(11)),
            DayException(monday, extra=True, start=time(14), end=time(15)),
            DayException(monday + timedelta(days=7), extra=False),
        ],
        duration=60,
    )
    assert _local_starts(slots) == ["Mon 09:00", "Mon 11:00", "Mon 14:00"]


def test_busy_times_and_buffer_block_slots():
    rules = [WeeklyRule(0, time(9), time(11))]
    monday = date(2026, 6, 1)
    nine = datetime(2026, 6, 1, 13, 0, tzinfo=UTC)
    busy = [Span(nine + timedelta(minutes=35), nine + timedelta(minutes=45))]
    slots = _slots(monday, monday, rules, busy=busy, duration=30, buffer=10)
    # Steps of 40 min: 09:00 (its buffer runs into the busy time), 09:40 (busy), 10:20.
    assert _local_starts(slots) == ["Mon 10:20"]


def test_notice_and_horizon_cut_the_range():
    rules = [WeeklyRule(w, time(9), time(10)) for w in range(7)]
    slots = free_slots(
        zone=NY,
        rules=rules,
        exceptions=[],
        first_day=date(2026, 6, 1),
        last_day=date(2026, 6, 5),
        duration=timedelta(minutes=60),
        buffer=timedelta(0),
        busy=[],
        earliest=datetime(2026, 6, 2, 0, 0, tzinfo=UTC),
        latest=datetime(2026, 6, 4, 0, 0, tzinfo=UTC),
    )
    assert [s.start.date().isoformat() for s in slots] == ["2026-06-02", "2026-06-03"]


def test_overlapping_rules_are_found():
    assert (
        rules_overlap([WeeklyRule(0, time(9), time(12)), WeeklyRule(1, time(9), time(12))]) is None
    )
    assert rules_overlap(
        [
            WeeklyRule(0, time(9), time(12)),
            WeeklyRule(0, time(8), time(13)),
            WeeklyRule(0, time(13), time(14)),
        ]
    ) == (0, 1)

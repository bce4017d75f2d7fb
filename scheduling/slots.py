"""Free slots from weekly rules, date exceptions and busy times; pure and time-zone aware.

Rules and exceptions are wall-clock times in the provider's zone, so a 09:00 rule is 09:00 local
on both sides of a DST change. Results are aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class WeeklyRule:
    weekday: int  # 0 = Monday
    start: time
    end: time


@dataclass(frozen=True)
class DayException:
    day: date
    extra: bool  # False: time off
    start: time | None = None  # None with end None: the whole day
    end: time | None = None


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end


def rules_overlap(rules: Sequence[WeeklyRule]) -> tuple[int, int] | None:
    """The indexes of the first two rules of one weekday whose hours overlap, if any."""
    for i, a in enumerate(rules):
        for j in range(i):
            b = rules[j]
            if a.weekday == b.weekday and a.start < b.end and b.start < a.end:
                return j, i
    return None


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    # fold=0 picks the first of a repeated hour; a time inside a spring-forward gap moves
    # forward by the gap, which is what a clock on the wall does.
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _end_of(day: date, at: time, zone: ZoneInfo) -> datetime:
    # 00:00 as an end means midnight at the end of the day.
    if at == time(0):
        return _local(day + timedelta(days=1), at, zone)
    return _local(day, at, zone)


def _subtract(windows: list[Span], cut: Span) -> list[Span]:
    kept: list[Span] = []
    for w in windows:
        if not w.overlaps(cut):
            kept.append(w)
            continue
        if w.start < cut.start:
            kept.append(Span(w.start, cut.start))
        if cut.end < w.end:
            kept.append(Span(cut.end, w.end))
    return kept


def day_windows(
    day: date, zone: ZoneInfo, rules: Iterable[WeeklyRule], exceptions: Iterable[DayException]
) -> list[Span]:
    """The open hours of one local day, in UTC, after exceptions."""
    windows = [
        Span(_local(day, r.start, zone), _end_of(day, r.end, zone))
        for r in rules
        if r.weekday == day.weekday()
    ]
    for ex in exceptions:
        if ex.day != day:
            continue
        if ex.start is None or ex.end is None:
            if not ex.extra:
                windows = []
            continue
        span = Span(_local(day, ex.start, zone), _end_of(day, ex.end, zone))
        windows = [*_subtract(windows, span), span] if ex.extra else _subtract(windows, span)
    return sorted(windows, key=lambda s: s.start)


def candidate_starts(
    *,
    zone: ZoneInfo,
    rules: Sequence[WeeklyRule],
    exceptions: Sequence[DayException],
    first_day: date,
    last_day: date,
    duration: timedelta,
    buffer: timedelta,
) -> list[Span]:
    """Every slot the availability offers, busy or not: appointment spans back to back."""
    step = duration + buffer
    slots: list[Span] = []
    day = first_day
    while day <= last_day:
        for window in day_windows(day, zone, rules, exceptions):
            start = window.start
            while start + duration <= window.end:
                slots.append(Span(start, start + duration))
                start += step
        day += timedelta(days=1)
    slots.sort(key=lambda s: s.start)
    return slots


def free_slots(
    *,
    zone: ZoneInfo,
    rules: Sequence[WeeklyRule],
    exceptions: Sequence[DayException],
    first_day: date,
    last_day: date,
    duration: timedelta,
    buffer: timedelta,
    busy: Sequence[Span],
    earliest: datetime,
    latest: datetime,
) -> list[Span]:
    """Slots not overlapping a busy span (with the buffer), starting within [earliest, latest]."""
    merged = _merge(busy)
    free: list[Span] = []
    j = 0
    # Candidates come in time order and merged busy spans are disjoint and sorted: one sweep.
    for slot in candidate_starts(
        zone=zone,
        rules=rules,
        exceptions=exceptions,
        first_day=first_day,
        last_day=last_day,
        duration=duration,
        buffer=buffer,
    ):
        if slot.start < earliest or slot.start > latest:
            continue
        while j < len(merged) and merged[j].end <= slot.start:
            j += 1
        if j < len(merged) and merged[j].start < slot.end + buffer:
            continue
        free.append(slot)
    return free


def _merge(spans: Sequence[Span]) -> list[Span]:
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: s.start):
        if merged and span.start <= merged[-1].end:
            merged[-1] = Span(merged[-1].start, max(merged[-1].end, span.end))
        else:
            merged.append(span)
    return merged

"""When a clinic's walk-in queue is open: weekly hours in its zone, and the next opening."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class OpenHours:
    """One weekday's opening, `start` to `end` in the clinic's zone (weekday 0 is Monday; an
    end of 00:00 is midnight at the end of the day)."""

    weekday: int
    start: time
    end: time

    def public(self) -> dict[str, object]:
        return {
            "weekday": self.weekday,
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
        }


def _local(day: datetime, at: time, zone: ZoneInfo) -> datetime:
    """A wall-clock time of `day` in the zone (in a DST gap, the time after it)."""
    naive = datetime.combine(day.date(), at)
    aware = naive.replace(tzinfo=zone)
    # Round-trip through UTC: a time inside a spring-forward gap comes out moved past it.
    return aware.astimezone(ZoneInfo("UTC")).astimezone(zone)


def _closing(day: datetime, rule: OpenHours, zone: ZoneInfo) -> datetime:
    """When the day's opening ends; an end of 00:00 is midnight at the end of the day."""
    if rule.end == time(0):
        return _local(day + timedelta(days=1), time(0), zone)
    return _local(day, rule.end, zone)


def is_open(hours: list[OpenHours], timezone: str, now: datetime) -> bool:
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    for rule in hours:
        if rule.weekday != local.weekday():
            continue
        if _local(local, rule.start, zone) <= local < _closing(local, rule, zone):
            return True
    return False


def next_opening(hours: list[OpenHours], timezone: str, now: datetime) -> datetime | None:
    """When the queue opens next after `now` (in the clinic's zone), or None with no hours."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    found: list[datetime] = []
    for days_ahead in range(8):
        day = local + timedelta(days=days_ahead)
        for rule in hours:
            if rule.weekday == day.weekday():
                opening = _local(day, rule.start, zone)
                if opening > local:
                    found.append(opening)
        if found:
            return min(found)
    return None


def opening_text(opens_at: datetime, timezone: str, now: datetime) -> str:
    """ "Opens today at 08:00", "Opens Monday at 08:00" (clinic's time, zone named)."""
    zone = ZoneInfo(timezone)
    local = opens_at.astimezone(zone)
    today = now.astimezone(zone).date()
    if local.date() == today:
        day = "today"
    elif local.date() == today + timedelta(days=1):
        day = "tomorrow"
    else:
        day = WEEKDAYS[local.weekday()]
    return f"Opens {day} at {local.strftime('%H:%M')} ({timezone} time)."

"""Calendar invites: one UID per appointment, so a reschedule updates and a cancel removes it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress, vText

from app.core.models import utcnow

PRODID = "-//OpenConsult//Scheduling//EN"


def appointment_uid(appointment_id: object) -> str:
    return f"appointment-{appointment_id}@openconsult"


def invite(
    *,
    appointment_id: object,
    sequence: int,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    summary: str,
    description: str,
    organizer_email: str,
    attendee_email: str,
    cancel: bool = False,
) -> str:
    """An iCalendar REQUEST (or CANCEL) with times in the provider's zone and its VTIMEZONE."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if cancel else "REQUEST")
    event = Event()
    event.add("uid", appointment_uid(appointment_id))
    event.add("sequence", sequence)
    event.add("dtstamp", utcnow())
    event.add("dtstart", start.astimezone(zone))
    event.add("dtend", end.astimezone(zone))
    event.add("summary", summary)
    event.add("description", description)
    event.add("status", "CANCELLED" if cancel else "CONFIRMED")
    organizer = vCalAddress(f"mailto:{organizer_email}")
    organizer.params["cn"] = vText("OpenConsult")
    event["organizer"] = organizer
    attendee = vCalAddress(f"mailto:{attendee_email}")
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    event.add("attendee", attendee, encode=False)
    cal.add_component(event)
    cal.add_missing_timezones()
    text: str = cal.to_ical().decode()
    return text

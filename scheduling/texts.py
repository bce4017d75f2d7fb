"""What the patient receives by text message: the join link (booked, moved, sent anew), the
reminders and a cancellation. Only to a number they agreed to texts on (`scheduling.consent`).

A text may be read by anyone who sees the phone: it names the clinic, the time and the short
link, never the provider, the visit type or any other health detail.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.models import Clinic
from scheduling import consent, outbox
from scheduling.models import AppointmentView, Channel
from scheduling.schemas import zone_named

REMINDER = "reminder"
_LEADS = {
    "confirmation": "your video visit is booked for",
    "rescheduled": "your video visit has a new time:",
    "link_resent": "here is a new link for your video visit on",
}
_LABELS = {
    "confirmation": "Text: visit booked",
    "rescheduled": "Text: new time",
    "link_resent": "Text: new link",
    REMINDER: "Text: reminder",
    "cancellation": "Text: visit cancelled",
}


def short_time(moment: datetime, zone_name: str) -> str:
    """e.g. 'Mon 9 Mar, 09:00 (America/New_York)': short enough for one text."""
    local = moment.astimezone(zone_named(zone_name))
    return f"{local:%a} {local.day} {local:%b, %H:%M} ({zone_name})"


def _call(clinic: Clinic) -> str:
    return f" Questions? Call {clinic.phone}." if clinic.phone else ""


def link_text(clinic: Clinic, lead: str, when: str, link: str) -> str:
    return (
        f"{clinic.name}: {lead} {when}. Join with your personal link (do not share it): "
        f"{link}{_call(clinic)}"
    )


async def queue_link(
    session: AsyncSession,
    view: AppointmentView,
    clinic: Clinic,
    link: str,
    *,
    kind: str,
    now: datetime,
    reminder_offsets: list[int],
) -> bool:
    """The link now and reminders before the start, when the patient agreed to texts."""
    number = await consent.textable_number(session, view.patient)
    if number is None:
        return False
    appointment = view.appointment
    when = short_time(appointment.start_at, view.patient.timezone)

    def add(kind: str, body: str, send_after: datetime | None = None) -> None:
        outbox.enqueue(
            session,
            appointment_id=appointment.id,
            channel=Channel.SMS,
            kind=kind,
            to_addr=number,
            subject=_LABELS[kind],
            body=body,
            send_after=send_after,
        )

    add(kind, link_text(clinic, _LEADS[kind], when, link))
    for minutes in sorted(reminder_offsets, reverse=True):
        send_at = appointment.start_at - timedelta(minutes=minutes)
        if send_at > now:
            add(REMINDER, link_text(clinic, "reminder of your video visit on", when, link), send_at)
    return True


async def queue_cancellation(session: AsyncSession, view: AppointmentView, clinic: Clinic) -> None:
    number = await consent.textable_number(session, view.patient)
    if number is None:
        return
    when = short_time(view.appointment.start_at, view.patient.timezone)
    outbox.enqueue(
        session,
        appointment_id=view.appointment.id,
        channel=Channel.SMS,
        kind="cancellation",
        to_addr=number,
        subject=_LABELS["cancellation"],
        body=f"{clinic.name}: your video visit on {when} is cancelled; the link no longer "
        f"works. Please contact the clinic to book a new time.{_call(clinic)}",
    )

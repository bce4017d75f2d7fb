"""What the patient receives: confirmation with join link and invite, reminders, a resent link,
cancellation. Every email names the clinic (and its phone number when it has one) and carries the
short join link (`/j/<code>`)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timedelta
from email.utils import parseaddr

from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.core.models import Clinic
from scheduling import ics, outbox, texts
from scheduling.links import current_link, opens_at
from scheduling.models import AppointmentView
from scheduling.schemas import zone_named

REMINDER = "reminder"


class Reason(enum.StrEnum):
    """Why a confirmation goes out: the message kind in the outbox."""

    BOOKED = "confirmation"
    RESCHEDULED = "rescheduled"
    LINK_RESENT = "link_resent"


_SUBJECTS = {
    Reason.BOOKED: "Your appointment is booked",
    Reason.RESCHEDULED: "Your appointment was moved",
    Reason.LINK_RESENT: "Your new link for your video visit",
}
_LEADS = {
    Reason.BOOKED: "",
    Reason.RESCHEDULED: "Your appointment has a new time; the earlier link no longer works.\n\n",
    Reason.LINK_RESENT: "Here is a new personal link for your visit; the earlier link no longer "
    "works.\n\n",
}


def local_text(moment: datetime, zone_name: str) -> str:
    """e.g. 'Monday 9 March 2026, 09:00 (America/New_York, EDT)'; a zone whose abbreviation
    is its name is named once: '(UTC)'."""
    local = moment.astimezone(zone_named(zone_name))
    abbreviation = local.tzname()
    zone = zone_name if abbreviation in (None, zone_name) else f"{zone_name}, {abbreviation}"
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M} ({zone})"


def _signature(clinic: Clinic) -> str:
    """The clinic's name and, when it has one, the number to call: the patient knows who writes."""
    if clinic.phone:
        call = f"Questions, or trouble joining? Call {clinic.name} on {clinic.phone}."
        return f"\n{call}\n\n{clinic.name}\n"
    return f"\n{clinic.name}\n"


async def _clinic(session: AsyncSession, view: AppointmentView) -> Clinic:
    clinic = await session.get(Clinic, view.appointment.clinic_id)
    assert clinic is not None
    return clinic


def _invite(
    settings: Settings,
    view: AppointmentView,
    clinic: Clinic,
    link: str | None,
    *,
    cancel: bool = False,
) -> str:
    appointment = view.appointment
    return ics.invite(
        appointment_id=appointment.id,
        sequence=appointment.version,
        start=appointment.start_at,
        end=appointment.end_at,
        zone=zone_named(view.timezone),
        summary=f"Video visit with {view.provider.full_name} ({clinic.name})",
        description=("Cancelled." if cancel or link is None else f"Join here: {link}"),
        organizer_email=parseaddr(settings.mail_from)[1] or "no-reply@openconsult.invalid",
        attendee_email=view.patient.email or "",
        cancel=cancel,
    )


def _details(settings: Settings, view: AppointmentView, clinic: Clinic, link: str) -> str:
    appointment = view.appointment
    zone = view.patient.timezone
    return (
        f"Your video visit at {clinic.name} with {view.provider.full_name} ({view.kind.name}) "
        f"is on\n{local_text(appointment.start_at, zone)}.\n\n"
        f"Join with this personal link (do not share it):\n{link}\n\n"
        f"The link opens at {local_text(opens_at(settings, appointment), zone)}.\n"
    )


async def queue_confirmation(
    session: AsyncSession,
    settings: Settings,
    view: AppointmentView,
    *,
    now: datetime,
    reason: Reason = Reason.BOOKED,
) -> bool:
    """Confirmation now, reminders at the configured offsets before the start, by email and,
    when the patient agreed to texts, by text message.

    False when neither goes out (no email address, no consent to texts): staff pass the link on.
    """
    patient = view.patient
    appointment = view.appointment
    clinic = await _clinic(session, view)
    link = await current_link(session, settings, appointment)
    texted = await texts.queue_link(
        session,
        view,
        clinic,
        link,
        kind=reason.value,
        now=now,
        reminder_offsets=settings.reminder_offsets_minutes,
    )
    if not patient.email:
        return texted
    greeting = f"Dear {patient.given_name},\n\n"
    when = local_text(appointment.start_at, patient.timezone)
    details = _details(settings, view, clinic, link) + _signature(clinic)
    outbox.enqueue(
        session,
        appointment_id=appointment.id,
        kind=reason.value,
        to_addr=patient.email,
        subject=f"{_SUBJECTS[reason]}: {when} · {clinic.name}",
        body=greeting + _LEADS[reason] + details,
        ics=_invite(settings, view, clinic, link),
    )
    for minutes in sorted(settings.reminder_offsets_minutes, reverse=True):
        send_at = appointment.start_at - timedelta(minutes=minutes)
        if send_at <= now:
            continue
        outbox.enqueue(
            session,
            appointment_id=appointment.id,
            kind=REMINDER,
            to_addr=patient.email,
            subject=f"Reminder: video visit {when} · {clinic.name}",
            body=greeting + "A reminder of your upcoming visit.\n\n" + details,
            send_after=send_at,
        )
    return True


async def queue_cancellation(
    session: AsyncSession, settings: Settings, view: AppointmentView
) -> None:
    patient = view.patient
    clinic = await _clinic(session, view)
    await texts.queue_cancellation(session, view, clinic)
    if not patient.email:
        return
    appointment = view.appointment
    when = local_text(appointment.start_at, patient.timezone)
    outbox.enqueue(
        session,
        appointment_id=appointment.id,
        kind="cancellation",
        to_addr=patient.email,
        subject=f"Cancelled: your appointment {when} · {clinic.name}",
        body=(
            f"Dear {patient.given_name},\n\nYour video visit at {clinic.name} with "
            f"{view.provider.full_name} on {when} is cancelled.\n"
            f"Reason: {appointment.cancel_reason or 'not given'}\n\n"
            "The join link no longer works. Please contact the clinic to book a new time.\n"
            + _signature(clinic)
        ),
        ics=_invite(settings, view, clinic, None, cancel=True),
    )


async def withdraw_reminders(session: AsyncSession, appointment_id: uuid.UUID) -> None:
    await outbox.cancel_pending(session, appointment_id, {REMINDER})

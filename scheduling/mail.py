"""What the patient receives: confirmation with join link and invite, reminders, cancellation."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from email.utils import parseaddr

from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from scheduling import ics, outbox
from scheduling.links import join_url, opens_at
from scheduling.models import AppointmentView
from scheduling.schemas import zone_named

REMINDER = "reminder"


def local_text(moment: datetime, zone_name: str) -> str:
    """e.g. 'Monday 9 March 2026, 09:00 (America/New_York, EDT)'."""
    local = moment.astimezone(zone_named(zone_name))
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M} ({zone_name}, {local.tzname()})"


def _invite(settings: Settings, view: AppointmentView, *, cancel: bool = False) -> str:
    appointment = view.appointment
    return ics.invite(
        appointment_id=appointment.id,
        sequence=appointment.version,
        start=appointment.start_at,
        end=appointment.end_at,
        zone=zone_named(view.timezone),
        summary=f"Video visit with {view.provider.full_name}",
        description=("Cancelled." if cancel else f"Join here: {join_url(settings, appointment)}"),
        organizer_email=parseaddr(settings.mail_from)[1] or "no-reply@openconsult.invalid",
        attendee_email=view.patient.email or "",
        cancel=cancel,
    )


def _details(settings: Settings, view: AppointmentView) -> str:
    appointment = view.appointment
    zone = view.patient.timezone
    return (
        f"Your video visit with {view.provider.full_name} ({view.kind.name}) is on\n"
        f"{local_text(appointment.start_at, zone)}.\n\n"
        f"Join with this personal link (do not share it):\n{join_url(settings, appointment)}\n\n"
        f"The link opens at {local_text(opens_at(settings, appointment), zone)}.\n"
    )


def queue_confirmation(
    session: AsyncSession,
    settings: Settings,
    view: AppointmentView,
    *,
    now: datetime,
    rescheduled: bool = False,
) -> None:
    """Confirmation now, reminders at the configured offsets before the start."""
    patient = view.patient
    if not patient.email:
        return
    appointment = view.appointment
    greeting = f"Dear {patient.given_name},\n\n"
    subject = "Your appointment was moved" if rescheduled else "Your appointment is booked"
    lead = "Your appointment has a new time; the earlier link no longer works.\n\n"
    outbox.enqueue(
        session,
        appointment_id=appointment.id,
        kind="rescheduled" if rescheduled else "confirmation",
        to_addr=patient.email,
        subject=f"{subject}: {local_text(appointment.start_at, patient.timezone)}",
        body=greeting + (lead if rescheduled else "") + _details(settings, view),
        ics=_invite(settings, view),
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
            subject=f"Reminder: video visit {local_text(appointment.start_at, patient.timezone)}",
            body=greeting + "A reminder of your upcoming visit.\n\n" + _details(settings, view),
            send_after=send_at,
        )


def queue_cancellation(session: AsyncSession, settings: Settings, view: AppointmentView) -> None:
    patient = view.patient
    if not patient.email:
        return
    appointment = view.appointment
    when = local_text(appointment.start_at, patient.timezone)
    outbox.enqueue(
        session,
        appointment_id=appointment.id,
        kind="cancellation",
        to_addr=patient.email,
        subject=f"Cancelled: your appointment {when}",
        body=(
            f"Dear {patient.given_name},\n\nYour video visit with {view.provider.full_name} "
            f"on {when} is cancelled.\nReason: {appointment.cancel_reason or 'not given'}\n\n"
            "The join link no longer works. Please contact the clinic to book a new time.\n"
        ),
        ics=_invite(settings, view, cancel=True),
    )


async def withdraw_reminders(session: AsyncSession, appointment_id: uuid.UUID) -> None:
    await outbox.cancel_pending(session, appointment_id, {REMINDER})

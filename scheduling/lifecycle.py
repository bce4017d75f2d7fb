"""An appointment's day: the patient arrives and checks in, the visit fulfils it, or no-show.

Check-in and the visit (signaling) move an appointment through these functions inside their own
transaction and commit it; each change raises an `AppointmentChanged` that is delivered once
that transaction commits.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Conflict
from app.core.events import AppointmentChanged, raise_event
from app.core.models import utcnow
from app.web.identity import Actor
from scheduling import mail
from scheduling.models import Appointment, AppointmentStatus, AppointmentView
from scheduling.service import appointment_for, require_open


def _changed(session: AsyncSession, appointment: Appointment) -> None:
    session.add(appointment)
    raise_event(session, AppointmentChanged(appointment.id))


def arrive(session: AsyncSession, appointment: Appointment) -> None:
    """The patient confirmed who they are: a booked appointment is now arrived."""
    if appointment.status == AppointmentStatus.BOOKED:
        appointment.status = AppointmentStatus.ARRIVED
        appointment.updated_at = utcnow()
        _changed(session, appointment)


def check_in(session: AsyncSession, appointment: Appointment) -> None:
    """The patient entered the waiting room: a booked or arrived appointment is checked in."""
    if appointment.status in (AppointmentStatus.BOOKED, AppointmentStatus.ARRIVED):
        appointment.status = AppointmentStatus.CHECKED_IN
        appointment.updated_at = utcnow()
        _changed(session, appointment)


def fulfil(session: AsyncSession, appointment: Appointment) -> None:
    """The provider ended the visit: the appointment took place."""
    appointment.status = AppointmentStatus.FULFILLED
    _changed(session, appointment)


async def mark_noshow(
    session: AsyncSession, actor: Actor, appointment_id: uuid.UUID
) -> AppointmentView:
    """Staff close an appointment whose patient did not come (after its start only)."""
    view = await appointment_for(session, actor, appointment_id)
    appointment = view.appointment
    require_open(appointment, "marked no-show")
    if appointment.start_at > utcnow():
        raise Conflict(
            "An appointment can be marked no-show only after its start.",
            fields={"status": "not started yet"},
        )
    appointment.status = AppointmentStatus.NOSHOW
    appointment.updated_at = utcnow()
    _changed(session, appointment)
    await mail.withdraw_reminders(session, appointment.id)
    await session.commit()
    return view


async def auto_noshow(session: AsyncSession, *, after: timedelta) -> list[Appointment]:
    """Mark no-show every booked appointment whose patient never checked in by start + after.

    Each row changes by a conditional update, so two processes sweeping at once report (and
    audit and announce) each appointment once.
    """
    cutoff = utcnow() - after
    rows = await session.exec(
        select(Appointment).where(
            Appointment.status == AppointmentStatus.BOOKED, col(Appointment.start_at) < cutoff
        )
    )
    changed = []
    connection = await session.connection()
    for appointment in rows.all():
        result = await connection.execute(
            sa.update(Appointment)
            .where(
                col(Appointment.id) == appointment.id,
                col(Appointment.status) == AppointmentStatus.BOOKED,
            )
            .values(status=AppointmentStatus.NOSHOW, updated_at=utcnow())
        )
        if result.rowcount == 1:
            await mail.withdraw_reminders(session, appointment.id)
            raise_event(session, AppointmentChanged(appointment.id))
            changed.append(appointment)
    await session.commit()
    return changed

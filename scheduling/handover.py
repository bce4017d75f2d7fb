"""What staff are handed with an appointment: the patient's join link, warnings to act on, and
how its emails went."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from scheduling import deliveries, links
from scheduling.models import AppointmentStatus, AppointmentView, OutboxMessage, OutboxStatus
from scheduling.schemas import MessagePublic, WarningPublic

# A link still leads somewhere: in to the visit, or (after it) to the visit summary.
LINKED_STATUSES = (
    AppointmentStatus.BOOKED,
    AppointmentStatus.ARRIVED,
    AppointmentStatus.CHECKED_IN,
    AppointmentStatus.FULFILLED,
)
NO_EMAIL = "no_email"


@dataclass
class Handover:
    join_url: str | None = None
    email_status: str | None = None
    warnings: list[WarningPublic] = field(default_factory=list)
    messages: list[MessagePublic] = field(default_factory=list)


def delivery_status(message: OutboxMessage) -> str:
    if message.status == OutboxStatus.PENDING:
        return "retrying" if message.last_error else "queued"
    if message.status == OutboxStatus.CANCELLED:
        return "withdrawn"
    return message.status.value


def message_public(message: OutboxMessage) -> MessagePublic:
    return MessagePublic(
        id=message.id,
        kind=message.kind,
        to=message.to_addr,
        subject=message.subject,
        status=delivery_status(message),
        attempts=message.attempts,
        last_error=message.last_error,
        send_after=message.send_after,
        sent_at=message.sent_at,
        delivered_via=message.delivered_via,
    )


def no_email_warning(view: AppointmentView) -> WarningPublic:
    name = f"{view.patient.given_name} {view.patient.family_name}"
    return WarningPublic(
        code=NO_EMAIL,
        message=f"{name} has no email address, so no email is sent. Give them the join link "
        "yourself (read it out on the phone or send it by text message).",
    )


async def handovers(
    session: AsyncSession,
    settings: Settings,
    views: list[AppointmentView],
    *,
    with_messages: bool = False,
) -> dict[uuid.UUID, Handover]:
    """Each appointment's handover; short links missing so far are made (commit after)."""
    linked = [v.appointment for v in views if v.appointment.status in LINKED_STATUSES]
    codes = await links.codes_of(session, linked)
    for appointment in linked:
        if appointment.id not in codes:
            codes[appointment.id] = await links.link_code(session, appointment)
    latest = await deliveries.latest_status(session, [v.appointment.id for v in views])
    result: dict[uuid.UUID, Handover] = {}
    for view in views:
        appointment = view.appointment
        handover = Handover()
        if appointment.id in codes:
            handover.join_url = links.short_url(settings, codes[appointment.id])
            if not view.patient.email:
                handover.warnings.append(no_email_warning(view))
        if appointment.id in latest:
            handover.email_status = delivery_status(latest[appointment.id])
        if with_messages:
            messages = await deliveries.messages_of(session, appointment.id)
            handover.messages = [message_public(m) for m in messages]
        result[appointment.id] = handover
    return result

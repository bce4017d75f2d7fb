"""What staff are handed with an appointment: the patient's join link, warnings to act on, and
how its emails went."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from scheduling import consent, deliveries, links
from scheduling.models import (
    AppointmentStatus,
    AppointmentView,
    Channel,
    OutboxMessage,
    OutboxStatus,
)
from scheduling.schemas import MessagePublic, WarningPublic

# A link still leads somewhere: in to the visit, or (after it) to the visit summary.
LINKED_STATUSES = (
    AppointmentStatus.BOOKED,
    AppointmentStatus.ARRIVED,
    AppointmentStatus.CHECKED_IN,
    AppointmentStatus.FULFILLED,
)
NO_EMAIL = "no_email"
NO_TEXT_CONSENT = "no_text_consent"


@dataclass
class Handover:
    join_url: str | None = None
    email_status: str | None = None
    text_status: str | None = None
    texted: bool = False
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
        channel=message.channel.value,
        provider_ref=message.provider_ref,
    )


def no_email_warning(view: AppointmentView, texted: bool = False) -> WarningPublic:
    name = f"{view.patient.given_name} {view.patient.family_name}"
    if texted:
        return WarningPublic(
            code=NO_EMAIL,
            message=f"{name} has no email address, so no email is sent; the join link goes to "
            "them by text message.",
        )
    return WarningPublic(
        code=NO_EMAIL,
        message=f"{name} has no email address, so no email is sent. Give them the join link "
        "yourself (read it out on the phone or send it by text message).",
    )


def no_text_consent_warning(view: AppointmentView) -> WarningPublic:
    name = f"{view.patient.given_name} {view.patient.family_name}"
    return WarningPublic(
        code=NO_TEXT_CONSENT,
        message=f"{name} has a phone number but has not agreed to text messages, so no text is "
        "sent. Ask them; when they agree, record it and send a new link.",
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
    ids = [v.appointment.id for v in views]
    latest = await deliveries.latest_status(session, ids)
    latest_texts = await deliveries.latest_status(session, ids, channel=Channel.SMS)
    numbers = await consent.textable_numbers(session, [v.patient for v in views])
    result: dict[uuid.UUID, Handover] = {}
    for view in views:
        appointment = view.appointment
        handover = Handover(texted=numbers.get(view.patient.id) is not None)
        if appointment.id in codes:
            handover.join_url = links.short_url(settings, codes[appointment.id])
            if not view.patient.email:
                handover.warnings.append(no_email_warning(view, handover.texted))
            if view.patient.phone and not handover.texted:
                handover.warnings.append(no_text_consent_warning(view))
        if appointment.id in latest:
            handover.email_status = delivery_status(latest[appointment.id])
        if appointment.id in latest_texts:
            handover.text_status = delivery_status(latest_texts[appointment.id])
        if with_messages:
            messages = await deliveries.messages_of(session, appointment.id)
            handover.messages = [message_public(m) for m in messages]
        result[appointment.id] = handover
    return result

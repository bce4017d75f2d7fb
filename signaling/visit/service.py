"""The video visit: who may take part, its chat, and its end."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Conflict, Forbidden, NotFound
from app.core.models import Patient, User, utcnow
from app.web.identity import Actor, ActorKind, GuestClaims, PatientClaims
from scheduling import lifecycle
from scheduling.models import Appointment
from signaling.models import Visit, VisitGuest, VisitMessage

PROVIDER = "provider"
PATIENT = "patient"
GUEST = "guest"
HISTORY_LIMIT = 200
_ACTOR_KINDS: dict[str, ActorKind] = {PROVIDER: "staff", PATIENT: "patient", GUEST: "guest"}


class VisitEnded(Conflict):
    code = "visit_ended"


@dataclass(frozen=True)
class Attendee:
    """One person's place in a visit, as the relay and the chat know them."""

    visit: Visit
    role: str
    person_id: uuid.UUID
    name: str

    @property
    def participant_id(self) -> str:
        """The relay's id for this person: stable across reloads, distinct per role."""
        return f"{self.role}:{self.person_id}"

    @property
    def turn_user(self) -> str:
        """The id in TURN usernames (no ':' allowed there)."""
        return self.person_id.hex

    def actor(self, client_addr: str | None = None) -> Actor:
        """This attendee as the audit trail records them, in their role in the visit."""
        kind = _ACTOR_KINDS[self.role]
        return Actor(kind, self.person_id, self.role, self.visit.clinic_id, client_addr)


async def attendee(
    session: AsyncSession,
    visit_id: uuid.UUID,
    *,
    staff_id: uuid.UUID | None,
    patient: PatientClaims | None,
    guest: GuestClaims | None = None,
) -> Attendee:
    """The visit's provider, its patient or an admitted guest; anyone else gets NotFound."""
    visit = await session.get(Visit, visit_id)
    if visit is None:
        raise NotFound("No such visit.")
    if staff_id is not None and staff_id == visit.provider_id:
        provider = await session.get(User, visit.provider_id)
        if provider is not None and provider.is_active:
            return Attendee(visit, PROVIDER, provider.id, provider.full_name)
    if patient is not None and patient.appointment_id == visit.appointment_id:
        appointment = await session.get(Appointment, visit.appointment_id)
        person = await session.get(Patient, visit.patient_id)
        if appointment is not None and appointment.version == patient.version and person:
            return Attendee(visit, PATIENT, person.id, f"{person.given_name} {person.family_name}")
    if guest is not None and guest.visit_id == visit.id:
        invited = await session.get(VisitGuest, guest.guest_id)
        if (
            invited is not None
            and invited.visit_id == visit.id
            and invited.admitted_at is not None
            and invited.revoked_at is None
            and invited.name is not None
        ):
            return Attendee(visit, GUEST, invited.id, f"{invited.name} ({invited.label})")
    raise NotFound("No such visit.")


async def require_open(session: AsyncSession, visit_id: uuid.UUID) -> Visit:
    """The visit, if it has not ended."""
    visit = await session.get(Visit, visit_id)
    if visit is None:
        raise NotFound("No such visit.")
    if visit.ended_at is not None:
        raise VisitEnded("This visit has ended.")
    return visit


async def add_message(session: AsyncSession, who: Attendee, text: str) -> VisitMessage:
    """Keep one chat line with the visit (only while it is open)."""
    await require_open(session, who.visit.id)
    message = VisitMessage(
        visit_id=who.visit.id, author_role=who.role, author_name=who.name, text=text
    )
    session.add(message)
    await session.commit()
    await session.refresh(message)
    return message


async def messages(session: AsyncSession, visit_id: uuid.UUID) -> list[VisitMessage]:
    """The visit's chat, oldest first (the last HISTORY_LIMIT lines)."""
    result = await session.exec(
        select(VisitMessage)
        .where(VisitMessage.visit_id == visit_id)
        .order_by(col(VisitMessage.sent_at).desc())
        .limit(HISTORY_LIMIT)
    )
    return list(reversed(result.all()))


async def end_visit(session: AsyncSession, who: Attendee) -> Visit:
    """The provider ends the visit for everyone; the appointment is then fulfilled."""
    if who.role != PROVIDER:
        raise Forbidden("Only the provider can end the visit.")
    visit = await require_open(session, who.visit.id)
    visit.ended_at = utcnow()
    session.add(visit)
    appointment = await session.get(Appointment, visit.appointment_id)
    if appointment is not None:
        lifecycle.fulfil(session, appointment)
    await session.commit()
    await session.refresh(visit)
    return visit


def message_public(message: VisitMessage) -> dict[str, str]:
    return {
        "id": str(message.id),
        "role": message.author_role,
        "from": message.author_name,
        "text": message.text,
        "sent_at": message.sent_at.isoformat(),
    }

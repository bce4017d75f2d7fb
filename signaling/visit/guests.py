"""Visit guests, the provider's side: invite an interpreter or a family member, admit, remove.

The guest's own way in (name, consent, device check, waiting) is check-in's:
`signaling.checkin.guests`.
"""

from __future__ import annotations

import enum
import json
import uuid

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.core.errors import Conflict, Forbidden, NotFound
from app.core.models import utcnow
from scheduling.models import Appointment
from signaling.checkin.guest_tokens import guest_expiry, guest_link_token
from signaling.models import Visit, VisitGuest
from signaling.relay.room import MAX_PARTICIPANTS
from signaling.visit.service import PROVIDER, Attendee, require_open

# The patient and the provider take two of the relay's places.
MAX_GUESTS = MAX_PARTICIPANTS - 2
# Links a visit may hand out, admitted or not: enough to re-invite, too few to spray.
MAX_INVITES = 6


class VisitFull(Conflict):
    code = "visit_full"


class GuestStatus(enum.StrEnum):
    INVITED = "invited"
    CHECKING_IN = "checking in"
    WAITING = "waiting"
    ADMITTED = "admitted"
    REMOVED = "removed"


def guest_status(guest: VisitGuest) -> GuestStatus:
    if guest.revoked_at is not None:
        return GuestStatus.REMOVED
    if guest.admitted_at is not None:
        return GuestStatus.ADMITTED
    if guest.waiting_since is not None:
        return GuestStatus.WAITING
    if guest.name is not None:
        return GuestStatus.CHECKING_IN
    return GuestStatus.INVITED


def require_provider(who: Attendee) -> None:
    if who.role != PROVIDER:
        raise Forbidden("Only the visit's provider can invite or admit guests.")


async def invite(
    session: AsyncSession, settings: Settings, who: Attendee, label: str
) -> tuple[VisitGuest, str]:
    """A new guest of the provider's open visit, and the token of their link."""
    require_provider(who)
    visit = await require_open(session, who.visit.id)
    count = (
        await session.exec(
            select(func.count()).select_from(VisitGuest).where(VisitGuest.visit_id == visit.id)
        )
    ).one()
    if count >= MAX_INVITES:
        raise VisitFull(f"A visit can hand out at most {MAX_INVITES} guest links.")
    guest = VisitGuest(
        visit_id=visit.id, clinic_id=visit.clinic_id, invited_by=who.person_id, label=label
    )
    session.add(guest)
    await session.commit()
    await session.refresh(guest)
    return guest, await link_token(session, settings, guest)


async def link_token(session: AsyncSession, settings: Settings, guest: VisitGuest) -> str:
    visit = await session.get(Visit, guest.visit_id)
    assert visit is not None
    appointment = await session.get(Appointment, visit.appointment_id)
    assert appointment is not None
    return guest_link_token(settings, guest.id, visit.id, guest_expiry(settings, appointment))


async def guests_of(session: AsyncSession, visit_id: uuid.UUID) -> list[VisitGuest]:
    result = await session.exec(
        select(VisitGuest)
        .where(VisitGuest.visit_id == visit_id)
        .order_by(col(VisitGuest.created_at))
    )
    return list(result.all())


async def admit(session: AsyncSession, who: Attendee, guest_id: uuid.UUID) -> VisitGuest:
    """Let a waiting guest into the provider's visit, while it has room for them."""
    require_provider(who)
    await require_open(session, who.visit.id)
    guest = await session.get(VisitGuest, guest_id)
    if guest is None or guest.visit_id != who.visit.id or guest.revoked_at is not None:
        raise NotFound("No such guest in this visit.")
    if guest.admitted_at is not None:
        return guest
    if guest.waiting_since is None:
        raise Conflict(
            "This guest is not in the waiting room yet.", fields={"guest_id": "not waiting"}
        )
    admitted = (
        await session.exec(
            select(func.count())
            .select_from(VisitGuest)
            .where(
                VisitGuest.visit_id == who.visit.id,
                col(VisitGuest.admitted_at).is_not(None),
                col(VisitGuest.revoked_at).is_(None),
            )
        )
    ).one()
    if admitted >= MAX_GUESTS:
        raise VisitFull(
            f"A visit has room for {MAX_PARTICIPANTS} people: the patient, you and "
            f"{MAX_GUESTS} guests. Remove a guest before admitting another."
        )
    guest.admitted_at = utcnow()
    session.add(guest)
    await session.commit()
    await session.refresh(guest)
    return guest


async def remove(session: AsyncSession, who: Attendee, guest_id: uuid.UUID) -> VisitGuest:
    """Withdraw a guest's invitation: their link and session stop working at once."""
    require_provider(who)
    guest = await session.get(VisitGuest, guest_id)
    if guest is None or guest.visit_id != who.visit.id:
        raise NotFound("No such guest in this visit.")
    if guest.revoked_at is None:
        guest.revoked_at = utcnow()
        session.add(guest)
        await session.commit()
        await session.refresh(guest)
    return guest


def guest_public(guest: VisitGuest) -> dict[str, object]:
    return {
        "id": str(guest.id),
        "label": guest.label,
        "name": guest.name,
        "status": guest_status(guest).value,
        "device_check": json.loads(guest.device_check) if guest.device_check else None,
        "created_at": guest.created_at.isoformat(),
        "waiting_since": guest.waiting_since.isoformat() if guest.waiting_since else None,
        "admitted_at": guest.admitted_at.isoformat() if guest.admitted_at else None,
    }

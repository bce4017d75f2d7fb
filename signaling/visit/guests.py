"""Visit guests: an interpreter or a family member the provider invites by link and admits.

A guest names themself, accepts the clinic's consent (no date-of-birth check: they are not
the patient), checks their devices and waits until the provider lets them into the visit.
"""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import dataclass

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.core.errors import Conflict, Forbidden, NotFound
from app.core.models import User, utcnow
from scheduling.models import Appointment
from signaling.checkin import service as checkin
from signaling.checkin.service import LinkNotOpen, NeedsStep
from signaling.models import ConsentDocument, Visit, VisitGuest
from signaling.relay.room import MAX_PARTICIPANTS
from signaling.visit.guest_tokens import (
    GuestClaims,
    guest_expiry,
    guest_link_token,
    read_guest_link,
)
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


@dataclass(frozen=True)
class GuestArrival:
    """What a guest link resolves to."""

    guest: VisitGuest
    visit: Visit
    appointment: Appointment
    provider: User


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


async def resolve_link(session: AsyncSession, settings: Settings, token: str) -> GuestArrival:
    """The guest behind a link that still works: the visit open, the guest not removed."""
    claims = read_guest_link(settings, token)
    return await _arrival(session, claims, invalid="This guest link is not valid.")


async def from_session(session: AsyncSession, claims: GuestClaims | None) -> GuestArrival:
    """The guest a guest-session cookie names, while their visit is open."""
    return await _arrival(session, claims, invalid="No such guest.")


async def _arrival(
    session: AsyncSession, claims: GuestClaims | None, *, invalid: str
) -> GuestArrival:
    guest = await session.get(VisitGuest, claims.guest_id) if claims else None
    if claims is None or guest is None or guest.visit_id != claims.visit_id:
        raise NotFound(invalid)
    visit = await session.get(Visit, guest.visit_id)
    appointment = await session.get(Appointment, visit.appointment_id) if visit else None
    provider = await session.get(User, visit.provider_id) if visit else None
    assert visit is not None and appointment is not None and provider is not None
    if visit.ended_at is not None:
        raise LinkNotOpen(
            "This visit is over, so the link has expired.", fields={"link": "expired"}
        )
    if guest.revoked_at is not None:
        raise LinkNotOpen("The provider has withdrawn this invitation.", fields={"link": "removed"})
    return GuestArrival(guest, visit, appointment, provider)


def require_named(arrival: GuestArrival, claims: GuestClaims | None) -> None:
    """The caller is this guest (their session cookie) and has given their name."""
    if claims is None or claims.guest_id != arrival.guest.id or arrival.guest.name is None:
        raise NeedsStep("Please tell us your name first.", fields={"step": "name"})


async def give_name(session: AsyncSession, arrival: GuestArrival, name: str) -> None:
    if arrival.guest.admitted_at is not None and arrival.guest.name != name:
        raise Conflict("You are already in the visit under another name.")
    arrival.guest.name = name
    session.add(arrival.guest)
    await session.commit()


async def consent_document(session: AsyncSession, arrival: GuestArrival) -> ConsentDocument:
    """The same consent text the clinic's patients accept."""
    return await checkin.current_consent(session, arrival.visit.clinic_id)


async def accept_consent(session: AsyncSession, arrival: GuestArrival, *, version: int) -> None:
    document = await checkin.accepted_consent(session, arrival.visit.clinic_id, version)
    arrival.guest.consent_version = document.version
    arrival.guest.consent_accepted_at = utcnow()
    session.add(arrival.guest)
    await session.commit()


async def record_device_check(
    session: AsyncSession, arrival: GuestArrival, result: dict[str, object]
) -> None:
    arrival.guest.device_check = json.dumps(result, sort_keys=True)[:500]
    session.add(arrival.guest)
    await session.commit()


async def enter_waiting(session: AsyncSession, arrival: GuestArrival) -> None:
    if arrival.guest.consent_accepted_at is None:
        raise NeedsStep("Please accept the consent first.", fields={"step": "consent"})
    if arrival.guest.waiting_since is None:
        arrival.guest.waiting_since = utcnow()
        session.add(arrival.guest)
        await session.commit()


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


def progress(arrival: GuestArrival) -> dict[str, object]:
    """Where the guest is on their way in; the same shape as a patient's check-in progress."""
    guest = arrival.guest
    if guest.name is None:
        step = "name"
    elif guest.consent_accepted_at is None:
        step = "consent"
    elif guest.admitted_at is not None:
        step = "admitted"
    elif guest.waiting_since is not None:
        step = "waiting"
    else:
        step = "device_check"
    visit_id = arrival.visit.id if guest.admitted_at else None
    return checkin.progress(step, arrival.provider, arrival.appointment, visit_id)

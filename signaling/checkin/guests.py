"""A visit guest's way in: an interpreter or a family member the provider invited by link.

A guest names themself, accepts the clinic's consent (no date-of-birth check: they are not
the patient), checks their devices and waits until the provider lets them into the visit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.core.errors import Conflict, DomainError, NotFound
from app.core.models import User, utcnow
from app.web.identity import GuestClaims
from scheduling.models import Appointment
from signaling.checkin import service as checkin
from signaling.checkin.guest_tokens import read_guest_link
from signaling.checkin.service import LinkNotOpen, NeedsStep
from signaling.models import Visit, VisitGuest


@dataclass(frozen=True)
class GuestArrival:
    """What a guest link resolves to."""

    guest: VisitGuest
    visit: Visit
    appointment: Appointment
    provider: User


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


class GuestLinkInUse(DomainError):
    """A guest link opened in another browser than the one that took it."""

    status = 403
    code = "guest_link_in_use"


def require_same_browser(arrival: GuestArrival, claims: GuestClaims | None) -> None:
    """A guest link belongs to the first browser that gave a name with it (the guest session
    cookie it got): any other browser is refused, before or after the guest was admitted."""
    if arrival.guest.name is not None and (claims is None or claims.guest_id != arrival.guest.id):
        raise GuestLinkInUse(
            "This guest link is already in use in another browser. If you are the guest, "
            "open it in the browser you first used, or ask the provider for a new link."
        )


def require_named(arrival: GuestArrival, claims: GuestClaims | None) -> None:
    """The caller is this guest (their session cookie) and has given their name."""
    if claims is None or claims.guest_id != arrival.guest.id or arrival.guest.name is None:
        raise NeedsStep("Please tell us your name first.", fields={"step": "name"})


async def give_name(session: AsyncSession, arrival: GuestArrival, name: str) -> None:
    """The guest's name; the first one given binds the link to that browser (two browsers
    naming at once: only one wins)."""
    if arrival.guest.name is None:
        taken = await session.exec(
            update(VisitGuest)
            .where(col(VisitGuest.id) == arrival.guest.id)
            .where(col(VisitGuest.name).is_(None))
            .values(name=name)
        )
        await session.commit()
        if taken.rowcount != 1:
            raise GuestLinkInUse("This guest link has just been taken in another browser.")
        arrival.guest.name = name
        return
    if arrival.guest.admitted_at is not None and arrival.guest.name != name:
        raise Conflict("You are already in the visit under another name.")
    arrival.guest.name = name
    session.add(arrival.guest)
    await session.commit()


async def accept_consent(session: AsyncSession, arrival: GuestArrival, *, version: int) -> None:
    """The guest accepts the same consent text the clinic's patients accept."""
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


def progress(arrival: GuestArrival) -> dict[str, object]:
    """Where the guest is on their way in; the same shape as a patient's check-in progress."""
    guest = arrival.guest
    return checkin.progress(
        "name",
        guest.name is not None,
        consented=guest.consent_accepted_at is not None,
        waiting=guest.waiting_since is not None,
        visit_id=arrival.visit.id if guest.admitted_at else None,
        provider=arrival.provider,
        appointment=arrival.appointment,
    )

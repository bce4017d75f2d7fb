"""Join links: a signed token naming one appointment and its version.

Rescheduling or cancelling bumps the appointment's version, so every older link stops working.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.core import tokens
from app.core.config import Settings
from scheduling.models import Appointment, AppointmentStatus

JOIN_AUDIENCE = "openconsult:join"


def join_token(settings: Settings, appointment: Appointment) -> str:
    claims = {"sub": str(appointment.id), "ver": appointment.version}
    return tokens.sign(settings.secret, JOIN_AUDIENCE, claims)


def join_url(settings: Settings, appointment: Appointment) -> str:
    return f"{settings.base_url}/join/{join_token(settings, appointment)}"


@dataclass(frozen=True)
class JoinClaim:
    appointment_id: uuid.UUID
    version: int


def read_join_token(settings: Settings, token: str) -> JoinClaim | None:
    """The appointment a token names, or None when it is not one of ours."""
    return tokens.verify(
        settings.secret,
        token,
        audience=JOIN_AUDIENCE,
        required=("sub", "ver"),
        build=lambda c: JoinClaim(uuid.UUID(str(c["sub"])), int(c["ver"])),
    )


class LinkState(enum.StrEnum):
    OPEN = "open"
    TOO_EARLY = "too_early"
    EXPIRED = "expired"
    # The visit took place and the link's window has not closed: it shows the visit summary.
    VISIT_ENDED = "visit_ended"
    CANCELLED = "cancelled"
    REPLACED = "replaced"
    INVALID = "invalid"


def link_state(
    settings: Settings, appointment: Appointment | None, claim: JoinClaim | None, now: datetime
) -> LinkState:
    """Whether a link opens now, and if not, why."""
    if claim is None or appointment is None:
        return LinkState.INVALID
    if appointment.status == AppointmentStatus.CANCELLED:
        return LinkState.CANCELLED
    if claim.version != appointment.version:
        return LinkState.REPLACED
    if appointment.status == AppointmentStatus.NOSHOW:
        return LinkState.EXPIRED
    if now > closes_at(settings, appointment):
        return LinkState.EXPIRED
    if appointment.status == AppointmentStatus.FULFILLED:
        return LinkState.VISIT_ENDED
    if now < opens_at(settings, appointment):
        return LinkState.TOO_EARLY
    return LinkState.OPEN


def opens_at(settings: Settings, appointment: Appointment) -> datetime:
    return appointment.start_at - timedelta(minutes=settings.join_opens_minutes)


def closes_at(settings: Settings, appointment: Appointment) -> datetime:
    """When the link, and the patient session it gave, stop working (summary included)."""
    return appointment.start_at + timedelta(minutes=settings.join_closes_minutes)

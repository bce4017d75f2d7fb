"""Guest links and guest sessions: signed tokens naming one guest of one visit.

A token alone never lets anyone in: the guest row must still stand (not removed) and the visit
must still be open, so ending the visit or removing the guest ends every token at once. The
session is read by the web plumbing (`app.web.identity.guest_session`); the link only here.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from app.core import tokens
from app.core.config import Settings
from app.web.identity import GUEST_SESSION_AUDIENCE, GuestClaims, read_guest_token
from scheduling.models import Appointment

GUEST_LINK_AUDIENCE = "openconsult:guest-link"


def guest_expiry(settings: Settings, appointment: Appointment) -> datetime:
    """Guests' tokens stop working when the patient's join link does."""
    return appointment.start_at + timedelta(minutes=settings.join_closes_minutes)


def _encode(
    settings: Settings, audience: str, guest_id: uuid.UUID, visit_id: uuid.UUID, expires: datetime
) -> str:
    claims = {"sub": str(guest_id), "vis": str(visit_id), "exp": int(expires.timestamp())}
    return tokens.sign(settings.secret, audience, claims)


def guest_link_token(
    settings: Settings, guest_id: uuid.UUID, visit_id: uuid.UUID, expires: datetime
) -> str:
    return _encode(settings, GUEST_LINK_AUDIENCE, guest_id, visit_id, expires)


def read_guest_link(settings: Settings, token: str) -> GuestClaims | None:
    return read_guest_token(settings, token, audience=GUEST_LINK_AUDIENCE)


def issue_guest_session(
    settings: Settings, guest_id: uuid.UUID, visit_id: uuid.UUID, expires: datetime
) -> str:
    return _encode(settings, GUEST_SESSION_AUDIENCE, guest_id, visit_id, expires)

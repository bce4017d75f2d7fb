"""Guest links and guest sessions: signed tokens naming one guest of one visit.

A token alone never lets anyone in: the guest row must still stand (not removed) and the visit
must still be open, so ending the visit or removing the guest ends every token at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from app.core import tokens
from app.core.config import Settings
from scheduling.models import Appointment

GUEST_COOKIE = "oc_guest"
GUEST_LINK_AUDIENCE = "openconsult:guest-link"
GUEST_SESSION_AUDIENCE = "openconsult:guest"


@dataclass(frozen=True)
class GuestClaims:
    guest_id: uuid.UUID
    visit_id: uuid.UUID


def guest_expiry(settings: Settings, appointment: Appointment) -> datetime:
    """Guests' tokens stop working when the patient's join link does."""
    return appointment.start_at + timedelta(minutes=settings.join_closes_minutes)


def _encode(
    settings: Settings, audience: str, guest_id: uuid.UUID, visit_id: uuid.UUID, expires: datetime
) -> str:
    claims = {"sub": str(guest_id), "vis": str(visit_id), "exp": int(expires.timestamp())}
    return tokens.sign(settings.secret, audience, claims)


def _decode(settings: Settings, audience: str, token: str | None) -> GuestClaims | None:
    return tokens.verify(
        settings.secret,
        token,
        audience=audience,
        required=("sub", "vis", "exp"),
        build=lambda c: GuestClaims(uuid.UUID(str(c["sub"])), uuid.UUID(str(c["vis"]))),
    )


def guest_link_token(
    settings: Settings, guest_id: uuid.UUID, visit_id: uuid.UUID, expires: datetime
) -> str:
    return _encode(settings, GUEST_LINK_AUDIENCE, guest_id, visit_id, expires)


def read_guest_link(settings: Settings, token: str) -> GuestClaims | None:
    return _decode(settings, GUEST_LINK_AUDIENCE, token)


def issue_guest_session(
    settings: Settings, guest_id: uuid.UUID, visit_id: uuid.UUID, expires: datetime
) -> str:
    return _encode(settings, GUEST_SESSION_AUDIENCE, guest_id, visit_id, expires)


def read_guest_session(settings: Settings, token: str | None) -> GuestClaims | None:
    return _decode(settings, GUEST_SESSION_AUDIENCE, token)


def set_guest_cookie(response: web.StreamResponse, settings: Settings, token: str) -> None:
    response.set_cookie(
        GUEST_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=settings.secure_cookies,
        path="/",
        max_age=24 * 3600,
    )

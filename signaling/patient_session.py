"""A patient's session after confirming their identity: a cookie bound to one appointment."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import jwt
from aiohttp import web

from app.core.config import Settings
from scheduling.links import closes_at
from scheduling.models import Appointment

PATIENT_COOKIE = "oc_patient"
PATIENT_AUDIENCE = "openconsult:patient"
_ISSUER = "openconsult"
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class PatientClaims:
    appointment_id: uuid.UUID
    version: int


def issue_patient_token(settings: Settings, appointment: Appointment) -> str:
    """Valid until the join link closes; a reschedule or cancel (new version) ends it."""
    expires = closes_at(settings, appointment)
    claims = {
        "aud": PATIENT_AUDIENCE,
        "iss": _ISSUER,
        "sub": str(appointment.id),
        "ver": appointment.version,
        "exp": int(expires.timestamp()),
    }
    return jwt.encode(claims, settings.secret, algorithm=_ALGORITHM)


def read_patient_token(settings: Settings, token: str | None) -> PatientClaims | None:
    if not token:
        return None
    try:
        claims = jwt.decode(
            token,
            settings.secret,
            algorithms=[_ALGORITHM],
            audience=PATIENT_AUDIENCE,
            issuer=_ISSUER,
            options={"require": ["aud", "iss", "sub", "ver", "exp"]},
        )
        return PatientClaims(uuid.UUID(str(claims["sub"])), int(claims["ver"]))
    except (jwt.PyJWTError, ValueError, TypeError):
        return None


def set_patient_cookie(response: web.StreamResponse, settings: Settings, token: str) -> None:
    response.set_cookie(
        PATIENT_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=settings.secure_cookies,
        path="/",
        max_age=24 * 3600,
    )

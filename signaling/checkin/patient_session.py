"""A patient's session after confirming their identity: a cookie bound to one appointment."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from aiohttp import web

from app.core import tokens
from app.core.config import Settings
from scheduling.links import closes_at
from scheduling.models import Appointment

PATIENT_COOKIE = "oc_patient"
PATIENT_AUDIENCE = "openconsult:patient"


@dataclass(frozen=True)
class PatientClaims:
    appointment_id: uuid.UUID
    version: int


def issue_patient_token(settings: Settings, appointment: Appointment) -> str:
    """Valid until the join link closes; a reschedule or cancel (new version) ends it."""
    expires = closes_at(settings, appointment)
    claims = {
        "sub": str(appointment.id),
        "ver": appointment.version,
        "exp": int(expires.timestamp()),
    }
    return tokens.sign(settings.secret, PATIENT_AUDIENCE, claims)


def read_patient_token(settings: Settings, token: str | None) -> PatientClaims | None:
    return tokens.verify(
        settings.secret,
        token,
        audience=PATIENT_AUDIENCE,
        required=("sub", "ver", "exp"),
        build=lambda c: PatientClaims(uuid.UUID(str(c["sub"])), int(c["ver"])),
    )


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

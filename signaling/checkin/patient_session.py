"""Issuing a patient's session once they confirmed their identity: bound to one appointment.

Reading it is the web plumbing's (`app.web.identity.patient_session`): every domain reads it.
"""

from __future__ import annotations

from app.core import tokens
from app.core.config import Settings
from app.web.identity import PATIENT_AUDIENCE
from scheduling.links import closes_at
from scheduling.models import Appointment


def issue_patient_token(settings: Settings, appointment: Appointment) -> str:
    """Valid until the join link closes; a reschedule or cancel (new version) ends it."""
    expires = closes_at(settings, appointment)
    claims = {
        "sub": str(appointment.id),
        "ver": appointment.version,
        "exp": int(expires.timestamp()),
    }
    return tokens.sign(settings.secret, PATIENT_AUDIENCE, claims)

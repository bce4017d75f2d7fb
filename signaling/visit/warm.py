"""A waiting patient's warm connection: their peer connection to the relay, made while they wait.

The waiting page opens the visit socket in waiting mode and negotiates with the relay, which
keeps the connection in a room of its own (ICE and DTLS done, nothing routed). When the provider
admits the patient, the page asks to enter the visit; the relay moves the same connection into
the visit's room, and media flows without a new offer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Conflict
from app.core.models import Patient
from app.web.identity import PatientClaims
from scheduling.models import Appointment
from signaling.models import CheckIn
from signaling.visit import service as visits


class NotWaiting(Conflict):
    code = "not_waiting"


@dataclass(frozen=True)
class WaitingSeat:
    """A patient in the waiting room holding a warm connection (no visit yet)."""

    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    request: web.Request

    @property
    def participant_id(self) -> str:
        """The same relay id the patient has in the visit (visits.Attendee.participant_id)."""
        return f"{visits.PATIENT}:{self.patient_id}"

    @property
    def lobby(self) -> str:
        """The relay room the connection waits in, alone: nothing is ever routed there."""
        return f"waiting:{self.appointment_id}"


async def waiting_patient(
    session: AsyncSession, claims: PatientClaims | None
) -> tuple[Appointment, Patient]:
    """The appointment and patient of a session that has checked in and waits (or was admitted)."""
    if claims is None:
        raise NotWaiting("Please check in first.")
    appointment = await session.get(Appointment, claims.appointment_id)
    check_in = await session.get(CheckIn, claims.appointment_id)
    if (
        appointment is None
        or appointment.version != claims.version
        or check_in is None
        or check_in.consent_id is None
        or check_in.waiting_since is None
    ):
        raise NotWaiting("Please check in first.")
    patient = await session.get(Patient, appointment.patient_id)
    if patient is None:
        raise NotWaiting("Please check in first.")
    return appointment, patient

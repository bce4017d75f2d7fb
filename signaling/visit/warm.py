"""Warm connections: a peer connection to the relay, made before there is a visit to join.

A waiting patient's page opens the visit socket in waiting mode and negotiates with the relay,
which keeps the connection in a room of its own (ICE and DTLS done, nothing routed). The
provider's queue page does the same in the provider's own lobby. At the admit, each page asks to
enter the visit; the relay moves the same connection into the visit's room, and media flows
without a new offer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Conflict
from app.core.models import Patient, Role
from app.web.identity import PatientClaims, Staff
from scheduling.models import Appointment
from signaling.models import CheckIn
from signaling.visit import service as visits


class NotWaiting(Conflict):
    code = "not_waiting"


class NotAProvider(Conflict):
    code = "not_a_provider"


@dataclass(frozen=True)
class WaitingSeat:
    """Someone holding a warm connection before their visit: a waiting patient, or a provider
    with their queue open. `lobby` is the relay room the connection waits in, alone: nothing is
    ever routed there. `limits_key` counts the seat's offers (offer_limits)."""

    role: str
    person_id: uuid.UUID
    lobby: str
    limits_key: uuid.UUID
    request: web.Request

    @property
    def participant_id(self) -> str:
        """The same relay id the person has in the visit (visits.Attendee.participant_id)."""
        return f"{self.role}:{self.person_id}"

    @property
    def turn_user(self) -> str:
        """As visits.Attendee.turn_user: the same TURN username in the lobby and the visit."""
        return self.person_id.hex


def patient_seat(
    appointment_id: uuid.UUID, patient_id: uuid.UUID, request: web.Request
) -> WaitingSeat:
    """A checked-in patient in the waiting room of one appointment."""
    return WaitingSeat(
        visits.PATIENT, patient_id, f"waiting:{appointment_id}", appointment_id, request
    )


def provider_seat(staff: Staff | None, request: web.Request) -> WaitingSeat:
    """A provider with their queue open: one lobby per provider, whatever the tab."""
    if staff is None or staff.role != Role.PROVIDER:
        raise NotAProvider("Only a provider's queue holds a warm connection.")
    return WaitingSeat(visits.PROVIDER, staff.id, f"provider:{staff.id}", staff.id, request)


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

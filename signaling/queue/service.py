"""The live clinic queue: today's patients, their states, and the admit and message actions."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Conflict, NotFound
from app.core.models import Patient, User, utcnow
from scheduling import availability
from scheduling.models import Appointment, AppointmentStatus, AppointmentType
from signaling.models import CheckIn, Visit, VisitGuest, WaitingMessage
from signaling.queue.places import QueuePlace, WaitingPatient, queue_places
from signaling.queue.presence import Presence, PresenceStore

NOT_ARRIVED = "not arrived"
CHECKING_IN = "checking in"
WAITING = "waiting"
AWAY = "away"
IN_VISIT = "in visit"
DONE = "done"
NO_SHOW = "no-show"
LINK_LOCKED = "link locked"


def presence_key(appointment_id: uuid.UUID) -> str:
    return f"appointment:{appointment_id}"


@dataclass(frozen=True)
class QueueRow:
    appointment_id: uuid.UUID
    patient_name: str
    start_at: datetime
    end_at: datetime
    status: str
    waiting_since: datetime | None
    device_check: dict[str, object] | None
    visit_id: uuid.UUID | None
    place: QueuePlace | None
    guests_waiting: tuple[str, ...] = ()

    def public(self, now: datetime) -> dict[str, object]:
        waited = (now - self.waiting_since) if self.waiting_since else None
        return {
            "appointment_id": str(self.appointment_id),
            "patient_name": self.patient_name,
            "start_at": self.start_at.isoformat(),
            "end_at": self.end_at.isoformat(),
            "status": self.status,
            "minutes_waited": int(waited.total_seconds() // 60) if waited else None,
            "device_check": self.device_check,
            "visit_id": str(self.visit_id) if self.visit_id else None,
            "position": self.place.position if self.place else None,
            "expected_start": self.place.expected_start.isoformat() if self.place else None,
            "guests_waiting": list(self.guests_waiting),
        }


@dataclass(frozen=True)
class ProviderQueue:
    provider_id: uuid.UUID
    provider_name: str
    clinic_id: uuid.UUID
    timezone: str
    rows: list[QueueRow]

    def public(self, now: datetime) -> dict[str, object]:
        return {
            "provider_id": str(self.provider_id),
            "provider_name": self.provider_name,
            "timezone": self.timezone,
            "generated_at": now.isoformat(),
            "patients": [row.public(now) for row in self.rows],
        }


def _status(appointment: Appointment, check_in: CheckIn | None, presence: Presence) -> str:
    if appointment.status == AppointmentStatus.NOSHOW:
        return NO_SHOW
    if appointment.status == AppointmentStatus.FULFILLED:
        return DONE
    if check_in is None:
        return NOT_ARRIVED
    if check_in.visit_id is not None:
        return IN_VISIT
    if check_in.locks(appointment.version):
        return LINK_LOCKED
    if check_in.waiting_since is not None:
        return WAITING if presence is Presence.ONLINE else AWAY
    if check_in.identity_verified_at is not None:
        return CHECKING_IN
    return NOT_ARRIVED


async def provider_queue(
    session: AsyncSession,
    presence: PresenceStore,
    provider: User,
    *,
    now: datetime | None = None,
) -> ProviderQueue:
    """Today's appointments of one provider (their local day), in order, with live states."""
    now = now or utcnow()
    schedule = await availability.find_schedule(session, provider.id)
    zone = schedule.timezone if schedule else "UTC"
    local = now.astimezone(ZoneInfo(zone))
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    day_end = day_start + timedelta(days=1)
    query = (
        select(Appointment, Patient, AppointmentType, CheckIn)
        .join(Patient, col(Patient.id) == Appointment.patient_id)
        .join(AppointmentType, col(AppointmentType.id) == Appointment.appointment_type_id)
        .outerjoin(CheckIn, col(CheckIn.appointment_id) == Appointment.id)
        .where(
            Appointment.provider_id == provider.id,
            col(Appointment.start_at) >= day_start,
            col(Appointment.start_at) < day_end,
            Appointment.status != AppointmentStatus.CANCELLED,
        )
        .order_by(col(Appointment.start_at))
    )
    rows = (await session.exec(query)).all()
    states = {}
    waiting = []
    busy_until: datetime | None = None
    for appointment, _patient, kind, check_in in rows:
        state = (await presence.state(presence_key(appointment.id))).presence
        states[appointment.id] = state
        if check_in is not None and check_in.visit_id is not None:
            busy_until = max(busy_until or now, appointment.end_at)
        elif check_in is not None and check_in.waiting_since is not None:
            waiting.append(
                WaitingPatient(
                    appointment_id=appointment.id,
                    scheduled_start=appointment.start_at,
                    duration=timedelta(minutes=kind.duration_minutes),
                    checked_in_at=check_in.waiting_since,
                )
            )
    places = {
        p.appointment_id: p for p in queue_places(waiting, now=now, provider_free_at=busy_until)
    }
    guests = await _waiting_guests(
        session, [c.visit_id for _, _, _, c in rows if c is not None and c.visit_id is not None]
    )
    queue_rows = [
        QueueRow(
            appointment_id=appointment.id,
            patient_name=f"{patient.given_name} {patient.family_name}",
            start_at=appointment.start_at,
            end_at=appointment.end_at,
            status=_status(appointment, check_in, states[appointment.id]),
            waiting_since=check_in.waiting_since if check_in else None,
            device_check=json.loads(check_in.device_check)
            if check_in and check_in.device_check
            else None,
            visit_id=check_in.visit_id if check_in else None,
            place=places.get(appointment.id),
            guests_waiting=tuple(guests.get(check_in.visit_id, ())) if check_in else (),
        )
        for appointment, patient, _kind, check_in in rows
    ]
    return ProviderQueue(provider.id, provider.full_name, provider.clinic_id, zone, queue_rows)


async def _waiting_guests(
    session: AsyncSession, visit_ids: list[uuid.UUID]
) -> dict[uuid.UUID | None, list[str]]:
    """Guests who wait to be let into these visits, as "Name (label)", by visit."""
    if not visit_ids:
        return {}
    query = select(VisitGuest).where(
        col(VisitGuest.visit_id).in_(visit_ids),
        col(VisitGuest.waiting_since).is_not(None),
        col(VisitGuest.admitted_at).is_(None),
        col(VisitGuest.revoked_at).is_(None),
    )
    found: dict[uuid.UUID | None, list[str]] = {}
    for guest in (await session.exec(query)).all():
        found.setdefault(guest.visit_id, []).append(f"{guest.name} ({guest.label})")
    return found


async def own_check_in(
    session: AsyncSession, provider: User, appointment_id: uuid.UUID
) -> tuple[Appointment, CheckIn]:
    """A check-in of one of this provider's appointments; anyone else's is not found."""
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None or appointment.provider_id != provider.id:
        raise NotFound("No such patient in your queue.")
    check_in = await session.get(CheckIn, appointment_id)
    if check_in is None or check_in.waiting_since is None:
        raise Conflict(
            "This patient is not in the waiting room.", fields={"appointment_id": "not waiting"}
        )
    return appointment, check_in


async def admit(session: AsyncSession, provider: User, appointment_id: uuid.UUID) -> Visit:
    """Start the visit for a waiting patient; admitting twice hands back the same visit."""
    appointment, check_in = await own_check_in(session, provider, appointment_id)
    if check_in.visit_id is not None:
        visit = await session.get(Visit, check_in.visit_id)
        assert visit is not None
        return visit
    visit = Visit(
        appointment_id=appointment.id,
        clinic_id=appointment.clinic_id,
        provider_id=provider.id,
        patient_id=appointment.patient_id,
    )
    session.add(visit)
    await session.flush()
    check_in.visit_id = visit.id
    check_in.admitted_at = utcnow()
    check_in.updated_at = utcnow()
    session.add(check_in)
    await session.commit()
    return visit


async def send_message(
    session: AsyncSession, provider: User, appointment_id: uuid.UUID, text: str
) -> WaitingMessage:
    appointment, _ = await own_check_in(session, provider, appointment_id)
    message = WaitingMessage(appointment_id=appointment.id, author_id=provider.id, text=text)
    session.add(message)
    await session.commit()
    return message


async def clinic_providers(session: AsyncSession, clinic_id: uuid.UUID) -> list[User]:
    return await availability.list_providers(session, clinic_id=clinic_id)

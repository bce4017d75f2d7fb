"""On-demand rules: the clinic's walk-in queue, its providers, and a walk-in becoming a visit.

A walk-in is an appointment like any other (`on_demand`), starting when the patient arrives and
blocking no calendar time. It waits under a provider of the queue (the first, by name) until one
of them takes it; the queue shows it to every provider of the queue meanwhile.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Conflict, DomainError, InvalidInput, NotFound
from app.core.models import Clinic, Patient, Role, User, utcnow
from scheduling.links import link_code
from scheduling.models import Appointment, AppointmentStatus, AppointmentType
from signaling.checkin.service import PATIENT, REASON, store_waiting_message
from signaling.models import CheckIn
from signaling.ondemand.hours import OpenHours, is_open, next_opening, opening_text
from signaling.ondemand.models import OnDemandProvider, OnDemandQueue, OnDemandRequest
from signaling.ondemand.records import WalkInDetails, contact_of, match_patient

CODE = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
# A request is open until its visit ends or it is cancelled or closed as a no-show.
OPEN_STATUSES = (
    AppointmentStatus.BOOKED,
    AppointmentStatus.ARRIVED,
    AppointmentStatus.CHECKED_IN,
)
NEXT_AVAILABLE = "the next available provider"


class QueueClosed(DomainError):
    status = 409
    code = "on_demand_closed"


class TooManyOpen(DomainError):
    status = 429
    code = "too_many_open_requests"


@dataclass(frozen=True)
class QueueSettings:
    """What an admin sets: the link's code, open or not, hours, visit type, providers."""

    code: str
    enabled: bool
    hours: list[OpenHours]
    appointment_type_id: uuid.UUID
    provider_ids: list[uuid.UUID]


def read_hours(text: str) -> list[OpenHours]:
    return [
        OpenHours(int(h["weekday"]), time.fromisoformat(h["start"]), time.fromisoformat(h["end"]))
        for h in json.loads(text)
    ]


async def queue_of(session: AsyncSession, clinic_id: uuid.UUID) -> OnDemandQueue | None:
    return await session.get(OnDemandQueue, clinic_id)


async def providers_of(session: AsyncSession, clinic_id: uuid.UUID) -> list[User]:
    """The active providers who take walk-ins at this clinic, by name."""
    query = (
        select(User)
        .join(OnDemandProvider, col(OnDemandProvider.provider_id) == User.id)
        .where(OnDemandProvider.clinic_id == clinic_id, col(User.is_active).is_(True))
        .order_by(col(User.full_name), col(User.id))
    )
    return list((await session.exec(query)).all())


async def pool_of_provider(session: AsyncSession, provider_id: uuid.UUID) -> list[uuid.UUID]:
    """Every provider of the walk-in queue this provider takes from (empty when none)."""
    mine = (
        await session.exec(
            select(OnDemandProvider.clinic_id).where(OnDemandProvider.provider_id == provider_id)
        )
    ).first()
    if mine is None:
        return []
    return [p.id for p in await providers_of(session, mine)]


async def settings_public(
    session: AsyncSession, clinic: Clinic, base_url: str
) -> dict[str, object]:
    queue = await queue_of(session, clinic.id)
    providers = await providers_of(session, clinic.id) if queue else []
    if queue is None:
        return {
            "configured": False,
            "code": None,
            "link": None,
            "enabled": False,
            "timezone": clinic.timezone,
            "hours": [],
            "appointment_type_id": None,
            "provider_ids": [],
            "open_now": False,
        }
    hours = read_hours(queue.hours)
    return {
        "configured": True,
        "code": queue.code,
        "link": f"{base_url}/walk-in/{queue.code}",
        "enabled": queue.enabled,
        "timezone": clinic.timezone,
        "hours": [h.public() for h in hours],
        "appointment_type_id": str(queue.appointment_type_id),
        "provider_ids": [str(p.id) for p in providers],
        "open_now": queue.enabled and is_open(hours, clinic.timezone, utcnow()),
    }


async def configure(session: AsyncSession, clinic: Clinic, wanted: QueueSettings) -> None:
    """Replace the clinic's walk-in queue settings; every provider and the type must be its own."""
    if not CODE.match(wanted.code):
        raise InvalidInput(
            "The link's code is 3 to 63 lower-case letters, digits or dashes.",
            fields={"code": "invalid"},
        )
    kind = await session.get(AppointmentType, wanted.appointment_type_id)
    if kind is None or kind.clinic_id != clinic.id:
        raise InvalidInput(
            "No such visit type in your clinic.", fields={"appointment_type_id": "not found"}
        )
    providers = []
    for provider_id in dict.fromkeys(wanted.provider_ids):
        user = await session.get(User, provider_id)
        if user is None or user.clinic_id != clinic.id or user.role != Role.PROVIDER:
            raise InvalidInput(
                "Each one must be a provider of your clinic.",
                fields={"provider_ids": f"{provider_id} is not a provider of your clinic"},
            )
        providers.append(user)
    if wanted.enabled and not providers:
        raise InvalidInput(
            "An open walk-in queue needs at least one provider.",
            fields={"provider_ids": "empty"},
        )
    taken = (
        await session.exec(select(OnDemandQueue).where(OnDemandQueue.code == wanted.code))
    ).first()
    if taken is not None and taken.clinic_id != clinic.id:
        raise Conflict("This code is in use; choose another.", fields={"code": "in use"})
    queue = await queue_of(session, clinic.id) or OnDemandQueue(
        clinic_id=clinic.id, code=wanted.code, appointment_type_id=kind.id
    )
    queue.code = wanted.code
    queue.enabled = wanted.enabled
    queue.hours = json.dumps([h.public() for h in wanted.hours])
    queue.appointment_type_id = kind.id
    queue.updated_at = utcnow()
    session.add(queue)
    await session.exec(
        sa.delete(OnDemandProvider).where(col(OnDemandProvider.clinic_id) == clinic.id)
    )
    for user in providers:
        session.add(OnDemandProvider(clinic_id=clinic.id, provider_id=user.id))
    try:
        await session.commit()
    except sa.exc.IntegrityError:
        await session.rollback()
        raise Conflict("This code is in use; choose another.", fields={"code": "in use"}) from None


@dataclass(frozen=True)
class PublicQueue:
    queue: OnDemandQueue
    clinic: Clinic
    hours: list[OpenHours]

    def open_now(self, now: datetime) -> bool:
        return self.queue.enabled and is_open(self.hours, self.clinic.timezone, now)

    def public(self, now: datetime) -> dict[str, object]:
        """What the walk-in page says: the clinic, open or not, and when it opens next."""
        opens = next_opening(self.hours, self.clinic.timezone, now) if self.queue.enabled else None
        open_now = self.open_now(now)
        return {
            "clinic_name": self.clinic.name,
            "clinic_phone": self.clinic.phone,
            "timezone": self.clinic.timezone,
            "open": open_now,
            "opens_at": None if open_now or opens is None else opens.isoformat(),
            "opens_text": None
            if open_now
            else (
                opening_text(opens, self.clinic.timezone, now)
                if opens
                else "Walk-in visits are not offered at the moment."
            ),
        }


async def public_queue(session: AsyncSession, code: str) -> PublicQueue:
    """The walk-in queue behind a public link (one that was never set up is not found)."""
    queue = (
        (await session.exec(select(OnDemandQueue).where(OnDemandQueue.code == code))).first()
        if CODE.match(code)
        else None
    )
    if queue is None:
        raise NotFound("This walk-in link is not valid.")
    clinic = await session.get(Clinic, queue.clinic_id)
    assert clinic is not None
    return PublicQueue(queue, clinic, read_hours(queue.hours))


async def open_requests(
    session: AsyncSession, clinic_id: uuid.UUID, contact: str, *, since: datetime
) -> int:
    """Walk-ins under this contact since `since` (when a link from then would still work) whose
    visit has not ended: checking in, waiting or in the visit."""
    query = (
        select(sa.func.count())
        .select_from(OnDemandRequest)
        .join(Appointment, col(Appointment.id) == OnDemandRequest.appointment_id)
        .where(
            OnDemandRequest.clinic_id == clinic_id,
            OnDemandRequest.contact == contact,
            col(Appointment.status).in_(OPEN_STATUSES),
            col(OnDemandRequest.arrived_at) > since,
        )
    )
    return int((await session.exec(query)).one())


@dataclass(frozen=True)
class WalkIn:
    appointment: Appointment
    patient: Patient
    match: str
    code: str


async def request_visit(
    session: AsyncSession,
    public: PublicQueue,
    details: WalkInDetails,
    *,
    client_addr: str | None,
    max_open_per_contact: int,
    link_minutes: int,
    now: datetime | None = None,
) -> WalkIn:
    """A walk-in from the public link: the record matched or made, an appointment starting now
    with the identity confirmed (they just gave it), the reason kept, and a join link code."""
    now = now or utcnow()
    if not public.open_now(now):
        said = public.public(now)
        raise QueueClosed(
            f"Walk-in visits are closed now. {said['opens_text']}",
            detail={"opens_at": said["opens_at"], "timezone": public.clinic.timezone},
        )
    clinic_id = public.clinic.id
    contact = contact_of(details)
    since = now - timedelta(minutes=link_minutes)
    if await open_requests(session, clinic_id, contact, since=since) >= max_open_per_contact:
        raise TooManyOpen(
            "You already have a walk-in request open; please use the page you were given, or "
            "call the clinic.",
            fields={"contact": "has an open request"},
        )
    providers = await providers_of(session, clinic_id)
    if not providers:
        raise QueueClosed("No provider takes walk-in visits now; please call the clinic.")
    kind = await session.get(AppointmentType, public.queue.appointment_type_id)
    assert kind is not None
    patient, match = await match_patient(session, clinic_id, details)
    start = now.replace(microsecond=0)
    appointment = Appointment(
        clinic_id=clinic_id,
        provider_id=providers[0].id,
        patient_id=patient.id,
        appointment_type_id=kind.id,
        start_at=start,
        end_at=start + timedelta(minutes=kind.duration_minutes),
        busy_until=start,
        status=AppointmentStatus.ARRIVED,
        on_demand=True,
    )
    session.add(appointment)
    await session.flush()
    session.add(
        OnDemandRequest(
            appointment_id=appointment.id,
            clinic_id=clinic_id,
            contact=contact,
            arrived_at=now,
            client_addr=client_addr,
        )
    )
    session.add(
        CheckIn(
            appointment_id=appointment.id,
            clinic_id=clinic_id,
            provider_id=appointment.provider_id,
            patient_id=patient.id,
            identity_verified_at=now,
        )
    )
    code = await link_code(session, appointment)
    await session.commit()
    await store_waiting_message(
        session, appointment.id, details.reason, sender=PATIENT, kind=REASON
    )
    return WalkIn(appointment, patient, match, code)


async def untaken(session: AsyncSession, appointment: Appointment) -> OnDemandRequest | None:
    """The walk-in request of this appointment while no provider has taken it."""
    if not appointment.on_demand:
        return None
    request = await session.get(OnDemandRequest, appointment.id)
    return request if request is not None and request.taken_at is None else None


async def may_take(session: AsyncSession, provider: User, appointment: Appointment) -> bool:
    """Whether this provider may take this walk-in: it is untaken, and they take walk-ins."""
    if appointment.clinic_id != provider.clinic_id or await untaken(session, appointment) is None:
        return False
    return provider.id in await pool_of_provider(session, provider.id)


async def take(
    session: AsyncSession, provider: User, appointment: Appointment, check_in: CheckIn
) -> None:
    """A provider of the walk-in queue takes this walk-in: it becomes their appointment.

    Two providers taking at once: one conditional update wins, the other is told.
    """
    if not await may_take(session, provider, appointment):
        raise NotFound("No such patient in your queue.")
    now = utcnow()
    taken = await session.exec(
        sa.update(OnDemandRequest)
        .where(
            col(OnDemandRequest.appointment_id) == appointment.id,
            col(OnDemandRequest.taken_at).is_(None),
        )
        .values(taken_by=provider.id, taken_at=now)
    )
    if taken.rowcount != 1:
        raise Conflict(
            "Another provider has taken this patient.", fields={"appointment_id": "taken"}
        )
    appointment.provider_id = provider.id
    appointment.updated_at = now
    session.add(appointment)
    check_in.provider_id = provider.id
    session.add(check_in)


async def next_walk_in(session: AsyncSession, clinic_id: uuid.UUID) -> uuid.UUID | None:
    """The walk-in who arrived first among those waiting and not taken."""
    query = (
        select(OnDemandRequest.appointment_id)
        .join(CheckIn, col(CheckIn.appointment_id) == OnDemandRequest.appointment_id)
        .where(
            OnDemandRequest.clinic_id == clinic_id,
            col(OnDemandRequest.taken_at).is_(None),
            col(CheckIn.waiting_since).is_not(None),
            col(CheckIn.visit_id).is_(None),
        )
        .order_by(col(OnDemandRequest.arrived_at), col(OnDemandRequest.appointment_id))
        .limit(1)
    )
    return (await session.exec(query)).first()

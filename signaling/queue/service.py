"""The live clinic queue: today's patients, their states, and the admit and message actions."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Conflict, NotFound
from app.core.models import Patient, User, utcnow
from app.intake import service as intake
from scheduling import availability
from scheduling.models import Appointment, AppointmentStatus, AppointmentType
from signaling.checkin.service import (
    CLINIC,
    conversations_for,
    reasons_for,
    store_waiting_message,
)
from signaling.models import CheckIn, ProviderDelay, Visit, VisitGuest, WaitingMessage
from signaling.ondemand import service as ondemand
from signaling.ondemand.models import OnDemandRequest
from signaling.queue.chart import age_on, record_url
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
MAX_DELAY_MINUTES = 180
SHOWN_MESSAGES = 3  # the latest lines of each waiting room, in the provider's queue


def presence_key(appointment_id: uuid.UUID) -> str:
    return f"appointment:{appointment_id}"


@dataclass(frozen=True)
class QueueRow:
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    age: int
    start_at: datetime
    end_at: datetime
    status: str
    waiting_since: datetime | None
    device_check: dict[str, object] | None
    visit_id: uuid.UUID | None
    place: QueuePlace | None
    guests_waiting: tuple[str, ...] = ()
    reason: str | None = None
    messages: tuple[WaitingMessage, ...] = ()
    #: Red-flag cards from the patient's intake answers (CDS Hooks shape, critical first).
    cards: tuple[dict[str, object], ...] = ()
    #: A walk-in from the clinic's on-demand queue (not taken yet when `untaken`).
    on_demand: bool = False
    untaken: bool = False

    def public(
        self, now: datetime, chart: dict[uuid.UUID, datetime] | None = None
    ) -> dict[str, object]:
        """What every watcher sees; with `chart` (for the record's readers) the chart facts too."""
        waited = (now - self.waiting_since) if self.waiting_since else None
        shown: dict[str, object] = {
            "appointment_id": str(self.appointment_id),
            "patient_name": self.patient_name,
            "start_at": self.start_at.isoformat(),
            "end_at": self.end_at.isoformat(),
            "status": self.status,
            "waiting_since": self.waiting_since.isoformat() if self.waiting_since else None,
            "minutes_waited": int(waited.total_seconds() // 60) if waited else None,
            "device_check": self.device_check,
            "visit_id": str(self.visit_id) if self.visit_id else None,
            "position": self.place.position if self.place else None,
            "expected_start": self.place.expected_start.isoformat() if self.place else None,
            "guests_waiting": list(self.guests_waiting),
            "on_demand": self.on_demand,
        }
        if chart is not None:
            shown["chart"] = self.chart_part(chart)
        return shown

    def chart_part(self, chart: dict[uuid.UUID, datetime]) -> dict[str, object]:
        """The chart facts the record's readers see of this row."""
        last_note = chart.get(self.patient_id)
        return {
            "record_url": record_url(self.patient_id),
            "age": self.age,
            "reason": self.reason,
            "last_signed_note_at": last_note.isoformat() if last_note else None,
            "cards": list(self.cards),
            "messages": [
                {"sender": m.sender, "text": m.text, "sent_at": m.sent_at.isoformat()}
                for m in self.messages[-SHOWN_MESSAGES:]
            ],
        }


@dataclass(frozen=True)
class ProviderQueue:
    provider_id: uuid.UUID
    provider_name: str
    clinic_id: uuid.UUID
    timezone: str
    rows: list[QueueRow]
    delay_minutes: int = 0
    in_visit: bool = False

    def public(
        self, now: datetime, chart: dict[uuid.UUID, datetime] | None = None
    ) -> dict[str, object]:
        return self._with_rows(now, [row.public(now, chart) for row in self.rows])

    def public_pair(
        self, now: datetime, chart: dict[uuid.UUID, datetime]
    ) -> tuple[dict[str, object], dict[str, object]]:
        """`public(now, chart)` and `public(now)` together, each row's shared part built once
        (a thousand rows: the staff queue's send takes less of the loop the places share)."""
        rows = [row.public(now) for row in self.rows]
        plain = self._with_rows(now, rows)
        readers = self._with_rows(
            now,
            [
                shown | {"chart": row.chart_part(chart)}
                for row, shown in zip(self.rows, rows, strict=True)
            ],
        )
        return readers, plain

    def _with_rows(self, now: datetime, rows: list[dict[str, object]]) -> dict[str, object]:
        return {
            "provider_id": str(self.provider_id),
            "provider_name": self.provider_name,
            "timezone": self.timezone,
            "generated_at": now.isoformat(),
            "delay_minutes": self.delay_minutes,
            "in_visit": self.in_visit,
            "patients": rows,
        }

    @property
    def patient_ids(self) -> list[uuid.UUID]:
        return list(dict.fromkeys(row.patient_id for row in self.rows))

    def provider_status(self) -> str | None:
        """The provider's state in a waiting patient's words, or None when nothing holds them."""
        said = []
        if self.in_visit:
            said.append(f"{self.provider_name} is finishing another visit.")
        if self.delay_minutes:
            said.append(f"{self.provider_name} is running about {self.delay_minutes} minutes late.")
        return " ".join(said) or None


def _status(
    appointment_status: str,
    version: int,
    check_in: CheckInFacts | None,
    presence: Presence,
) -> str:
    if appointment_status == AppointmentStatus.NOSHOW:
        return NO_SHOW
    if appointment_status == AppointmentStatus.FULFILLED:
        return DONE
    if check_in is None:
        return NOT_ARRIVED
    if check_in.visit_id is not None:
        return IN_VISIT
    if check_in.link_locked_at is not None and check_in.failures_version in (None, version):
        return LINK_LOCKED  # as CheckIn.locks
    if check_in.waiting_since is not None:
        return WAITING if presence is Presence.ONLINE else AWAY
    if check_in.identity_verified_at is not None:
        return CHECKING_IN
    return NOT_ARRIVED


@dataclass(frozen=True)
class CheckInFacts:
    """What the queue reads of a check-in (a plain row, not the ORM entity)."""

    waiting_since: datetime | None
    visit_id: uuid.UUID | None
    identity_verified_at: datetime | None
    link_locked_at: datetime | None
    failures_version: int | None
    device_check: str | None


async def provider_day(
    session: AsyncSession, provider: User, now: datetime
) -> tuple[str, datetime, datetime, datetime]:
    """The provider's zone, their local time now, and their day's start and end (the queue's)."""
    schedule = await availability.find_schedule(session, provider.id)
    zone = schedule.timezone if schedule else "UTC"
    local = now.astimezone(ZoneInfo(zone))
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return zone, local, day_start, day_start + timedelta(days=1)


async def queue_rows_of(
    session: AsyncSession, provider: User, *, pool: list[uuid.UUID] | None = None
) -> ColumnElement[bool]:
    """Which appointments a provider's queue holds: their own, and the walk-ins no provider has
    taken yet when they take walk-ins (`pool`: the walk-in queue's providers, when known)."""
    untaken = col(Appointment.id).in_(
        select(OnDemandRequest.appointment_id).where(col(OnDemandRequest.taken_at).is_(None))
    )
    mine = (col(Appointment.provider_id) == provider.id) & ~untaken
    if pool is None:
        pool = await ondemand.pool_of_provider(session, provider.id)
    if provider.id in pool:
        mine = mine | ((col(Appointment.clinic_id) == provider.clinic_id) & untaken)
    return mine


async def _go_on() -> None:
    """No pause between a queue's steps."""


@dataclass(frozen=True)
class _QueueEntry:
    """One row of the queue's query."""

    appointment_id: uuid.UUID
    start_at: datetime
    end_at: datetime
    status: str
    version: int
    on_demand: bool
    untaken: bool
    patient_id: uuid.UUID
    given_name: str
    family_name: str
    birth_date: date
    duration_minutes: int
    check_in: CheckInFacts | None


async def provider_queue(
    session: AsyncSession,
    presence: PresenceStore,
    provider: User,
    *,
    now: datetime | None = None,
    pause: Callable[[], Awaitable[None]] | None = None,
) -> ProviderQueue:
    """Today's appointments of one provider (their local day), in order, with live states.

    A provider who takes walk-ins also sees the walk-ins no provider has taken yet. `pause` is
    awaited between the steps: the notifier waits there while waiting patients' places go out.
    """
    now = now or utcnow()
    between = pause or _go_on
    zone, local, day_start, day_end = await provider_day(session, provider, now)
    mine = await queue_rows_of(session, provider)
    appointment = sa.inspect(Appointment).local_table
    patient = sa.inspect(Patient).local_table
    kind = sa.inspect(AppointmentType).local_table
    check_in = sa.inspect(CheckIn).local_table
    request = sa.inspect(OnDemandRequest).local_table
    untaken = appointment.c.on_demand & appointment.c.id.in_(
        sa.select(request.c.appointment_id).where(request.c.taken_at.is_(None))
    )
    # Plain columns, not ORM entities: a thousand rows of four entities cost half a second of
    # the event loop, which the waiting patients' places share.
    query = (
        sa.select(
            appointment.c.id,
            appointment.c.start_at,
            appointment.c.end_at,
            appointment.c.status,
            appointment.c.version,
            appointment.c.on_demand,
            untaken,
            patient.c.id,
            patient.c.given_name,
            patient.c.family_name,
            patient.c.birth_date,
            kind.c.duration_minutes,
            check_in.c.appointment_id,
            check_in.c.waiting_since,
            check_in.c.visit_id,
            check_in.c.identity_verified_at,
            check_in.c.link_locked_at,
            check_in.c.failures_version,
            check_in.c.device_check,
        )
        .select_from(appointment)
        .join(patient, patient.c.id == appointment.c.patient_id)
        .join(kind, kind.c.id == appointment.c.appointment_type_id)
        .outerjoin(check_in, check_in.c.appointment_id == appointment.c.id)
        .where(
            mine,
            appointment.c.start_at >= day_start,
            appointment.c.start_at < day_end,
            appointment.c.status != AppointmentStatus.CANCELLED.value,
        )
        .order_by(appointment.c.start_at)
    )
    rows = []
    for row in (await (await session.connection()).execute(query)).all():
        (id_, start_at, end_at, status, version, on_demand, untaken_, patient_id) = row[:8]
        given, family, born, minutes, checked_in = row[8:13]
        rows.append(
            _QueueEntry(
                id_,
                start_at,
                end_at,
                status,
                version,
                bool(on_demand),
                bool(untaken_),
                patient_id,
                given,
                family,
                born,
                minutes,
                CheckInFacts(*row[13:19]) if checked_in is not None else None,
            )
        )
    await between()
    states = await presence.states([presence_key(r.appointment_id) for r in rows])
    waiting = []
    busy_until: datetime | None = None
    in_visit = False
    for r in rows:
        if (
            r.check_in is not None
            and r.check_in.visit_id is not None
            and r.status != AppointmentStatus.FULFILLED
        ):
            in_visit = True
            busy_until = max(busy_until or now, r.end_at)
        elif r.check_in is not None and r.check_in.waiting_since is not None:
            waiting.append(
                WaitingPatient(
                    appointment_id=r.appointment_id,
                    scheduled_start=r.start_at,
                    duration=timedelta(minutes=r.duration_minutes),
                    checked_in_at=r.check_in.waiting_since,
                    on_demand=bool(r.on_demand),
                )
            )
    delay = await current_delay(session, provider.id, since=day_start)
    places = {
        p.appointment_id: p
        for p in queue_places(
            waiting, now=now, provider_free_at=busy_until, delay=timedelta(minutes=delay)
        )
    }
    appointment_ids = [r.appointment_id for r in rows]
    await between()
    reasons = await reasons_for(session, appointment_ids)
    await between()
    conversations = await conversations_for(session, appointment_ids)
    await between()
    cards = await intake.cards_by_appointment(session, appointment_ids)
    guests = await _waiting_guests(
        session,
        [r.check_in.visit_id for r in rows if r.check_in and r.check_in.visit_id is not None],
    )
    await between()
    today = local.date()
    queue_rows = [
        QueueRow(
            appointment_id=r.appointment_id,
            patient_id=r.patient_id,
            patient_name=f"{r.given_name} {r.family_name}",
            age=age_on(r.birth_date, today),
            start_at=r.start_at,
            end_at=r.end_at,
            status=_status(r.status, r.version, r.check_in, state.presence),
            waiting_since=r.check_in.waiting_since if r.check_in else None,
            device_check=json.loads(r.check_in.device_check)
            if r.check_in and r.check_in.device_check
            else None,
            visit_id=r.check_in.visit_id if r.check_in else None,
            place=places.get(r.appointment_id),
            guests_waiting=tuple(guests.get(r.check_in.visit_id, ())) if r.check_in else (),
            reason=reasons.get(r.appointment_id),
            messages=tuple(conversations.get(r.appointment_id, ())),
            cards=tuple(cards.get(r.appointment_id, ())),
            on_demand=bool(r.on_demand),
            untaken=bool(r.untaken),
        )
        for r, state in zip(rows, states, strict=True)
    ]
    return ProviderQueue(
        provider.id,
        provider.full_name,
        provider.clinic_id,
        zone,
        queue_rows,
        delay_minutes=delay,
        in_visit=in_visit,
    )


async def current_delay(session: AsyncSession, provider_id: uuid.UUID, *, since: datetime) -> int:
    """The minutes late the provider said they run today (a delay from yesterday is over)."""
    delay = await session.get(ProviderDelay, provider_id)
    if delay is None or delay.set_at < since:
        return 0
    return delay.minutes


async def set_delay(session: AsyncSession, provider: User, minutes: int) -> int:
    """The provider says how late they run (0: on time); waiting patients read it."""
    delay = await session.get(ProviderDelay, provider.id)
    if delay is None:
        delay = ProviderDelay(provider_id=provider.id, minutes=minutes)
    delay.minutes = minutes
    delay.set_at = utcnow()
    session.add(delay)
    await session.commit()
    return minutes


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
    """A check-in of one of this provider's appointments, or of a walk-in they may take; anyone
    else's is not found."""
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None or (
        appointment.provider_id != provider.id
        and not await ondemand.may_take(session, provider, appointment)
    ):
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
    if await ondemand.untaken(session, appointment) is not None:
        await ondemand.take(session, provider, appointment, check_in)
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
    return await store_waiting_message(
        session, appointment.id, text, sender=CLINIC, author_id=provider.id
    )


async def clinic_providers(session: AsyncSession, clinic_id: uuid.UUID) -> list[User]:
    return await availability.list_providers(session, clinic_id=clinic_id)

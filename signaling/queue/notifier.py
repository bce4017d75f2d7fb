"""Pushes queue changes to whoever watches them: the provider, their clinic, waiting patients."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime

import socketio
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.db import Database
from app.core.models import User, utcnow
from scheduling.models import Appointment, AppointmentStatus
from signaling.ondemand.service import pool_of_provider
from signaling.queue.chart import LastSignedNotes
from signaling.queue.place_delivery import PlaceDelivery
from signaling.queue.places import QueuePlace
from signaling.queue.presence import PresenceStore
from signaling.queue.service import ProviderQueue, provider_queue
from signaling.queue.waiting_places import waiting_places
from signaling.rooms import (
    CLINIC_NAMESPACE,
    WAITING_NAMESPACE,
    appointment_room,
    clinic_queue_room,
    provider_room,
)

log = logging.getLogger(__name__)

#: How long a staff queue's rebuild waits at most for the waiting patients' places to go out.
PLACES_FIRST_SECONDS = 2.0
#: A staff queue that changed again while it was built is dropped for the next build, unless
#: it last went out longer ago than this.
STALE_SKIP_SECONDS = 1.0


class QueueNotifier:
    """Emits go through the Socket.IO manager, so with Redis they reach every process."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        db: Database,
        presence: PresenceStore,
        last_signed_notes: LastSignedNotes | None = None,
        places_out: PlaceDelivery | None = None,
    ) -> None:
        self.sio = sio
        self.places_out = places_out or PlaceDelivery(sio)
        self.db = db
        self.presence = presence
        self.last_signed_notes = last_signed_notes
        # Queues being sent now (a provider's, or a walk-in queue's providers' together), and
        # whether they changed again meanwhile.
        self._sending: dict[tuple[object, ...], bool] = {}
        self._later: set[asyncio.Task[None]] = set()
        # Set while no places are being sent: a staff queue waits for it before its rebuild.
        self._places_idle = asyncio.Event()
        self._places_idle.set()
        self._places_running = 0
        # When each provider's staff queue last went out (monotonic clock).
        self._staff_sent_at: dict[uuid.UUID, float] = {}

    def provider_changed_soon(self, provider_id: uuid.UUID) -> None:
        """provider_changed after the current handler has answered (an admit's reply first)."""
        task = asyncio.create_task(self._changed_quietly(provider_id))
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def _changed_quietly(self, provider_id: uuid.UUID) -> None:
        try:
            await self.provider_changed(provider_id)
        except Exception:  # nobody awaits this task: say what went wrong instead of losing it
            log.exception("could not send the queue of provider %s", provider_id)

    async def provider_changed(self, provider_id: uuid.UUID) -> None:
        """Send each waiting patient's place, then the provider's queue to the provider and
        the clinic.

        A provider who takes walk-ins shares them with the other providers of the walk-in queue:
        their queues are sent together, and each walk-in gets one place (the best among them).
        Places go first, from a narrow query, and apart from the staff's queues: a slow queue
        send never holds up a thousand patients' places. A burst of changes (fifty patients
        connecting at once) costs two sends of each, not fifty: a change that arrives while a
        send is running only asks for one more send after it.
        """
        with self._places_pending():
            async with self.db.session() as session:
                pool = await pool_of_provider(session, provider_id)
            providers = tuple(pool) if provider_id in pool else (provider_id,)
            await self._coalesced(("places", *providers), self._send_places)
        await self._coalesced(("staff", *providers), self._send_queues)

    @contextlib.contextmanager
    def _places_pending(self) -> Iterator[None]:
        """Marks places on their way, from the change's first step: staff queues being rebuilt
        wait at their next step (`_places_first`)."""
        self._places_running += 1
        self._places_idle.clear()
        try:
            yield
        finally:
            self._places_running -= 1
            if not self._places_running:
                self._places_idle.set()

    async def _coalesced(
        self,
        key: tuple[object, ...],
        send: Callable[[tuple[uuid.UUID, ...]], Awaitable[None]],
    ) -> None:
        if key in self._sending:
            self._sending[key] = True
            return
        self._sending[key] = False
        providers = tuple(k for k in key if isinstance(k, uuid.UUID))
        try:
            while True:
                await send(providers)
                if not self._sending[key]:
                    break
                self._sending[key] = False
        finally:
            del self._sending[key]

    async def chart_facts(
        self, session: AsyncSession, queue: ProviderQueue
    ) -> dict[uuid.UUID, datetime]:
        """When the last note of each patient of the queue was signed (for record readers)."""
        if self.last_signed_notes is None:
            return {}
        return await self.last_signed_notes(session, queue.clinic_id, queue.patient_ids)

    async def _places_first(self) -> None:
        """Let the places being sent go out before a staff queue is rebuilt on the same loop
        (a thousand patients wait for them); a stream of places delays the staff queue only
        so long."""
        await asyncio.sleep(0)
        if not self._places_idle.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._places_idle.wait(), PLACES_FIRST_SECONDS)

    async def _send_places(self, provider_ids: tuple[uuid.UUID, ...]) -> None:
        with self._places_pending():
            await self._send_places_now(provider_ids)

    async def _send_places_now(self, provider_ids: tuple[uuid.UUID, ...]) -> None:
        now = utcnow()
        places: dict[uuid.UUID, tuple[QueuePlace, str | None]] = {}
        async with self.db.session() as session:
            pool = await pool_of_provider(session, provider_ids[0])
            providers = [u for u in [await session.get(User, p) for p in provider_ids] if u]
            by_provider = await waiting_places(session, providers, now, pool=pool)
        for found in by_provider.values():
            for place in found.places:
                if place.appointment_id not in found.untaken:
                    places[place.appointment_id] = (place, found.provider_status)
                    continue
                # A walk-in waits for whichever provider of the queue gets to them first.
                best = places.get(place.appointment_id)
                if best is None or (place.expected_start, place.position) < (
                    best[0].expected_start,
                    best[0].position,
                ):
                    places[place.appointment_id] = (place, None)
        await self.places_out.send(
            {
                appointment_id: {
                    "position": place.position,
                    "expected_start": place.expected_start.isoformat(),
                    "expected_wait_minutes": int(place.expected_wait(now).total_seconds() // 60),
                    "provider_status": provider_status,
                }
                for appointment_id, (place, provider_status) in places.items()
            }
        )

    async def _send_queues(self, provider_ids: tuple[uuid.UUID, ...]) -> None:
        key = ("staff", *provider_ids)
        for provider_id in provider_ids:
            await self._places_first()
            async with self.db.session() as session:
                provider = await session.get(User, provider_id)
                if provider is None:
                    continue
                queue = await provider_queue(
                    session, self.presence, provider, pause=self._places_first
                )
                chart = await self.chart_facts(session, queue)
            await self._places_first()
            last = self._staff_sent_at.get(provider_id, 0.0)
            if self._sending.get(key) and time.monotonic() - last < STALE_SKIP_SECONDS:
                # Changed again while it was built: the rebuild after this one is sent instead
                # (unless this staff queue has not gone out for a while).
                return
            await self._send_to_staff(queue, chart, utcnow())
            self._staff_sent_at[provider_id] = time.monotonic()

    async def _send_to_staff(
        self, queue: ProviderQueue, chart: dict[uuid.UUID, datetime], now: datetime
    ) -> None:
        for_readers, for_others = queue.public_pair(now, chart)
        # One emit, so one encoding, for both rooms; a socket in both gets it once.
        await self.sio.emit(
            "queue",
            for_readers,
            to=[
                provider_room(queue.provider_id),
                clinic_queue_room(queue.clinic_id, record_readers=True),
            ],
            namespace=CLINIC_NAMESPACE,
        )
        await self.sio.emit(
            "queue",
            for_others,
            room=clinic_queue_room(queue.clinic_id, record_readers=False),
            namespace=CLINIC_NAMESPACE,
        )

    async def appointment_changed(self, appointment_id: uuid.UUID) -> None:
        """Scheduling changed an appointment: release a waiting patient if it no longer stands."""
        async with self.db.session() as session:
            appointment = await session.get(Appointment, appointment_id)
        if appointment is None:
            return
        if appointment.status in (AppointmentStatus.CANCELLED, AppointmentStatus.NOSHOW):
            message = (
                "Your appointment was cancelled by the clinic. Please contact them to book again."
                if appointment.status == AppointmentStatus.CANCELLED
                else "Your appointment was closed by the clinic. Please contact them."
            )
            await self.sio.emit(
                "released",
                {"reason": appointment.status.value, "message": message},
                room=appointment_room(appointment_id),
                namespace=WAITING_NAMESPACE,
            )
        await self.provider_changed(appointment.provider_id)

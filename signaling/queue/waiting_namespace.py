"""The patient's side of the waiting room: place in line, messages, the admit, presence."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from aiohttp import web

from app.core.errors import DomainError
from app.web.identity import guest_session, patient_session
from scheduling.models import Appointment
from signaling.auth import refused, request_of
from signaling.checkin import guests
from signaling.checkin.service import leave_queue
from signaling.models import CheckIn, Visit
from signaling.queue.keys import QueueNamespace
from signaling.queue.presence import Presence
from signaling.queue.service import presence_key
from signaling.rooms import WAITING_NAMESPACE, appointment_room, guest_room

log = logging.getLogger(__name__)


class WaitingRoomNamespace(QueueNamespace):
    """Patients connect with the session cookie they got for confirming their identity."""

    def __init__(self, app: web.Application) -> None:
        super().__init__(WAITING_NAMESPACE, app)
        self._local: dict[str, uuid.UUID] = {}  # sid -> appointment, for heartbeats
        self._timers: set[asyncio.Task[None]] = set()

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        request = request_of(environ)
        claims = patient_session(request)
        if claims is None:
            await self._connect_guest(sid, request)
            return
        async with self.db.session() as session:
            appointment = await session.get(Appointment, claims.appointment_id)
            check_in = await session.get(CheckIn, claims.appointment_id)
            visit = (
                await session.get(Visit, check_in.visit_id)
                if check_in is not None and check_in.visit_id is not None
                else None
            )
        if (
            appointment is None
            or appointment.version != claims.version
            or check_in is None
            or check_in.consent_id is None
        ):
            raise refused("not_checked_in", "Please finish checking in first.")
        await self.save_session(
            sid,
            {"appointment_id": str(appointment.id), "provider_id": str(appointment.provider_id)},
        )
        await self.enter_room(sid, appointment_room(appointment.id))
        self._local[sid] = appointment.id
        await self.presence.connected(presence_key(appointment.id), sid)
        await self.notifier.provider_changed(appointment.provider_id)
        await self._admitted_already(sid, visit)

    async def _connect_guest(self, sid: str, request: web.Request) -> None:
        """A visit's guest waits here, without a place in line, until the provider admits them."""
        claims = guest_session(request)
        if claims is None:
            raise refused("not_checked_in", "Please check in.")
        try:
            async with self.db.session() as session:
                arrival = await guests.from_session(session, claims)
        except DomainError as exc:
            raise refused(exc.code, exc.message) from None
        if arrival.guest.consent_accepted_at is None:
            raise refused("not_checked_in", "Please finish checking in first.")
        await self.enter_room(sid, guest_room(arrival.guest.id))
        if arrival.guest.admitted_at is not None:
            await self._admitted_already(sid, arrival.visit)

    async def _admitted_already(self, sid: str, visit: Visit | None) -> None:
        """An admit sent while this page was still connecting reached no one: say it again."""
        if visit is not None and visit.ended_at is None:
            await self.emit(
                "admitted", {"visit_id": str(visit.id), "url": f"/visit/{visit.id}"}, to=sid
            )

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        appointment_id = self._local.pop(sid, None)
        if appointment_id is None:
            return
        session = await self.get_session(sid)
        provider_id = uuid.UUID(session["provider_id"])
        await self.presence.disconnected(presence_key(appointment_id), sid)
        await self.notifier.provider_changed(provider_id)
        timer = asyncio.create_task(self._after_grace(appointment_id, provider_id))
        self._timers.add(timer)
        timer.add_done_callback(self._timers.discard)

    async def _after_grace(self, appointment_id: uuid.UUID, provider_id: uuid.UUID) -> None:
        """Away longer than the grace period: the patient loses their place in line."""
        await asyncio.sleep(self.settings.waiting_grace_seconds + 0.5)
        state = await self.presence.state(presence_key(appointment_id))
        if state.presence is not Presence.GONE:
            return
        async with self.db.session() as session:
            left = await leave_queue(session, appointment_id)
        if left is not None:
            log.info("appointment %s left the waiting room after the grace period", appointment_id)
            await self.notifier.provider_changed(provider_id)

    def patients_connected(self) -> int:
        """Patients (not guests) with a waiting-room page connected to this process."""
        return len(set(self._local.values()))

    async def beat(self) -> None:
        """Tell the presence store our connections are alive (matters with Redis)."""
        for sid, appointment_id in list(self._local.items()):
            await self.presence.heartbeat(presence_key(appointment_id), sid)

    async def close(self) -> None:
        for timer in list(self._timers):
            timer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._timers, return_exceptions=True)

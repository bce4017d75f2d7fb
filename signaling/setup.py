"""Wires the waiting room into the app: namespaces, presence, notifier, listeners, heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from app.events import APPOINTMENT_LISTENERS
from app.keys import DATABASE, REDIS, SETTINGS
from signaling.checkin_routes import routes as checkin_routes
from signaling.clinic_namespace import ClinicQueueNamespace
from signaling.guest_routes import routes as guest_routes
from signaling.keys import NOTIFIER, PRESENCE
from signaling.notifier import QueueNotifier
from signaling.pages import routes as page_routes
from signaling.presence import MemoryPresence, PresenceStore, RedisPresence
from signaling.server import SOCKET_SERVER
from signaling.visit_namespace import VisitNamespace
from signaling.waiting_namespace import WaitingRoomNamespace

log = logging.getLogger(__name__)


def setup_waiting_room(app: web.Application) -> None:
    """Call after the Socket.IO server is attached and the data layer is in cleanup_ctx."""
    sio = app[SOCKET_SERVER]
    waiting = WaitingRoomNamespace(app)
    sio.register_namespace(waiting)
    sio.register_namespace(ClinicQueueNamespace(app))
    sio.register_namespace(VisitNamespace(app))
    app.add_routes(checkin_routes)
    app.add_routes(page_routes)
    app.add_routes(guest_routes)

    async def services(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        redis = app[REDIS]
        presence: PresenceStore
        if redis is not None:
            presence = RedisPresence(
                redis,
                settings.redis_key_prefix,
                grace_seconds=settings.waiting_grace_seconds,
                beat_seconds=settings.presence_beat_seconds,
            )
        else:
            presence = MemoryPresence(grace_seconds=settings.waiting_grace_seconds)
        notifier = QueueNotifier(sio, app[DATABASE], presence)
        app[PRESENCE] = presence
        app[NOTIFIER] = notifier
        app[APPOINTMENT_LISTENERS].append(notifier.appointment_changed)
        beat = asyncio.create_task(_heartbeat(waiting, settings.presence_beat_seconds))
        yield
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        await waiting.close()

    app.cleanup_ctx.append(services)


async def _heartbeat(waiting: WaitingRoomNamespace, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await waiting.beat()
        except Exception:
            log.exception("presence heartbeat failed")

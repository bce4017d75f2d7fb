"""How signaling plugs into the app: Socket.IO, check-in, the queues, the visit and its relay."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from app.web.events import on_appointment_changed
from app.web.jobs import Job, run_periodically
from app.web.keys import DATABASE, REDIS, SETTINGS
from app.web.nodes import NODE
from app.web.setup import add_openapi
from signaling import openapi
from signaling.checkin import attachment_routes as checkin_attachments
from signaling.checkin import guest_routes as guest_checkin
from signaling.checkin import intake_routes as checkin_intake
from signaling.checkin import pages as checkin_pages
from signaling.checkin import routes as checkin_routes
from signaling.checkin import staff_routes as checkin_staff
from signaling.checkin import text_routes as checkin_texts
from signaling.checkin.guest_routes import GUESTS_CHANGED
from signaling.metrics import setup_metrics
from signaling.ondemand import openapi as ondemand_openapi
from signaling.ondemand import routes as ondemand_routes
from signaling.queue import ondemand_routes as queue_ondemand
from signaling.queue import pages as queue_pages
from signaling.queue.clinic_namespace import ClinicQueueNamespace
from signaling.queue.keys import LAST_SIGNED_NOTES, NOTIFIER, PRESENCE
from signaling.queue.notifier import QueueNotifier
from signaling.queue.place_delivery import PlaceDelivery, RedisPlaceDelivery
from signaling.queue.presence import MemoryPresence, PresenceStore, RedisPresence
from signaling.queue.waiting_namespace import WaitingRoomNamespace
from signaling.relay.relay import setup_media_relay
from signaling.server import SOCKET_SERVER, attach_socket_server, create_socket_server
from signaling.visit import guest_routes as visit_guests
from signaling.visit import pages as visit_pages
from signaling.visit.namespace import VisitNamespace, guests_changed
from signaling.visit.placement import setup_placement


def setup(app: web.Application) -> None:
    settings = app[SETTINGS]
    attach_socket_server(app, create_socket_server(settings), app[NODE].id)
    app.add_routes(checkin_pages.routes)
    app.add_routes(checkin_routes.routes)
    app.add_routes(checkin_intake.routes)
    app.add_routes(checkin_attachments.routes)
    app.add_routes(checkin_staff.routes)
    app.add_routes(checkin_texts.routes)
    app.add_routes(guest_checkin.routes)
    app.add_routes(queue_pages.routes)
    app.add_routes(ondemand_routes.routes)
    app.add_routes(queue_ondemand.routes)
    app.add_routes(visit_pages.routes)
    app.add_routes(visit_guests.routes)
    _setup_queue(app)
    # A guest's check-in shows on their visit's page and in the provider's queue.
    app[GUESTS_CHANGED] = guests_changed
    visit_namespace = VisitNamespace(app)
    app[SOCKET_SERVER].register_namespace(visit_namespace)
    setup_placement(app, visit_namespace.joined_visits, visit_namespace.let_go)
    setup_media_relay(app, settings)
    setup_metrics(app)
    add_openapi(app, openapi.PATHS, openapi.SCHEMAS)
    add_openapi(app, ondemand_openapi.PATHS, ondemand_openapi.SCHEMAS)


def _setup_queue(app: web.Application) -> None:
    """The waiting room and clinic queue namespaces, presence, and the notifier behind them."""
    sio = app[SOCKET_SERVER]
    waiting = WaitingRoomNamespace(app)
    sio.register_namespace(waiting)
    sio.register_namespace(ClinicQueueNamespace(app))

    async def appointment_changed(appointment_id: uuid.UUID) -> None:
        await app[NOTIFIER].appointment_changed(appointment_id)

    on_appointment_changed(app, appointment_changed)

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
        app[PRESENCE] = presence
        places_out = (
            RedisPlaceDelivery(sio, redis, f"{settings.redis_key_prefix}places")
            if redis is not None
            else PlaceDelivery(sio)
        )
        await places_out.start()
        app[NOTIFIER] = QueueNotifier(
            sio, app[DATABASE], presence, app.get(LAST_SIGNED_NOTES), places_out
        )
        yield
        await waiting.close()
        await places_out.stop()

    def heartbeat(app: web.Application) -> Job:
        return waiting.beat

    app.cleanup_ctx.append(services)
    run_periodically(
        app, "presence-heartbeat", lambda app: app[SETTINGS].presence_beat_seconds, heartbeat
    )

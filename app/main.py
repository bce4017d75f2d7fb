"""The one application factory: wires settings, data, security, routes and templates."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp_jinja2
import jinja2
from aiohttp import web
from redis.asyncio import Redis

from app import openapi
from app.accounts.routes import routes as account_routes
from app.core.auth import DatabaseDenylist, MemoryRateLimiter, RedisDenylist, RedisRateLimiter
from app.core.config import Settings
from app.core.db import Database
from app.events import APPOINTMENT_LISTENERS
from app.keys import DATABASE, DENYLIST, NOTE_KEYRING, OPENAPI, RATE_LIMITER, REDIS, SETTINGS
from app.middlewares import add_security_headers, errors_middleware, session_middleware
from app.records import fhir as records_fhir
from app.records import pages as records_pages
from app.records import routes as records_routes
from app.records import visit_routes as records_visit_routes
from app.records.crypto import Keyring
from app.records.openapi import RECORDS_PATHS, RECORDS_SCHEMAS
from app.routes import LANDING_ROUTES
from app.routes import routes as core_routes
from app.security import CSRF_FIELD, csrf_token, optional_staff
from frontend import STATIC_DIR, TEMPLATES_DIR
from scheduling import openapi as scheduling_openapi
from scheduling import wiring as scheduling
from signaling import openapi as signaling_openapi
from signaling.relay.relay import setup_media_relay
from signaling.server import attach_socket_server, create_socket_server
from signaling.setup import setup_waiting_room

log = logging.getLogger(__name__)


async def _template_context(request: web.Request) -> dict[str, object]:
    staff = await optional_staff(request)
    return {
        "current_staff": staff,
        "csrf_token": csrf_token(request, staff) if staff else "",
        "csrf_field": CSRF_FIELD,
    }


PRUNE_INTERVAL_S = 3600


async def every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
    """Run `job` every `seconds` until cancelled; a failing run is logged, not fatal."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except Exception:
            log.exception("background job %s failed", getattr(job, "__qualname__", job))


def create_app(settings: Settings) -> web.Application:
    """Build the app; resources open on startup and close on cleanup."""
    app = web.Application(
        middlewares=[errors_middleware, session_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[NOTE_KEYRING] = Keyring.from_settings(settings)

    async def data_layer(app: web.Application) -> AsyncIterator[None]:
        background: list[asyncio.Task[None]] = []
        db = Database(settings.resolved_database_url)
        app[DATABASE] = db
        redis: Redis | None = None
        if settings.redis_url:
            redis = Redis.from_url(settings.redis_url)
            app[DENYLIST] = RedisDenylist(redis, settings.redis_key_prefix)
            app[RATE_LIMITER] = RedisRateLimiter(redis, settings.redis_key_prefix)
        else:
            denylist = DatabaseDenylist(db)
            app[DENYLIST] = denylist
            app[RATE_LIMITER] = MemoryRateLimiter()
            background.append(asyncio.create_task(every(PRUNE_INTERVAL_S, denylist.prune)))
        app[REDIS] = redis
        yield
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if redis is not None:
            await redis.aclose()
        await db.dispose()

    app.cleanup_ctx.append(data_layer)

    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(default=True),
        context_processors=[_template_context],
    )
    app.on_response_prepare.append(add_security_headers)

    app.add_routes(core_routes)
    app.add_routes(LANDING_ROUTES)
    app.add_routes(account_routes)
    app.add_routes(records_routes.routes)
    app.add_routes(records_pages.routes)
    app.add_routes(records_fhir.routes)
    app.add_routes(records_visit_routes.routes)
    scheduling.install(app)
    app.router.add_static("/static", STATIC_DIR, name="static")
    attach_socket_server(app, create_socket_server(settings))
    app[APPOINTMENT_LISTENERS] = []
    setup_waiting_room(app)
    setup_media_relay(app, settings)

    app[OPENAPI] = openapi.build_spec(
        [
            (openapi.CORE_PATHS, openapi.CORE_SCHEMAS),
            (RECORDS_PATHS, RECORDS_SCHEMAS),
            (scheduling_openapi.PATHS, scheduling_openapi.SCHEMAS),
            (signaling_openapi.PATHS, signaling_openapi.SCHEMAS),
        ]
    )
    return app

"""Background work of scheduling: the email sender and the automatic no-show sweep."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from app.core import audit
from app.core.config import Settings
from app.core.db import Database
from app.events import appointment_changed
from app.keys import DATABASE, SETTINGS
from scheduling import outbox, service

log = logging.getLogger(__name__)


async def sweep_noshows(db: Database, settings: Settings) -> list[uuid.UUID]:
    """Mark no-show every booked appointment past start + the grace time; audit each."""
    async with db.session() as session:
        changed = await service.auto_noshow(
            session, after=timedelta(minutes=settings.noshow_after_minutes)
        )
    for appointment in changed:
        await audit.record(
            db,
            action="appointment.auto_noshow",
            outcome=audit.SUCCESS,
            actor=outbox.SYSTEM,
            object_type="appointment",
            object_id=appointment.id,
            patient_id=appointment.patient_id,
            clinic_id=appointment.clinic_id,
        )
    return [appointment.id for appointment in changed]


async def _noshow_loop(app: web.Application, db: Database, settings: Settings) -> None:
    while True:
        try:
            for appointment_id in await sweep_noshows(db, settings):
                # Live queues show the no-show at once.
                await appointment_changed(app, appointment_id)
        except Exception:
            log.exception("no-show sweep failed; retrying")
        await asyncio.sleep(settings.noshow_poll_seconds)


async def background(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: run the sender and the sweep while the app runs (when enabled)."""
    settings = app[SETTINGS]
    if not settings.background_tasks:
        yield
        return
    db = app[DATABASE]
    tasks = [
        asyncio.create_task(outbox.run_sender(db, settings), name="outbox-sender"),
        asyncio.create_task(_noshow_loop(app, db, settings), name="noshow-sweep"),
    ]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task

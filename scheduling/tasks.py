"""Background work of scheduling: the email sender and the automatic no-show sweep."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from aiohttp import web

from app.core import audit
from app.core.config import Settings
from app.core.db import Database
from app.web.jobs import Job, run_periodically
from app.web.keys import DATABASE, SETTINGS
from scheduling import lifecycle, outbox

log = logging.getLogger(__name__)


async def sweep_noshows(db: Database, settings: Settings) -> list[uuid.UUID]:
    """Mark no-show every booked appointment past start + the grace time; audit each.

    Each no-show is announced once the sweep commits, so live queues show it at once.
    """
    async with db.session() as session:
        changed = await lifecycle.auto_noshow(
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


def noshow_sweep(app: web.Application) -> Job | None:
    """The periodic no-show sweep."""
    settings = app[SETTINGS]
    if not settings.background_tasks:
        return None
    db = app[DATABASE]

    async def sweep() -> None:
        await sweep_noshows(db, settings)

    return sweep


def outbox_sender(app: web.Application) -> Job | None:
    """The periodic sender of due email."""
    settings = app[SETTINGS]
    if not settings.background_tasks:
        return None
    db = app[DATABASE]

    async def send() -> None:
        await outbox.send_due(db, settings)

    return send


def setup_jobs(app: web.Application) -> None:
    """Send due email and sweep no-shows while the app runs (when background tasks are on)."""
    run_periodically(
        app,
        "outbox-sender",
        lambda app: app[SETTINGS].outbox_poll_seconds,
        outbox_sender,
        first_run_now=True,
    )
    run_periodically(
        app,
        "noshow-sweep",
        lambda app: app[SETTINGS].noshow_poll_seconds,
        noshow_sweep,
        first_run_now=True,
    )

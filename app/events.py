"""Appointment changes announced to whoever listens (the waiting room), without an import cycle."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)

AppointmentListener = Callable[[uuid.UUID], Awaitable[None]]
APPOINTMENT_LISTENERS = web.AppKey("appointment_listeners", list[AppointmentListener])


async def appointment_changed(app: web.Application, appointment_id: uuid.UUID) -> None:
    """Tell every listener; a failing listener is logged and does not undo the change."""
    for listener in app.get(APPOINTMENT_LISTENERS, []):
        try:
            await listener(appointment_id)
        except Exception:
            log.exception("appointment listener failed for %s", appointment_id)

"""Domain events reach the app's listeners: each domain registers what it does on a change.

Services raise events inside their transaction (`app.core.events`); the database delivers them
once the transaction commits, and this module hands each to the listeners registered with
`on_appointment_changed`. Setup order does not matter: listeners may register before or after
the data layer exists.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from app.core.events import AppointmentChanged, DomainEvent
from app.web.keys import DATABASE

log = logging.getLogger(__name__)

AppointmentListener = Callable[[uuid.UUID], Awaitable[None]]
APPOINTMENT_LISTENERS = web.AppKey("appointment_listeners", list[AppointmentListener])


def on_appointment_changed(app: web.Application, listener: AppointmentListener) -> None:
    """Call `listener(appointment_id)` after every committed change of an appointment."""
    app.setdefault(APPOINTMENT_LISTENERS, []).append(listener)


async def appointment_changed(app: web.Application, appointment_id: uuid.UUID) -> None:
    """Tell every listener; a failing listener is logged and does not undo the change."""
    for listener in app.get(APPOINTMENT_LISTENERS, []):
        try:
            await listener(appointment_id)
        except Exception:
            log.exception("appointment listener failed for %s", appointment_id)


def deliver_committed_events(app: web.Application) -> None:
    """Subscribe the app's listeners to the database's committed events (data layer open)."""

    async def deliver(event: DomainEvent) -> None:
        if isinstance(event, AppointmentChanged):
            await appointment_changed(app, event.appointment_id)

    app[DATABASE].subscribe(deliver)

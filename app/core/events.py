"""Domain events: raised by a service inside its transaction, delivered once it commits.

A service knows nothing of who listens (the live queue, a notifier on another process): it says
what changed with `raise_event(session, ...)`, and `Database.session()` hands the events of every
committed transaction to the database's subscribers. A rolled-back transaction announces nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

_PENDING = "openconsult.pending_events"
_COMMITTED = "openconsult.committed_events"


@dataclass(frozen=True)
class AppointmentChanged:
    """An appointment's time, status or check-in changed: live views of it should refresh."""

    appointment_id: uuid.UUID


DomainEvent = AppointmentChanged


def raise_event(session: AsyncSession | Session, event: DomainEvent) -> None:
    """Announce `event` when (and only if) the session's current transaction commits."""
    pending: list[DomainEvent] = session.info.setdefault(_PENDING, [])
    if event not in pending:
        pending.append(event)


def take_committed(session: AsyncSession | Session) -> list[DomainEvent]:
    """The events of the transactions this session committed, each handed out once."""
    events: list[DomainEvent] = session.info.pop(_COMMITTED, [])
    return events


@sa.event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    committed: list[DomainEvent] = session.info.setdefault(_COMMITTED, [])
    for event in session.info.pop(_PENDING, []):
        if event not in committed:
            committed.append(event)


@sa.event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session, *_: Any) -> None:
    session.info.pop(_PENDING, None)

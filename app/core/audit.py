"""Append-only, hash-chained audit trail of logins, refusals and every touch of patient data."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col, select

from app.core.db import Database
from app.core.models import AuditEvent, utcnow

GENESIS_HASH = "0" * 64
# Any constant works; it names the PostgreSQL advisory lock that orders the chain.
_CHAIN_LOCK_KEY = 0x0C0A0D17

SUCCESS = "success"
FAILURE = "failure"
DENIED = "denied"


@dataclass(frozen=True)
class Actor:
    """Who did something, as the audit trail records it."""

    id: str | None
    role: str | None
    clinic_id: str | None
    client_addr: str | None


ANONYMOUS = Actor(id=None, role=None, clinic_id=None, client_addr=None)


def event_hash(event: AuditEvent) -> str:
    """SHA-256 over the event's fields and the previous event's hash."""
    payload = {
        "at": event.at.isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_role": event.actor_role,
        "clinic_id": event.clinic_id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "patient_id": event.patient_id,
        "client_addr": event.client_addr,
        "outcome": event.outcome,
        "detail": event.detail,
        "prev_hash": event.prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _text(value: object | None) -> str | None:
    return None if value is None else str(value)


async def record(
    db: Database,
    *,
    action: str,
    outcome: str,
    actor: Actor = ANONYMOUS,
    object_type: str | None = None,
    object_id: uuid.UUID | str | None = None,
    patient_id: uuid.UUID | str | None = None,
    detail: str | None = None,
    clinic_id: uuid.UUID | str | None = None,
) -> AuditEvent:
    """Append one event in its own transaction, so refusals are kept even when work rolls back."""
    async with db.audit_lock, db.session() as session, session.begin():
        if not db.is_sqlite:
            connection = await session.connection()
            await connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK_KEY}
            )
        last = await session.exec(
            select(AuditEvent.hash).order_by(col(AuditEvent.id).desc()).limit(1)
        )
        prev_hash = last.first() or GENESIS_HASH
        event = AuditEvent(
            at=utcnow(),
            actor_id=actor.id,
            actor_role=actor.role,
            clinic_id=_text(clinic_id) or actor.clinic_id,
            action=action,
            object_type=object_type,
            object_id=_text(object_id),
            patient_id=_text(patient_id),
            client_addr=actor.client_addr,
            outcome=outcome,
            detail=detail[:500] if detail else None,
            prev_hash=prev_hash,
            hash="",
        )
        event.hash = event_hash(event)
        session.add(event)
    return event


@dataclass(frozen=True)
class ChainReport:
    events: int
    broken_at: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


async def verify_chain(db: Database, *, batch: int = 1000) -> ChainReport:
    """Walk the trail in order and report the first event whose link or hash does not hold."""
    expected_prev = GENESIS_HASH
    count = 0
    last_id = 0
    async with db.session() as session:
        while True:
            rows = (
                await session.exec(
                    select(AuditEvent)
                    .where(col(AuditEvent.id) > last_id)
                    .order_by(col(AuditEvent.id))
                    .limit(batch)
                )
            ).all()
            if not rows:
                return ChainReport(events=count)
            for event in rows:
                assert event.id is not None
                if event.prev_hash != expected_prev:
                    return ChainReport(count, event.id, "previous-hash link does not match")
                if event_hash(event) != event.hash:
                    return ChainReport(count, event.id, "content does not match its hash")
                expected_prev = event.hash
                count += 1
                last_id = event.id


async def events_for_clinic(
    db: Database, clinic_id: uuid.UUID, *, limit: int = 100, before_id: int | None = None
) -> list[AuditEvent]:
    """The newest events of one clinic, newest first."""
    query = select(AuditEvent).where(AuditEvent.clinic_id == str(clinic_id))
    if before_id is not None:
        query = query.where(col(AuditEvent.id) < before_id)
    async with db.session() as session:
        rows = await session.exec(query.order_by(col(AuditEvent.id).desc()).limit(limit))
        return list(rows.all())

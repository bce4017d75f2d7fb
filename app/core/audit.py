"""Append-only audit trail of logins, refusals and every touch of patient data.

Each event carries an HMAC-SHA256 over its fields and the previous event's MAC, under an audit
key kept outside the database (`OPENCONSULT_AUDIT_KEYS`), so someone who can write the table but
does not hold the key cannot edit, insert or re-link events unnoticed. The chain's head is also
published outside the database now and then (`app.core.checkpoints`), which is what reveals a
removed tail. Events written before the chain was keyed carry no key id and a plain SHA-256;
they are accepted only as the trail's first events, and reported as such.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from app.core.checkpoints import Checkpoint
from app.core.crypto import MacKeyring, UnknownKey
from app.core.db import Database
from app.core.models import AuditEvent, utcnow

GENESIS_HASH = "0" * 64
# Any constant works; it names the PostgreSQL advisory lock that orders the chain.
_CHAIN_LOCK_KEY = 0x0C0A0D17

SUCCESS = "success"
FAILURE = "failure"
DENIED = "denied"


class NoAuditKey(RuntimeError):
    """An event was to be written through a database handle given no audit keys."""


@dataclass(frozen=True)
class Actor:
    """Who did something, as the audit trail records it."""

    id: str | None
    role: str | None
    clinic_id: str | None
    client_addr: str | None


ANONYMOUS = Actor(id=None, role=None, clinic_id=None, client_addr=None)


def _payload(event: AuditEvent) -> dict[str, Any]:
    return {
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


def _canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def legacy_hash(event: AuditEvent) -> str:
    """SHA-256 over the event's fields and the previous hash: events from before keying."""
    return hashlib.sha256(_canonical(_payload(event))).hexdigest()


def event_mac(keys: MacKeyring, event: AuditEvent) -> str:
    """HMAC-SHA256 under the event's key over its fields, its key id and the previous MAC."""
    if event.key_id is None:
        raise ValueError("a keyed event needs its key id")
    return keys.mac(event.key_id, _keyed_message(event))


def _keyed_message(event: AuditEvent) -> bytes:
    return _canonical({**_payload(event), "key_id": event.key_id})


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
    keys = db.audit_keys
    if keys is None:
        raise NoAuditKey("this database handle has no audit keys (Database.from_settings)")
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
            key_id=keys.active,
        )
        event.hash = event_mac(keys, event)
        session.add(event)
    db.audit_written[(action, outcome)] += 1
    return event


@dataclass(frozen=True)
class ChainReport:
    events: int
    legacy: int = 0
    broken_at: int | None = None
    reason: str | None = None
    # The newest checkpoint the trail was found to match, and how many were checked.
    checkpoint: Checkpoint | None = None
    checkpoints: int = 0

    @property
    def ok(self) -> bool:
        return self.broken_at is None


class _Walk:
    """The state of one walk along the trail, event by event."""

    def __init__(self, keys: MacKeyring | None, checkpoints: Sequence[Checkpoint]) -> None:
        self.keys = keys
        self.pending = sorted(checkpoints, key=lambda c: c.event_id)
        self.next_checkpoint = 0
        self.matched: Checkpoint | None = None
        self.expected_prev = GENESIS_HASH
        self.keyed_seen = False
        self.events = 0
        self.legacy = 0
        self.last_id = 0

    def broken(self, at: int, reason: str) -> ChainReport:
        return ChainReport(
            self.events,
            self.legacy,
            at,
            reason,
            self.matched,
            len(self.pending),
        )

    def check(self, event: AuditEvent) -> ChainReport | None:
        assert event.id is not None
        if self.next_checkpoint < len(self.pending):
            due = self.pending[self.next_checkpoint]
            if due.event_id < event.id:
                return self.broken(
                    due.event_id,
                    f"the event the checkpoint of {due.at} ends at is missing: events were removed",
                )
        if event.prev_hash != self.expected_prev:
            return self.broken(event.id, "previous-hash link does not match")
        problem = self._content(event)
        if problem is not None:
            return self.broken(event.id, problem)
        while self.next_checkpoint < len(self.pending):
            due = self.pending[self.next_checkpoint]
            if due.event_id != event.id:
                break
            if due.head != event.hash:
                return self.broken(
                    event.id, f"differs from the checkpoint of {due.at}: the trail was rewritten"
                )
            self.matched = due
            self.next_checkpoint += 1
        self.expected_prev = event.hash
        self.events += 1
        self.last_id = event.id
        return None

    def _content(self, event: AuditEvent) -> str | None:
        if event.key_id is None:
            if self.keyed_seen:
                return "unkeyed event after keyed ones: written without the audit key"
            self.legacy += 1
            if legacy_hash(event) != event.hash:
                return "content does not match its hash"
            return None
        self.keyed_seen = True
        if self.keys is None:
            return "no audit keys are configured to check it"
        try:
            if not self.keys.matches(event.key_id, _keyed_message(event), event.hash):
                return "content does not match its MAC (altered, or written without the audit key)"
        except UnknownKey as exc:
            return f"{exc} (keep every audit key listed while events signed with it are kept)"
        return None

    def finish(self) -> ChainReport:
        if self.next_checkpoint < len(self.pending):
            due = self.pending[self.next_checkpoint]
            return self.broken(
                due.event_id,
                f"the trail ends at event {self.last_id}, but the checkpoint of {due.at} "
                f"recorded event {due.event_id}: events were removed from the end",
            )
        return ChainReport(self.events, self.legacy, None, None, self.matched, len(self.pending))


async def verify_chain(
    db: Database,
    *,
    keys: MacKeyring | None = None,
    checkpoints: Sequence[Checkpoint] = (),
    batch: int = 1000,
) -> ChainReport:
    """Walk the trail in order and report the first event whose link, MAC or checkpoint fails.

    `keys` defaults to the database handle's audit keys; `checkpoints` are published heads
    (already checked for their signature), each of which must be found on the trail.
    """
    walk = _Walk(keys or db.audit_keys, checkpoints)
    async with db.session() as session:
        while True:
            rows = (
                await session.exec(
                    select(AuditEvent)
                    .where(col(AuditEvent.id) > walk.last_id)
                    .order_by(col(AuditEvent.id))
                    .limit(batch)
                )
            ).all()
            if not rows:
                return walk.finish()
            for event in rows:
                failure = walk.check(event)
                if failure is not None:
                    return failure


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

"""Signed checkpoints of the audit chain's head, published outside the database.

A checkpoint says "on <at>, the trail's newest event was <event> with MAC <head>", signed with
the audit key. It is appended as one JSON line to a file (`OPENCONSULT_AUDIT_CHECKPOINT_FILE`)
and written to the log, where a log shipper can carry it off the machine. Removing events from
the end of the trail, or rewriting it with a key-less recomputation, no longer matches a
checkpoint published before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import col, select

from app.core.crypto import MacKeyring, UnknownKey
from app.core.db import Database
from app.core.models import AuditEvent, utcnow

log = logging.getLogger(__name__)

VERSION = 1


class CheckpointError(Exception):
    """A line of the checkpoint file is unreadable or not signed by a configured audit key."""


@dataclass(frozen=True)
class Checkpoint:
    at: str
    event_id: int
    head: str
    key_id: str
    mac: str

    def fields(self) -> dict[str, object]:
        return {
            "v": VERSION,
            "at": self.at,
            "event": self.event_id,
            "head": self.head,
            "key_id": self.key_id,
        }

    def line(self) -> str:
        return json.dumps({**self.fields(), "mac": self.mac}, separators=(",", ":"))


def _message(fields: dict[str, object]) -> bytes:
    return (
        b"oc-audit-checkpoint|" + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    )


def sign(keys: MacKeyring, event_id: int, head: str, at: datetime | None = None) -> Checkpoint:
    unsigned = Checkpoint(
        at=(at or utcnow()).isoformat(timespec="seconds"),
        event_id=event_id,
        head=head,
        key_id=keys.active,
        mac="",
    )
    return Checkpoint(
        unsigned.at, event_id, head, keys.active, keys.mac(keys.active, _message(unsigned.fields()))
    )


def parse(line: str, keys: MacKeyring) -> Checkpoint:
    """One line of the file, its signature checked; raises CheckpointError."""
    try:
        value = json.loads(line)
        checkpoint = Checkpoint(
            at=str(value["at"]),
            event_id=int(value["event"]),
            head=str(value["head"]),
            key_id=str(value["key_id"]),
            mac=str(value["mac"]),
        )
        if value.get("v") != VERSION:
            raise CheckpointError(f"unknown checkpoint version {value.get('v')!r}")
    except (ValueError, KeyError, TypeError):
        raise CheckpointError("not a checkpoint line") from None
    try:
        good = keys.matches(checkpoint.key_id, _message(checkpoint.fields()), checkpoint.mac)
    except UnknownKey as exc:
        raise CheckpointError(str(exc)) from None
    if not good:
        raise CheckpointError("its signature does not match (altered, or not made with the key)")
    return checkpoint


def read(path: Path, keys: MacKeyring) -> list[Checkpoint]:
    """Every checkpoint in the file (none if it does not exist yet); raises CheckpointError
    naming the first line that does not verify."""
    if not path.exists():
        return []
    checkpoints = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            checkpoints.append(parse(line, keys))
        except CheckpointError as exc:
            raise CheckpointError(f"{path.name} line {number}: {exc}") from None
    return checkpoints


def _append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # One write of a short line with O_APPEND: lines of several processes never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


async def head(db: Database) -> tuple[int, str] | None:
    """The trail's newest event id and MAC, or None while the trail is empty."""
    async with db.session() as session:
        row = (
            await session.exec(
                select(AuditEvent.id, AuditEvent.hash).order_by(col(AuditEvent.id).desc()).limit(1)
            )
        ).first()
    if row is None or row[0] is None:
        return None
    return row[0], row[1]


async def publish(db: Database, path: Path, *, unless_head: int | None = None) -> Checkpoint | None:
    """Sign the trail's head, append it to `path` and log it; None if the trail is empty or its
    newest event is still `unless_head` (nothing new since the last checkpoint)."""
    keys = db.audit_keys
    if keys is None:
        raise UnknownKey("this database handle has no audit keys (Database.from_settings)")
    current = await head(db)
    if current is None or current[0] == unless_head:
        return None
    checkpoint = sign(keys, *current)
    line = checkpoint.line()
    await asyncio.to_thread(_append, path, line)
    log.info("audit checkpoint %s", line)
    return checkpoint

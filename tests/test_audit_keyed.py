"""The keyed audit chain: someone who can write the database but holds no audit key cannot
edit, remove or add events unnoticed, once the chain's head was published outside it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from app.core import audit, checkpoints
from app.core.config import Settings, SettingsError, load_settings, new_note_key, parse_keys
from app.core.crypto import MacKeyring
from app.core.db import Database
from app.core.models import AuditEvent, Role, utcnow
from app.main import create_app
from tests.conftest import Factory, bearer_login
from tests.support.waiting import wait_for


def _cli(settings: Settings, command: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCONSULT_")}
    env.update(
        {
            "DATABASE_URL": settings.resolved_database_url,
            "OPENCONSULT_ENV": "test",
            "OPENCONSULT_DATA_DIR": str(settings.data_dir),
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "app", command],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


async def cli(settings: Settings, command: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_cli, settings, command)


async def drop_append_only_triggers(db: Database) -> None:
    """What a database owner can always do."""
    async with db.engine.begin() as conn:
        if db.is_sqlite:
            await conn.execute(sa.text("DROP TRIGGER audit_event_no_update"))
            await conn.execute(sa.text("DROP TRIGGER audit_event_no_delete"))
        else:
            await conn.execute(sa.text("DROP TRIGGER audit_event_no_update ON audit_event"))


async def trail(db: Database) -> list[AuditEvent]:
    async with db.session() as session:
        return list((await session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))).all())


async def store(db: Database, events: list[AuditEvent]) -> None:
    """Write rows as they are (ids included): the forger's pen."""
    async with db.session() as session:
        for event in events:
            await session.merge(event)
        await session.commit()


def plain_rehash(events: list[AuditEvent], *, start_prev: str, drop_keys: bool) -> None:
    """Recompute the chain with plain SHA-256 from `start_prev` on, as the old chain did."""
    prev = start_prev
    for event in events:
        event.prev_hash = prev
        if drop_keys:
            event.key_id = None
            event.hash = audit.legacy_hash(event)
        else:
            payload = json.dumps(
                {**audit._payload(event), "key_id": event.key_id},
                sort_keys=True,
                separators=(",", ":"),
            )
            event.hash = hashlib.sha256(payload.encode()).hexdigest()
        prev = event.hash


async def record_events(db: Database, count: int, prefix: str = "test") -> list[AuditEvent]:
    return [
        await audit.record(db, action=f"{prefix}.{i}", outcome=audit.SUCCESS) for i in range(count)
    ]


async def test_every_event_is_signed_with_the_audit_key(db: Database, settings: Settings):
    events = await record_events(db, 3)
    assert {e.key_id for e in await trail(db)} == {"dev1"}
    assert all(e.hash != audit.legacy_hash(e) for e in events)
    assert (settings.data_dir / "audit_keys").stat().st_mode & 0o077 == 0
    assert "dev1:" not in json.dumps([e.model_dump(mode="json") for e in await trail(db)])
    result = await cli(settings, "audit-verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audit chain intact: 3 events, each MAC checked" in result.stdout
    assert "no checkpoint published yet" in result.stdout


@pytest.mark.parametrize("drop_keys", [False, True], ids=["rehashed", "rewritten-as-unkeyed"])
async def test_an_edited_event_with_recomputed_hashes_is_found(
    db: Database, settings: Settings, drop_keys: bool
):
    await record_events(db, 4)
    published = await cli(settings, "audit-checkpoint")
    assert published.returncode == 0, published.stderr
    await record_events(db, 2, prefix="later")
    await drop_append_only_triggers(db)
    events = await trail(db)
    events[1].client_addr = "10.9.9.9"
    if drop_keys:
        # The whole trail passed off as events from before the chain was keyed.
        plain_rehash(events, start_prev=audit.GENESIS_HASH, drop_keys=True)
        await store(db, events)
        expected = events[3].id  # the checkpoint's event no longer matches
    else:
        plain_rehash(events[1:], start_prev=events[0].hash, drop_keys=False)
        await store(db, events[1:])
        expected = events[1].id
    result = await cli(settings, "audit-verify")
    assert result.returncode == 1, result.stdout
    assert f"audit chain BROKEN at event {expected}" in result.stdout


async def test_a_tail_removed_after_a_checkpoint_is_found(db: Database, settings: Settings):
    await record_events(db, 5)
    assert (await cli(settings, "audit-checkpoint")).returncode == 0
    await record_events(db, 2, prefix="later")
    before = await cli(settings, "audit-verify")
    assert before.returncode == 0, before.stdout
    assert "matches all 1 published checkpoints" in before.stdout
    events = await trail(db)
    await drop_append_only_triggers(db)
    async with db.engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM audit_event WHERE id >= :id"), {"id": events[3].id})
    result = await cli(settings, "audit-verify")
    assert result.returncode == 1, result.stdout
    assert f"audit chain BROKEN at event {events[4].id}" in result.stdout
    assert "removed from the end" in result.stdout


@pytest.mark.parametrize("forged_as", ["unkeyed", "guessed-key"])
async def test_an_appended_forged_event_is_found(db: Database, settings: Settings, forged_as: str):
    await record_events(db, 3)
    assert (await cli(settings, "audit-checkpoint")).returncode == 0
    last = (await trail(db))[-1]
    forged = AuditEvent(
        at=utcnow(),
        actor_id="someone",
        actor_role="admin",
        action="record.read",
        outcome=audit.SUCCESS,
        prev_hash=last.hash,
        hash="",
        key_id=None if forged_as == "unkeyed" else "dev1",
    )
    if forged_as == "unkeyed":
        forged.hash = audit.legacy_hash(forged)
    else:
        forged.hash = audit.event_mac(MacKeyring({"dev1": b"\x00" * 32}), forged)
    await store(db, [forged])
    result = await cli(settings, "audit-verify")
    assert result.returncode == 1, result.stdout
    assert f"audit chain BROKEN at event {last.id + 1}" in result.stdout  # type: ignore[operator]
    assert "3 events before it are intact" in result.stdout


async def test_an_altered_checkpoint_is_refused(db: Database, settings: Settings):
    await record_events(db, 2)
    assert (await cli(settings, "audit-checkpoint")).returncode == 0
    path = settings.checkpoint_path
    line = json.loads(path.read_text())
    line["event"] = 1
    path.write_text(json.dumps(line) + "\n")
    result = await cli(settings, "audit-verify")
    assert result.returncode == 1
    assert "audit checkpoints BROKEN: audit_checkpoints.jsonl line 1" in result.stdout


async def test_keys_rotate_and_older_events_still_verify(settings: Settings):
    first, second = new_note_key("a1"), new_note_key("a2")

    def keyring(*entries: str) -> MacKeyring:
        return MacKeyring(parse_keys(",".join(entries), "audit"))

    old = Database(settings.resolved_database_url, audit_keys=keyring(first))
    await record_events(old, 2)
    await old.dispose()
    rotated = Database(settings.resolved_database_url, audit_keys=keyring(first, second))
    try:
        await record_events(rotated, 2, prefix="rotated")
        assert [e.key_id for e in await trail(rotated)] == ["a1", "a1", "a2", "a2"]
        report = await audit.verify_chain(rotated)
        assert report.ok and report.events == 4
        missing = await audit.verify_chain(rotated, keys=keyring(second))
        first_id = (await trail(rotated))[0].id
        assert missing.broken_at == first_id
        assert "audit key 'a1' is not configured" in (missing.reason or "")
    finally:
        await rotated.dispose()


async def test_events_from_before_keying_verify_as_a_legacy_prefix(
    db: Database, settings: Settings
):
    prev = audit.GENESIS_HASH
    legacy = []
    for action in ("login.success", "record.read"):
        event = AuditEvent(
            at=utcnow(), action=action, outcome=audit.SUCCESS, prev_hash=prev, hash=""
        )
        event.hash = audit.legacy_hash(event)
        prev = event.hash
        legacy.append(event)
    await store(db, legacy)
    await record_events(db, 2)
    result = await cli(settings, "audit-verify")
    assert result.returncode == 0, result.stdout
    assert "audit chain intact: 4 events" in result.stdout
    assert "the first 2 events predate the keyed chain" in result.stdout


async def test_the_server_publishes_checkpoints_by_itself(
    settings_factory: Callable[..., Settings],
    aiohttp_client: Callable[..., Any],
    factory: Factory,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.INFO, logger="app.core.checkpoints")
    settings = settings_factory(audit_checkpoint_seconds=1)
    client: TestClient = await aiohttp_client(create_app(settings))
    account = await factory.staff(Role.ADMIN)
    await bearer_login(client, account)
    db = Database.from_settings(settings)
    try:
        newest = (await trail(db))[-1]
        assert db.audit_keys is not None
        keys = db.audit_keys

        def published() -> bool:
            return any(
                c.event_id == newest.id and c.head == newest.hash
                for c in checkpoints.read(settings.checkpoint_path, keys)
            )

        await wait_for(published, 20, "a checkpoint of the newest audit event")
        report = await audit.verify_chain(
            db, checkpoints=checkpoints.read(settings.checkpoint_path, keys)
        )
        assert report.ok and report.checkpoint is not None
    finally:
        await db.dispose()
    assert any("audit checkpoint {" in r.getMessage() for r in caplog.records)


def test_production_needs_audit_keys_and_development_keeps_one(tmp_path: Path):
    with pytest.raises(SettingsError, match="OPENCONSULT_AUDIT_KEYS"):
        load_settings(
            env="production", secret_key="s" * 40, note_keys=new_note_key("n1"), data_dir=tmp_path
        )
    assert not (tmp_path / "audit_keys").exists()
    first = load_settings(env="development", data_dir=tmp_path)
    second = load_settings(env="development", data_dir=tmp_path)
    assert first.audit_keyring == second.audit_keyring
    assert list(first.audit_keyring) == ["dev1"]
    assert [p.name for p in tmp_path.glob(".audit_keys*")] == []

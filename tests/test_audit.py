"""The audit trail: chained, append-only, verifiable from the command line."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from app.core import audit
from app.core.audit import GENESIS_HASH
from app.core.models import Role
from tests.conftest import Factory, bearer_login


def _verify_cli(database_url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "OPENCONSULT_ENV": "test",
        "OPENCONSULT_DATA_DIR": str(data_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "app", "audit-verify"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


async def test_events_form_a_chain(db):
    first = await audit.record(db, action="test.one", outcome=audit.SUCCESS)
    second = await audit.record(db, action="test.two", outcome=audit.FAILURE, patient_id="p-1")
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    report = await audit.verify_chain(db)
    assert report.ok and report.events == 2


async def test_concurrent_writers_keep_one_chain(db):
    await asyncio.gather(
        *(audit.record(db, action=f"test.{i}", outcome=audit.SUCCESS) for i in range(40))
    )
    report = await audit.verify_chain(db)
    assert report.ok and report.events == 40


async def test_rows_cannot_be_changed_or_deleted(db):
    await audit.record(db, action="test.keep", outcome=audit.SUCCESS)
    for statement in ("UPDATE audit_event SET outcome = 'failure'", "DELETE FROM audit_event"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.engine.begin() as conn:
                await conn.execute(sa.text(statement))


async def test_cli_reports_an_intact_chain_and_the_first_broken_link(
    client, factory: Factory, db, database_url, settings
):
    account = await factory.staff(Role.ADMIN)
    for _ in range(3):
        await bearer_login(client, account)
    ok = await asyncio.to_thread(_verify_cli, database_url, settings.data_dir)
    assert ok.returncode == 0, ok.stderr
    assert "audit chain intact: 3 events" in ok.stdout

    # Someone with database access rewrites history behind the trigger's back.
    async with db.engine.begin() as conn:
        if db.is_sqlite:
            await conn.execute(sa.text("DROP TRIGGER audit_event_no_update"))
        else:
            await conn.execute(sa.text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
        second = (await conn.execute(sa.text("SELECT id FROM audit_event ORDER BY id"))).all()[1][0]
        await conn.execute(
            sa.text("UPDATE audit_event SET client_addr = '10.9.9.9' WHERE id = :id"),
            {"id": second},
        )
    broken = await asyncio.to_thread(_verify_cli, database_url, settings.data_dir)
    assert broken.returncode == 1
    assert f"BROKEN at event {second}" in broken.stdout
    assert "1 events before it are intact" in broken.stdout

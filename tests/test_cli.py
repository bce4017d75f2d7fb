"""The command line as an operator uses it, run as real processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from sqlmodel import select

from app.core.db import Database
from app.core.models import Patient, User
from tests.conftest import TEST_SECRET

NOTE_KEYS = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="  # a test key, not a secret


def run(args: list[str], env: dict[str, str], stdin: str | None = None):
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=120,
        check=False,
    )


def _env(database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCONSULT_")}
    env.update({"DATABASE_URL": database_url, "OPENCONSULT_DATA_DIR": str(tmp_path / "d")})
    env.update(extra)
    return env


async def test_seed_demo_is_idempotent_and_prints_passwords_once(database_url, tmp_path, settings):
    env = _env(database_url, tmp_path)
    first = run(["seed-demo"], env)
    assert first.returncode == 0, first.stderr
    assert "admin@riverside.example" in first.stdout and "demo-admin-password" in first.stdout
    assert (
        "at the first sign-in as admin@riverside.example the page shows a QR code" in first.stdout
    )
    second = run(["seed-demo"], env)
    assert second.returncode == 0
    assert "already present" in second.stdout and "password" not in second.stdout
    db = Database(settings.resolved_database_url)
    async with db.session() as session:
        users = (await session.exec(select(User))).all()
        patients = (await session.exec(select(Patient))).all()
    await db.dispose()
    assert sorted(u.role.value for u in users) == ["admin", "provider", "provider", "scheduler"]
    assert len(patients) == 4


def test_seed_demo_refuses_production(database_url, tmp_path):
    env = _env(
        database_url,
        tmp_path,
        OPENCONSULT_ENV="production",
        OPENCONSULT_SECRET_KEY="p" * 48,
        OPENCONSULT_NOTE_KEYS=NOTE_KEYS,
        OPENCONSULT_AUDIT_KEYS=NOTE_KEYS,
    )
    result = run(["seed-demo"], env)
    assert result.returncode == 2
    assert "refusing" in result.stdout


def test_create_user_reads_the_password_from_stdin(database_url, tmp_path):
    env = _env(database_url, tmp_path)
    args = [
        "create-user",
        "--email",
        "Boss@Clinic.example",
        "--name",
        "Dana Boss",
        "--role",
        "admin",
        "--clinic",
        "Hilltop Clinic",
        "--password-stdin",
    ]
    result = run(args, env, stdin="correct-horse-battery\n")
    assert result.returncode == 0, result.stderr
    assert "created admin boss@clinic.example in 'Hilltop Clinic'" in result.stdout
    again = run(args, env, stdin="correct-horse-battery\n")
    assert again.returncode == 2
    assert "already exists" in again.stderr
    short = run([*args[:2], "x@clinic.example", *args[3:]], env, stdin="short\n")
    assert short.returncode == 2 and "password" in short.stderr


def test_bad_settings_stop_with_a_clear_message(database_url, tmp_path):
    env = _env(database_url, tmp_path, OPENCONSULT_PORT="eighty")
    result = run(["migrate"], env)
    assert result.returncode == 2
    assert "OPENCONSULT_PORT" in result.stderr


async def test_seed_demo_prints_a_visit_link_that_opens_check_in(database_url, tmp_path, client):
    env = _env(database_url, tmp_path, OPENCONSULT_SECRET_KEY=TEST_SECRET)
    first = run(["seed-demo"], env)
    assert first.returncode == 0, first.stderr
    # The short link the emails carry (/j/<code>), never the long signed token.
    assert "/join/" not in first.stdout
    link = re.search(r"(/j/[A-Za-z0-9_-]+)\s", first.stdout)
    assert link, first.stdout
    assert "Maria Garcia" in first.stdout or "Tomasz Nowak" in first.stdout
    again = run(["seed-demo"], env)
    assert link.group(1) in again.stdout  # the same visit, not a second one
    page = await client.get(link.group(1))
    assert page.status == 200
    assert "Check-in is open" in await page.text()

"""Shared fixtures: a fresh migrated database per test (SQLite file or PostgreSQL database),
the app from the real factory, and factories for clinics, staff and sessions.

Set DATABASE_URL (PostgreSQL) and REDIS_URL to run everything against those servers.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pyotp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import col

from app.accounts.models import StaffMfa
from app.core.auth import hash_password
from app.core.config import Settings, load_settings
from app.core.db import Database
from app.core.models import Clinic, Patient, Role, User, utcnow
from app.main import create_app
from app.migrations import upgrade
from app.web.keys import DATABASE
from tests.support.media_ports import media_port_settings
from tests.support.servers import server_env

PG_URL = os.environ.get("DATABASE_URL")
REDIS_URL = os.environ.get("REDIS_URL")
TEST_SECRET = "test-secret-" + "x" * 40
_counter = itertools.count()


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://").replace(
        "postgres://", "postgresql://"
    )
    if database is None:
        return dsn
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{database}"


def _sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


async def _pg_admin(sql: str) -> None:
    assert PG_URL
    conn = await asyncpg.connect(_asyncpg_dsn(PG_URL))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated once; each test gets a copy of it."""
    if PG_URL:
        name = f"oc_tmpl_{os.getpid()}_{secrets.token_hex(3)}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        url = _sqlalchemy_url(_asyncpg_dsn(PG_URL, name))
    else:
        path = tmp_path_factory.mktemp("template") / "template.db"
        url = f"sqlite+aiosqlite:///{path}"

    async def migrate() -> None:
        db = Database(url)
        await upgrade(db)
        await db.dispose()

    asyncio.run(migrate())
    yield url
    if PG_URL:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def database_url(template_database: str, tmp_path: Path) -> AsyncIterator[str]:
    if PG_URL:
        template = template_database.rpartition("/")[2]
        name = f"oc_t_{os.getpid()}_{next(_counter)}_{secrets.token_hex(2)}"
        await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        yield _sqlalchemy_url(_asyncpg_dsn(PG_URL, name))
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        source = Path(template_database.removeprefix("sqlite+aiosqlite:///"))
        target = tmp_path / "test.db"
        shutil.copyfile(source, target)
        yield f"sqlite+aiosqlite:///{target}"


@pytest.fixture
def process_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of real server processes (`app_server`) on this test's database."""
    return server_env(
        database_url, tmp_path / "data", redis_url=REDIS_URL, OPENCONSULT_SECRET_KEY=TEST_SECRET
    )


@pytest.fixture
def settings_factory(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "test",
            "secret_key": TEST_SECRET,
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "redis_key_prefix": f"octest:{uuid.uuid4().hex}:",
            "data_dir": tmp_path / "data",
        }
        if overrides.get("rtc_loopback") and not {"rtc_udp_port", "rtc_udp_ports"} & set(overrides):
            # A relay test: through the production configuration, one media port, by default.
            values.update(media_port_settings())
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return create_app(settings)


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]], app: web.Application
) -> TestClient:
    return await aiohttp_client(app)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """A handle on the test's database, apart from the app's own."""
    database = Database.from_settings(settings)
    yield database
    await database.dispose()


@dataclass
class StaffAccount:
    user: User
    password: str
    # Admins need a second factor to sign in: the factory enrols them with this TOTP secret.
    totp_secret: str | None = None

    def totp_code(self, at: float | None = None) -> str:
        """The code the person's authenticator app shows at `at` (now by default)."""
        assert self.totp_secret, "this account has no second factor"
        return pyotp.TOTP(self.totp_secret).at(time.time() if at is None else at)

    @property
    def id(self) -> uuid.UUID:
        return self.user.id

    @property
    def clinic_id(self) -> uuid.UUID:
        return self.user.clinic_id


class Factory:
    """Builds test data straight in the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def clinic(self, name: str | None = None, timezone: str = "America/New_York") -> Clinic:
        clinic = Clinic(name=name or f"Clinic {uuid.uuid4().hex[:8]}", timezone=timezone)
        async with self.db.session() as session:
            session.add(clinic)
            await session.commit()
        return clinic

    async def staff(
        self,
        role: Role,
        clinic: Clinic | None = None,
        *,
        password: str | None = None,
        mfa: bool | None = None,
    ) -> StaffAccount:
        """A staff member; admins (or anyone with `mfa=True`) come with TOTP set up."""
        clinic = clinic or await self.clinic()
        password = password or f"pw-{secrets.token_hex(8)}"
        user = User(
            clinic_id=clinic.id,
            email=f"{role.value}-{uuid.uuid4().hex[:8]}@clinic.example",
            full_name=f"Test {role.value.title()}",
            role=role,
            password_hash=hash_password(password),
        )
        async with self.db.session() as session:
            session.add(user)
            await session.commit()
        account = StaffAccount(user=user, password=password)
        if mfa if mfa is not None else role == Role.ADMIN:
            await self.enrol_mfa(account)
        return account

    async def enrol_mfa(self, account: StaffAccount) -> None:
        """Set up TOTP for the account as its enrolment page would."""
        account.totp_secret = pyotp.random_base32()
        async with self.db.session() as session:
            session.add(
                StaffMfa(user_id=account.id, secret=account.totp_secret, enabled_at=utcnow())
            )
            await session.commit()

    async def patient(self, clinic: Clinic | None = None, **fields: Any) -> Patient:
        clinic = clinic or await self.clinic()
        values: dict[str, Any] = {
            "given_name": "Maria",
            "family_name": f"Garcia-{uuid.uuid4().hex[:6]}",
            "birth_date": date(1984, 3, 12),
            "email": "maria@patients.example",
            "phone": "+1 555 0100",
            "preferred_language": "es",
        }
        values.update(fields)
        patient = Patient(clinic_id=clinic.id, **values)
        async with self.db.session() as session:
            session.add(patient)
            await session.commit()
        return patient


@pytest.fixture
def factory(db: Database) -> Factory:
    return Factory(db)


async def fresh_totp_code(db: Database, account: StaffAccount) -> str:
    """The current code, usable even if this account signed in moments ago: a code is accepted
    once, and tests sign one admin in several times within one 30-second step, which a person
    cannot. So the record of the used step is cleared first (a test-only shortcut)."""
    async with db.session() as session:
        await session.exec(
            sa.update(StaffMfa).where(col(StaffMfa.user_id) == account.id).values(last_step=None)
        )
        await session.commit()
    return account.totp_code()


async def bearer_login(client: TestClient, account: StaffAccount) -> dict[str, str]:
    """Sign in through the API (with the second factor when the account has one); return
    headers that authenticate as a Bearer client."""
    resp = await client.post(
        "/api/auth/login", json={"email": account.user.email, "password": account.password}
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    if body.get("mfa") == "verify":
        code = await fresh_totp_code(client.app[DATABASE], account)
        resp = await client.post(
            "/api/auth/mfa", json={"mfa_token": body["mfa_token"], "code": code}
        )
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    client.session.cookie_jar.clear()
    return {"Authorization": f"Bearer {body['token']}"}


async def cookie_login(client: TestClient, account: StaffAccount) -> str:
    """Sign in through the login form (and the code form when the account has a second
    factor); the client keeps the cookie. Returns the CSRF token."""
    resp = await client.post(
        "/login",
        data={"email": account.user.email, "password": account.password},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    if resp.headers["Location"].startswith("/login/mfa"):
        code = await fresh_totp_code(client.app[DATABASE], account)
        resp = await client.post("/login/mfa", data={"code": code}, allow_redirects=False)
        assert resp.status == 303, await resp.text()
    me = await client.get("/api/me")
    assert me.status == 200
    token: str = (await me.json())["csrf_token"]
    return token

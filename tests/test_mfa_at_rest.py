"""Staff TOTP secrets are sealed at rest with the note keys: the database row shows no secret,
and codes from the authenticator app still sign in (secrets stored before read as they are
until key rotation seals them)."""

from __future__ import annotations

from pathlib import Path

import pyotp
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from sqlmodel import col

from app.accounts.models import StaffMfa
from app.core.config import Settings
from app.core.crypto import Keyring
from app.core.db import Database
from app.core.models import Role
from app.records.rotation import rotate_note_key
from tests.conftest import Factory, StaffAccount


async def raw_secret(db: Database, account: StaffAccount) -> str:
    async with db.engine.connect() as conn:
        value = (
            await conn.execute(
                sa.text("SELECT secret FROM staff_mfa WHERE user_id = :id"),
                {"id": account.id.hex if db.is_sqlite else account.id},
            )
        ).scalar_one()
    return str(value)


async def clear_used_step(db: Database, account: StaffAccount) -> None:
    # A code is accepted once; the test signs in twice within one 30-second step.
    async with db.session() as session:
        await session.exec(
            sa.update(StaffMfa).where(col(StaffMfa.user_id) == account.id).values(last_step=None)
        )
        await session.commit()


async def sign_in_with_code(client: TestClient, account: StaffAccount, code: str) -> int:
    first = await client.post(
        "/api/auth/login", json={"email": account.user.email, "password": account.password}
    )
    assert first.status == 200, await first.text()
    token = (await first.json())["mfa_token"]
    resp = await client.post("/api/auth/mfa", json={"mfa_token": token, "code": code})
    return resp.status


async def test_an_enrolled_secret_is_sealed_in_the_row_and_codes_still_sign_in(
    client: TestClient, factory: Factory, db: Database, settings: Settings
):
    admin = await factory.staff(Role.ADMIN, mfa=False)
    first = await client.post(
        "/api/auth/login", json={"email": admin.user.email, "password": admin.password}
    )
    body = await first.json()
    assert body["mfa"] == "enrol"
    enrol = await client.post("/api/auth/mfa/enrol", json={"mfa_token": body["mfa_token"]})
    assert enrol.status == 200, await enrol.text()
    secret = (await enrol.json())["secret"]

    raw = await raw_secret(db, admin)
    assert secret not in raw and raw.startswith("oc1s:"), raw
    if db.is_sqlite:
        path = Path(settings.resolved_database_url.removeprefix("sqlite+aiosqlite:///"))
        for part in path.parent.glob(path.name + "*"):  # the file, its WAL and shared memory
            assert secret.encode() not in part.read_bytes(), part.name

    confirm = await client.post(
        "/api/auth/mfa/enrol/confirm",
        json={"mfa_token": body["mfa_token"], "code": pyotp.TOTP(secret).now()},
    )
    assert confirm.status == 200, await confirm.text()
    await clear_used_step(db, admin)
    assert await sign_in_with_code(client, admin, pyotp.TOTP(secret).now()) == 200


async def test_a_secret_stored_before_sealing_still_signs_in_and_rotation_seals_it(
    client: TestClient, factory: Factory, db: Database, settings: Settings
):
    admin = await factory.staff(Role.ADMIN)
    assert admin.totp_secret
    async with db.session() as session:  # as an older release stored it
        await session.exec(
            sa.update(StaffMfa)
            .where(col(StaffMfa.user_id) == admin.id)
            .values(secret=sa.type_coerce(admin.totp_secret, sa.Text))
        )
        await session.commit()
    assert await raw_secret(db, admin) == admin.totp_secret
    assert await sign_in_with_code(client, admin, admin.totp_code()) == 200

    report = await rotate_note_key(db, Keyring.from_settings(settings))
    assert report.mfa_secrets == 1
    raw = await raw_secret(db, admin)
    assert admin.totp_secret not in raw and raw.startswith("oc1s:"), raw
    await clear_used_step(db, admin)
    assert await sign_in_with_code(client, admin, admin.totp_code()) == 200

"""The password rule (ASVS 6.2) wherever a password is chosen, and changing one's password."""

from __future__ import annotations

import subprocess
import sys

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from app.accounts.passwords import password_problem
from app.core.db import Database
from app.core.models import AuditEvent, Role
from tests.conftest import Factory, StaffAccount, bearer_login, cookie_login

PASSPHRASE = "a quiet harbour, seven lanterns and one late ferry to the islands " * 2  # 134 chars

WEAK = [
    "password1234",  # the example: long enough, but one of the most common
    "PASSWORD1234",  # the list is checked without regard to case
    "short-pass",  # under 12 characters
    "aaaaaaaaaaaa",  # repeats
    "qwertyuiopas",  # a keyboard walk
    "123456789012",
]
STRONG = [
    "correct horse battery staple",  # only lowercase and spaces: no composition rules
    "demo-admin-password",  # the demo's passwords pass
    "bench-password-123",
    "ça ne fait rien, mon ami",
    PASSPHRASE,
    "x7#" + "é" * 3 + "lorem-ipsum-dolor",
]


@pytest.mark.parametrize("password", WEAK)
def test_weak_passwords_are_refused_with_a_reason(password: str) -> None:
    problem = password_problem(password)
    assert problem and problem.endswith(".")


@pytest.mark.parametrize("password", STRONG)
def test_long_and_uncommon_passwords_pass_without_composition_rules(password: str) -> None:
    assert password_problem(password) is None


def test_the_persons_own_email_and_name_do_not_make_a_password() -> None:
    email, name = "ada.okafor@riverside.example", "Ada Okafor"
    assert password_problem("riverside-okafor-2026", context=[email, name]) is not None
    assert password_problem("riverside-okafor-2026") is None


def test_a_password_of_1024_characters_is_fine_and_longer_is_not() -> None:
    assert password_problem((PASSPHRASE * 8)[:1024]) is None
    assert password_problem("x" + (PASSPHRASE * 8)[:1024]) is not None


async def _create(client: TestClient, headers: dict[str, str], password: str):
    return await client.post(
        "/api/users",
        json={
            "email": f"new-{len(password)}@clinic.example",
            "full_name": "Dr. New",
            "role": "provider",
            "password": password,
        },
        headers=headers,
    )


async def test_an_admin_cannot_give_a_new_user_a_common_password(
    client: TestClient, factory: Factory
):
    headers = await bearer_login(client, await factory.staff(Role.ADMIN))
    resp = await _create(client, headers, "password1234")
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_input"
    assert error["fields"] == {
        "password": "This is one of the most common passwords; choose another."
    }
    resp = await _create(client, headers, PASSPHRASE)
    assert resp.status == 201
    login = await client.post(
        "/api/auth/login",
        json={"email": f"new-{len(PASSPHRASE)}@clinic.example", "password": PASSPHRASE},
    )
    assert login.status == 200


def test_the_command_line_refuses_a_common_password(database_url: str, tmp_path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "create-user",
            "--email",
            "boss@clinic.example",
            "--name",
            "Boss",
            "--role",
            "admin",
            "--clinic",
            "Hilltop Clinic",
            "--password-stdin",
        ],
        input="password1234\n",
        capture_output=True,
        text=True,
        env={
            "DATABASE_URL": database_url,
            "OPENCONSULT_DATA_DIR": str(tmp_path),
            "OPENCONSULT_ENV": "test",
            "OPENCONSULT_SECRET_KEY": "s" * 40,
            "PATH": "/usr/bin:/bin",
        },
        timeout=120,
    )
    assert result.returncode == 2
    assert "password: This is one of the most common passwords" in result.stderr


async def _events(db: Database, action: str) -> list[AuditEvent]:
    async with db.session() as session:
        return list(
            (await session.exec(select(AuditEvent).where(AuditEvent.action == action))).all()
        )


async def test_changing_ones_password_by_api_ends_the_other_sessions(
    client: TestClient, factory: Factory, db: Database
):
    account = await factory.staff(Role.SCHEDULER)
    elsewhere = await bearer_login(client, account)
    here = await bearer_login(client, account)
    change = "/api/me/password"
    new = "a new password for the new year"

    resp = await client.post(
        change, json={"current_password": "not-it-at-all", "new_password": new}, headers=here
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["fields"] == {"current_password": "not right"}
    resp = await client.post(
        change,
        json={"current_password": account.password, "new_password": "password1234"},
        headers=here,
    )
    assert resp.status == 400 and "new_password" in (await resp.json())["error"]["fields"]
    assert (await client.post(change, json={"new_password": new})).status == 401

    resp = await client.post(
        change, json={"current_password": account.password, "new_password": new}, headers=here
    )
    assert resp.status == 200
    renewed = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    assert (await client.get("/api/me", headers=renewed)).status == 200
    assert (await client.get("/api/me", headers=elsewhere)).status == 401
    assert (await client.get("/api/me", headers=here)).status == 401  # the old token too
    old = await client.post(
        "/api/auth/login", json={"email": account.user.email, "password": account.password}
    )
    assert old.status == 401
    await bearer_login(client, StaffAccount(user=account.user, password=new))
    events = await _events(db, "auth.password_change")
    assert [(e.actor_id, e.outcome) for e in events] == [(str(account.id), "success")]


async def test_wrong_current_passwords_count_toward_the_lock(client: TestClient, factory: Factory):
    account = await factory.staff(Role.PROVIDER)
    headers = await bearer_login(client, account)
    statuses = []
    for _ in range(5):
        resp = await client.post(
            "/api/me/password",
            json={"current_password": "guess-guess", "new_password": "whatever it is now"},
            headers=headers,
        )
        statuses.append(resp.status)
    assert statuses == [400, 400, 400, 400, 423]


async def test_the_security_page_changes_the_password_and_keeps_this_session(
    client: TestClient, factory: Factory
):
    account = await factory.staff(Role.PROVIDER)
    elsewhere = await bearer_login(client, account)
    csrf = await cookie_login(client, account)
    page = await (await client.get("/account/security")).text()
    assert '<label for="current_password">' in page and '<label for="new_password">' in page
    assert 'autocomplete="new-password"' in page and 'maxlength="1024"' in page
    assert "paste" not in page.replace("pasting from a password manager works", "")

    weak = await client.post(
        "/account/password",
        data={
            "current_password": account.password,
            "new_password": "password1234",
            "csrf_token": csrf,
        },
    )
    assert weak.status == 400
    text = await weak.text()
    assert 'role="alert"' in text and "most common passwords" in text
    assert 'id="new_password"' in text and 'aria-invalid="true"' in text

    resp = await client.post(
        "/account/password",
        data={"current_password": account.password, "new_password": PASSPHRASE, "csrf_token": csrf},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/account/security?changed=1"
    done = await client.get("/account/security?changed=1")
    assert done.status == 200 and "Your password is changed" in await done.text()
    assert (await client.get("/api/me", headers=elsewhere)).status == 401
    # Without the page's CSRF token nothing changes.
    fresh_csrf = (await (await client.get("/api/me")).json())["csrf_token"]
    assert fresh_csrf != csrf
    forged = await client.post(
        "/account/password",
        data={"current_password": PASSPHRASE, "new_password": "another long passphrase here"},
    )
    assert forged.status == 403

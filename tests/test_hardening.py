"""Small things a security review checks first: redirects after sign-in stay on this site, no
version banner, HSTS in production, and a session cookie that lives as long as its token."""

from __future__ import annotations

import time

import jwt
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from app.core.auth import issue_session_token
from app.core.config import Settings
from app.core.models import Role
from app.main import create_app
from tests.conftest import Factory
from tests.test_config import TEST_AUDIT_KEYS, TEST_NOTE_KEYS

# What browsers read as `//evil.example` (another host): they drop tabs and newlines inside a
# URL, trim control characters and spaces, and read a backslash as a slash.
FOREIGN_NEXT = [
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/\\evil.example",
    "/\\/evil.example",
    "\\\\evil.example",
    "/\t\\evil.example",
    " //evil.example",
    "\x01//evil.example",
    "/\x0b/evil.example",
    "//evil.example",
    "https://evil.example/",
    "https:evil.example",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("target", FOREIGN_NEXT)
async def test_login_never_redirects_off_the_site(
    client: TestClient, factory: Factory, target: str
) -> None:
    # A scheduler signs in with a password alone (an admin's `next` goes through the code step,
    # tests/test_login.py::test_next_is_kept_through_the_code_step_and_still_checked).
    account = await factory.staff(Role.SCHEDULER)
    resp = await client.post(
        "/login",
        data={"email": account.user.email, "password": account.password, "next": target},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/scheduler"


async def test_login_still_follows_a_path_of_this_site(client: TestClient, factory: Factory):
    account = await factory.staff(Role.SCHEDULER)
    for target in ("/admin?tab=audit", "/records/patients/x#notes", "/%09/stays-here"):
        client.session.cookie_jar.clear()
        resp = await client.post(
            "/login",
            data={"email": account.user.email, "password": account.password, "next": target},
            allow_redirects=False,
        )
        assert resp.headers["Location"] == target


async def _responses(client: TestClient) -> list[ClientResponse]:
    """One of each kind: page, JSON, error page, JSON error, static file, Socket.IO."""
    return [
        await client.get(path)
        for path in (
            "/login",
            "/healthz",
            "/nowhere",
            "/api/me",
            "/static/css/app.css",
            "/socket.io/?EIO=4&transport=polling",
        )
    ]


async def test_no_version_banner_and_no_hsts_in_development(client: TestClient) -> None:
    for resp in await _responses(client):
        server = resp.headers.get("Server", "")
        assert "aiohttp" not in server and "Python" not in server, (resp, server)
        assert "Strict-Transport-Security" not in resp.headers


async def test_production_sends_hsts_everywhere(settings_factory, aiohttp_client) -> None:
    app = create_app(
        settings_factory(env="production", note_keys=TEST_NOTE_KEYS, audit_keys=TEST_AUDIT_KEYS)
    )
    client = await aiohttp_client(app)
    for resp in await _responses(client):
        hsts = resp.headers.get("Strict-Transport-Security", "")
        assert hsts.startswith("max-age=31536000"), resp
        assert "aiohttp" not in resp.headers.get("Server", "")


def _cookie_lifetime(resp: ClientResponse) -> tuple[int, int]:
    """The session cookie's max-age, and how long its token has left."""
    cookie = resp.cookies["oc_session"]
    claims = jwt.decode(cookie.value, options={"verify_signature": False})
    return int(cookie["max-age"]), claims["exp"] - int(time.time())


async def test_the_session_cookie_lives_as_long_as_its_token(
    client: TestClient, factory: Factory, settings: Settings
) -> None:
    account = await factory.staff(Role.PROVIDER)
    idle = settings.session_idle_minutes * 60
    credentials = {"email": account.user.email, "password": account.password}
    for resp in (
        await client.post("/login", data=credentials, allow_redirects=False),
        await client.post("/api/auth/login", json=credentials),
    ):
        max_age, token_left = _cookie_lifetime(resp)
        assert abs(max_age - token_left) <= 5 and max_age <= idle

    # A session close to its idle end is renewed on the next request: the new cookie too.
    client.session.cookie_jar.clear()
    now = int(time.time())
    token, _ = issue_session_token(
        settings,
        user_id=account.id,
        clinic_id=account.clinic_id,
        role=account.user.role,
        now=now - idle + 60,
    )
    resp = await client.get("/api/me", cookies={"oc_session": token})
    assert resp.status == 200
    max_age, token_left = _cookie_lifetime(resp)
    assert abs(max_age - token_left) <= 5 and idle - 60 <= max_age <= idle

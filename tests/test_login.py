"""Signing in and out: pages, JSON API, lockout, rate limits, and their audit events."""

from __future__ import annotations

import time

import jwt
from sqlmodel import select

from app.core.auth import JWT_ALGORITHM, JWT_AUDIENCE, JWT_ISSUER
from app.core.models import AuditEvent, Clinic, Role
from app.main import create_app
from tests.conftest import TEST_SECRET, Factory, bearer_login, cookie_login, fresh_totp_code


async def _events(db, action: str) -> list[AuditEvent]:
    async with db.session() as session:
        rows = await session.exec(select(AuditEvent).where(AuditEvent.action == action))
        return list(rows.all())


async def test_login_page_renders_an_accessible_form(client):
    resp = await client.get("/login")
    assert resp.status == 200
    html = await resp.text()
    assert '<label for="email">' in html and '<label for="password">' in html
    assert 'autocomplete="current-password"' in html


async def test_form_login_lands_on_the_role_page_and_logout_ends_it(client, factory: Factory):
    for role, landing in (
        (Role.ADMIN, "/admin"),
        (Role.SCHEDULER, "/scheduler"),
        (Role.PROVIDER, "/provider"),
    ):
        account = await factory.staff(role)
        resp = await client.post(
            "/login",
            data={"email": account.user.email, "password": account.password},
            allow_redirects=False,
        )
        assert resp.status == 303
        if role == Role.ADMIN:  # admins give a code from their phone too
            assert resp.headers["Location"].startswith("/login/mfa")
            assert "oc_session" not in resp.cookies
            resp = await client.post(
                "/login/mfa", data={"code": account.totp_code()}, allow_redirects=False
            )
            assert resp.status == 303
        assert resp.headers["Location"] == landing
        cookie = resp.cookies["oc_session"]
        assert cookie["httponly"] and cookie["samesite"] == "Lax"
        page = await client.get(landing)
        assert page.status == 200
        assert account.user.full_name in await page.text()
        csrf = (await (await client.get("/api/me")).json())["csrf_token"]
        out = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
        assert out.headers["Location"] == "/login?signed_out=1"
        assert (await client.get("/api/me")).status == 401


async def test_login_follows_a_local_next_but_never_an_outside_one(client, factory: Factory):
    account = await factory.staff(Role.SCHEDULER)
    data = {"email": account.user.email, "password": account.password}
    resp = await client.post(
        "/login", data={**data, "next": "/scheduler?tab=week"}, allow_redirects=False
    )
    assert resp.headers["Location"] == "/scheduler?tab=week"
    client.session.cookie_jar.clear()
    resp = await client.post(
        "/login", data={**data, "next": "//evil.example/"}, allow_redirects=False
    )
    assert resp.headers["Location"] == "/scheduler"


async def test_next_is_kept_through_the_code_step_and_still_checked(client, factory: Factory, db):
    account = await factory.staff(Role.ADMIN)
    data = {"email": account.user.email, "password": account.password}
    for target, landing in (
        ("/admin?tab=audit", "/admin?tab=audit"),
        ("//evil.example/", "/admin"),
    ):
        client.session.cookie_jar.clear()
        resp = await client.post("/login", data={**data, "next": target}, allow_redirects=False)
        step = await client.get(resp.headers["Location"])
        assert f'name="next" value="{target}"' in await step.text()
        code = await fresh_totp_code(db, account)
        resp = await client.post(
            "/login/mfa", data={"code": code, "next": target}, allow_redirects=False
        )
        assert resp.headers["Location"] == landing


async def test_wrong_password_says_so_without_revealing_which_part(client, factory: Factory, db):
    account = await factory.staff(Role.PROVIDER)
    wrong = await client.post("/login", data={"email": account.user.email, "password": "nope"})
    unknown = await client.post("/login", data={"email": "who@x.example", "password": "nope"})
    assert wrong.status == unknown.status == 401
    assert "Email or password is incorrect." in await wrong.text()
    assert "Email or password is incorrect." in await unknown.text()
    failures = [e for e in await _events(db, "auth.login") if e.outcome == "failure"]
    assert len(failures) == 2


async def test_api_login_returns_a_bearer_token(client, factory: Factory, db):
    account = await factory.staff(Role.SCHEDULER)
    headers = await bearer_login(client, account)
    me = await (await client.get("/api/me", headers=headers)).json()
    assert me["user"]["role"] == "scheduler"
    assert me["clinic"]["id"] == str(account.clinic_id)
    success = [e for e in await _events(db, "auth.login") if e.outcome == "success"]
    assert success[-1].actor_id == str(account.id)


async def test_malformed_login_bodies_name_the_field(client):
    resp = await client.post("/api/auth/login", json={"email": "not-an-email", "password": "x"})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["code"] == "invalid_input"
    assert "email" in body["error"]["fields"]
    resp = await client.post("/api/auth/login", json={"email": "a@b.example"})
    assert "password" in (await resp.json())["error"]["fields"]
    resp = await client.post(
        "/api/auth/login", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["fields"] == {"body": "malformed JSON"}
    resp = await client.post("/api/auth/login", json=["a", "list"])
    assert resp.status == 400


async def test_brute_force_locks_the_account_but_says_no_more_than_a_wrong_password(
    client, factory: Factory, db
):
    account = await factory.staff(Role.PROVIDER)
    answers = []
    for _ in range(5):
        resp = await client.post(
            "/api/auth/login", json={"email": account.user.email, "password": "guess-guess"}
        )
        answers.append((resp.status, await resp.json()))
    assert {status for status, _ in answers} == {401}
    # Even the right password is refused while locked: with the very answer of a wrong one.
    resp = await client.post(
        "/api/auth/login", json={"email": account.user.email, "password": account.password}
    )
    assert (resp.status, await resp.json()) == answers[0]
    assert (await resp.json())["error"] == {
        "code": "not_authenticated",
        "message": "Email or password is incorrect.",
    }
    page = await client.post(
        "/login", data={"email": account.user.email, "password": account.password}
    )
    assert page.status == 401
    assert "Email or password is incorrect." in await page.text()
    assert "locked after" not in await page.text()
    # The trail knows why (for the clinic's admins), and the lock still holds.
    locked_events = [
        e for e in await _events(db, "auth.login") if (e.detail or "").startswith("account_locked")
    ]
    assert len(locked_events) == 3  # the fifth guess, then the right password twice


async def test_admin_unlocks_a_locked_account(client, factory: Factory):
    admin = await factory.staff(Role.ADMIN)
    account = await factory.staff(Role.PROVIDER, await _clinic_of(factory, admin))
    for _ in range(5):
        await client.post(
            "/api/auth/login", json={"email": account.user.email, "password": "bad-bad"}
        )
    headers = await bearer_login(client, admin)
    user = await (await client.get(f"/api/users/{account.id}", headers=headers)).json()
    assert user["locked_until"] is not None
    resp = await client.post(f"/api/users/{account.id}/unlock", headers=headers)
    assert resp.status == 200
    assert (await resp.json())["locked_until"] is None
    await bearer_login(client, account)


async def _clinic_of(factory: Factory, account):
    async with factory.db.session() as session:
        return await session.get(Clinic, account.clinic_id)


async def test_many_attempts_from_one_address_are_rate_limited(settings_factory, aiohttp_client):
    client = await aiohttp_client(create_app(settings_factory(login_max_per_address=3)))
    statuses = []
    for i in range(4):
        resp = await client.post(
            "/api/auth/login", json={"email": f"u{i}@x.example", "password": "whatever"}
        )
        statuses.append(resp.status)
    assert statuses == [401, 401, 401, 429]
    assert int(resp.headers["Retry-After"]) > 0


async def test_cookie_session_slides_forward(client, factory: Factory):
    """A cookie session near the end of its idle lifetime gets a fresh cookie on use."""
    account = await factory.staff(Role.ADMIN)
    now = int(time.time())
    old = jwt.encode(
        {
            "sub": str(account.id),
            "clinic": str(account.clinic_id),
            "role": "admin",
            "jti": "j" * 32,
            "iat": now - 1700,
            "auth_time": now - 1700,
            "exp": now + 100,
            "aud": JWT_AUDIENCE,
            "iss": JWT_ISSUER,
        },
        TEST_SECRET,
        JWT_ALGORITHM,
    )
    resp = await client.get("/api/me", cookies={"oc_session": old})
    assert resp.status == 200
    fresh = resp.cookies["oc_session"].value
    claims = jwt.decode(fresh, TEST_SECRET, [JWT_ALGORITHM], audience=JWT_AUDIENCE)
    assert claims["exp"] > now + 1000
    assert claims["jti"] == "j" * 32 and claims["auth_time"] == now - 1700


async def test_cookie_login_then_logout_by_api(client, factory: Factory):
    account = await factory.staff(Role.ADMIN)
    csrf = await cookie_login(client, account)
    resp = await client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
    assert resp.status == 204
    assert (await client.get("/api/me")).status == 401

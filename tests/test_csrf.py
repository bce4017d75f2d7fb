"""Unsafe requests riding on the session cookie need the session's CSRF token."""

from __future__ import annotations

from app.core.models import Role
from tests.conftest import Factory, bearer_login, cookie_login

NEW_USER = {
    "email": "new@clinic.example",
    "full_name": "New Person",
    "role": "provider",
    "password": "a-long-enough-password",
}


async def test_cookie_post_without_csrf_token_is_403(client, factory: Factory):
    admin = await factory.staff(Role.ADMIN)
    await cookie_login(client, admin)
    resp = await client.post("/api/users", json=NEW_USER)
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "csrf_failed"
    assert (await client.get("/api/users")).status == 200  # reads need no token


async def test_cookie_post_with_a_wrong_or_foreign_token_is_403(client, factory: Factory):
    admin = await factory.staff(Role.ADMIN)
    other = await factory.staff(Role.ADMIN)
    foreign = await cookie_login(client, other)
    client.session.cookie_jar.clear()
    await cookie_login(client, admin)
    for token in ("0" * 64, foreign):
        resp = await client.post("/api/users", json=NEW_USER, headers={"X-CSRF-Token": token})
        assert resp.status == 403


async def test_cookie_post_with_the_token_works(client, factory: Factory):
    admin = await factory.staff(Role.ADMIN)
    csrf = await cookie_login(client, admin)
    resp = await client.post("/api/users", json=NEW_USER, headers={"X-CSRF-Token": csrf})
    assert resp.status == 201


async def test_logout_form_without_token_is_refused(client, factory: Factory):
    admin = await factory.staff(Role.ADMIN)
    await cookie_login(client, admin)
    resp = await client.post("/logout", data={})
    assert resp.status == 403
    assert (await client.get("/api/me")).status == 200  # still signed in


async def test_cross_site_origin_is_refused_even_for_login(client, factory: Factory):
    admin = await factory.staff(Role.ADMIN)
    resp = await client.post(
        "/login",
        data={"email": admin.user.email, "password": admin.password},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert resp.status == 403


async def test_bearer_clients_need_no_csrf_token(client, factory: Factory):
    admin = await factory.staff(Role.ADMIN)
    headers = await bearer_login(client, admin)
    resp = await client.post("/api/users", json=NEW_USER, headers=headers)
    assert resp.status == 201


async def test_fetch_metadata_from_another_site_is_refused(client, factory: Factory):
    admin = await factory.staff(Role.ADMIN)
    csrf = await cookie_login(client, admin)
    headers = {"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site", "Origin": "null"}
    resp = await client.post("/api/users", json=NEW_USER, headers=headers)
    assert resp.status == 403
    headers["Sec-Fetch-Site"] = "same-origin"
    resp = await client.post("/api/users", json=NEW_USER, headers=headers)
    assert resp.status == 201

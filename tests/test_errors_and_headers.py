"""One error convention and the security headers, on every kind of response."""

from __future__ import annotations

import pytest

from app.core.models import Role
from app.main import create_app
from tests.conftest import Factory, bearer_login

HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _assert_security_headers(resp):
    for name, value in HEADERS.items():
        assert resp.headers[name] == value
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "camera=(self)" in resp.headers["Permissions-Policy"]
    assert "microphone=(self)" in resp.headers["Permissions-Policy"]


@pytest.mark.parametrize(
    "method,path,status,code",
    [
        ("GET", "/api/nothing-here", 404, "not_found"),
        ("DELETE", "/api/me", 405, "method_not_allowed"),
        ("GET", "/api/users/not-a-uuid", 401, "not_authenticated"),
    ],
)
async def test_api_errors_are_json(client, method, path, status, code):
    resp = await client.request(method, path)
    assert resp.status == status
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    _assert_security_headers(resp)


async def test_pages_get_an_error_page(client):
    resp = await client.get("/no/such/page")
    assert resp.status == 404
    assert resp.content_type == "text/html"
    assert "Not found" in await resp.text()
    _assert_security_headers(resp)


async def test_pages_without_a_session_go_to_login(client):
    resp = await client.get("/admin", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/login?next=/admin"


async def test_oversized_body_is_413(settings_factory, aiohttp_client):
    client = await aiohttp_client(create_app(settings_factory(max_body_bytes=4096)))
    resp = await client.post(
        "/api/auth/login", data=b"x" * 10_000, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "payload_too_large"


async def test_wrong_content_type_and_bad_ids_are_4xx(client, factory: Factory):
    admin = await factory.staff(Role.ADMIN)
    headers = await bearer_login(client, admin)
    resp = await client.post("/api/users", data="email=x", headers=headers)
    assert resp.status == 400
    resp = await client.get("/api/users/not-a-uuid", headers=headers)
    assert resp.status == 404
    resp = await client.get("/api/audit-events?limit=abc", headers=headers)
    assert resp.status == 400
    assert "limit" in (await resp.json())["error"]["fields"]


async def test_field_level_messages_for_bad_user(client, factory: Factory):
    admin = await factory.staff(Role.ADMIN)
    headers = await bearer_login(client, admin)
    resp = await client.post(
        "/api/users",
        json={"email": "x@y.example", "full_name": "", "role": "surgeon", "password": "short"},
        headers=headers,
    )
    assert resp.status == 400
    fields = (await resp.json())["error"]["fields"]
    assert set(fields) == {"full_name", "role", "password"}
    resp = await client.post("/api/users", json={"unexpected": 1}, headers=headers)
    assert "unexpected" in (await resp.json())["error"]["fields"]


async def test_static_and_health_get_headers_too(client):
    for path in ("/static/css/app.css", "/healthz", "/login"):
        resp = await client.get(path)
        assert resp.status == 200
        _assert_security_headers(resp)
    assert (await client.get("/api/openapi.json")).headers["Cache-Control"] == "no-store"


async def test_readyz_reports_the_database(client):
    resp = await client.get("/readyz")
    assert resp.status == 200
    body = await resp.json()
    assert body["checks"]["database"] == "ok"


async def test_readyz_is_503_when_redis_is_unreachable(settings_factory, aiohttp_client):
    client = await aiohttp_client(create_app(settings_factory(REDIS_URL="redis://127.0.0.1:1/0")))
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["checks"]["redis"].startswith("unreachable")

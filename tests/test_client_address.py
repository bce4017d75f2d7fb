"""The client address in the audit trail and rate limits: proxies are believed only if trusted."""

from __future__ import annotations

from sqlmodel import col, select

from app.core.models import AuditEvent
from app.main import create_app


async def _last_login_addr(db) -> str | None:
    async with db.session() as session:
        rows = await session.exec(select(AuditEvent).order_by(col(AuditEvent.id).desc()))
        return rows.first().client_addr


async def _failed_login(client, forwarded: str) -> int:
    resp = await client.post(
        "/api/auth/login",
        json={"email": "nobody@x.example", "password": "wrong"},
        headers={"X-Forwarded-For": forwarded},
    )
    return resp.status


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(client, db):
    assert await _failed_login(client, "203.0.113.7") == 401
    assert await _last_login_addr(db) == "127.0.0.1"


async def test_trusted_proxy_names_the_client(settings_factory, aiohttp_client, db):
    client = await aiohttp_client(
        create_app(
            settings_factory(trusted_proxies="127.0.0.1, 10.0.0.0/8", login_max_per_address=2)
        )
    )
    # The client put a fake first hop; the proxies appended the real one and themselves.
    assert await _failed_login(client, "198.51.100.1, 203.0.113.7, 10.1.2.3") == 401
    assert await _last_login_addr(db) == "203.0.113.7"
    # Rate limits count per real client, not per proxy.
    assert await _failed_login(client, "203.0.113.7") == 401
    assert await _failed_login(client, "203.0.113.7") == 429
    assert await _failed_login(client, "203.0.113.8") == 401

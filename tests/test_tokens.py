"""Session tokens: every forged, stale or revoked token is refused with 401."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import jwt
import pytest

from app.core.auth import JWT_ALGORITHM, JWT_AUDIENCE, JWT_ISSUER, DatabaseDenylist
from app.core.models import Role, utcnow
from tests.conftest import TEST_SECRET, Factory, bearer_login


def _claims(account, **overrides):
    now = int(time.time())
    claims = {
        "sub": str(account.id),
        "clinic": str(account.clinic_id),
        "role": account.user.role.value,
        "jti": "t" * 32,
        "iat": now,
        "auth_time": now,
        "exp": now + 600,
        "aud": JWT_AUDIENCE,
        "iss": JWT_ISSUER,
    }
    claims.update(overrides)
    return claims


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def _me_status(client, token: str) -> int:
    resp = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    if resp.status == 401:
        body = await resp.json()
        assert body["error"]["code"] == "not_authenticated"
    return resp.status


async def test_valid_token_is_accepted(client, factory: Factory):
    account = await factory.staff(Role.PROVIDER)
    token = jwt.encode(_claims(account), TEST_SECRET, algorithm=JWT_ALGORITHM)
    assert await _me_status(client, token) == 200


async def test_alg_none_is_refused(client, factory: Factory):
    account = await factory.staff(Role.ADMIN)
    token = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims(account)) + "."
    assert await _me_status(client, token) == 401


async def test_wrong_signature_is_refused(client, factory: Factory):
    account = await factory.staff(Role.ADMIN)
    token = jwt.encode(_claims(account), "another-secret-" + "y" * 40, algorithm=JWT_ALGORITHM)
    assert await _me_status(client, token) == 401


async def test_wrong_audience_and_issuer_are_refused(client, factory: Factory):
    account = await factory.staff(Role.ADMIN)
    for claims in (_claims(account, aud="someone-else"), _claims(account, iss="evil")):
        token = jwt.encode(claims, TEST_SECRET, algorithm=JWT_ALGORITHM)
        assert await _me_status(client, token) == 401


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_other_algorithm_is_refused(client, factory: Factory):
    account = await factory.staff(Role.ADMIN)
    token = jwt.encode(_claims(account), TEST_SECRET, algorithm="HS512")
    assert await _me_status(client, token) == 401


async def test_expired_token_is_refused_with_a_clear_message(client, factory: Factory):
    account = await factory.staff(Role.ADMIN)
    past = int(time.time()) - 3600
    token = jwt.encode(
        _claims(account, iat=past, auth_time=past, exp=past + 60), TEST_SECRET, JWT_ALGORITHM
    )
    resp = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 401
    assert "expired" in (await resp.json())["error"]["message"]


async def test_absolute_lifetime_ends_a_refreshed_session(client, factory: Factory):
    account = await factory.staff(Role.ADMIN)
    long_ago = int(time.time()) - 13 * 3600  # default absolute lifetime: 12 h
    token = jwt.encode(_claims(account, auth_time=long_ago), TEST_SECRET, JWT_ALGORITHM)
    assert await _me_status(client, token) == 401


async def test_missing_claims_are_refused(client, factory: Factory):
    account = await factory.staff(Role.ADMIN)
    claims = _claims(account)
    del claims["jti"]
    assert await _me_status(client, jwt.encode(claims, TEST_SECRET, JWT_ALGORITHM)) == 401


async def test_token_used_after_logout_is_refused(client, factory: Factory):
    account = await factory.staff(Role.SCHEDULER)
    headers = await bearer_login(client, account)
    assert (await client.get("/api/me", headers=headers)).status == 200
    assert (await client.post("/api/auth/logout", headers=headers)).status == 204
    resp = await client.get("/api/me", headers=headers)
    assert resp.status == 401
    assert "signed out" in (await resp.json())["error"]["message"]


async def test_deactivated_user_loses_access(client, factory: Factory, db):
    account = await factory.staff(Role.PROVIDER)
    headers = await bearer_login(client, account)
    async with db.session() as session:
        user = await session.get(type(account.user), account.id)
        user.is_active = False
        session.add(user)
        await session.commit()
    assert (await client.get("/api/me", headers=headers)).status == 401


async def test_no_token_is_401_with_www_authenticate(client):
    resp = await client.get("/api/me")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_ended_revocations_are_pruned(db):
    denylist = DatabaseDenylist(db)
    await denylist.revoke("ended", utcnow() - timedelta(minutes=1))
    await denylist.revoke("current", utcnow() + timedelta(hours=1))
    assert await denylist.prune() == 1
    assert not await denylist.is_revoked("ended")
    assert await denylist.is_revoked("current")

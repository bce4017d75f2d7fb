"""Two real server processes on one database (and Redis when configured) share sessions."""

from __future__ import annotations

import aiohttp
import pytest

from app.core.models import Role, User
from tests.conftest import Factory
from tests.support.servers import app_server

pytestmark = pytest.mark.multiprocess


async def test_sign_out_on_one_process_revokes_on_the_other(process_env, factory: Factory):
    account = await factory.staff(Role.ADMIN)
    with (
        app_server(process_env, health="/readyz") as a,
        app_server(process_env, health="/readyz") as b,
    ):
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{a.url}/api/auth/login",
                json={"email": account.user.email, "password": account.password},
            ) as resp:
                assert resp.status == 200
                pending = (await resp.json())["mfa_token"]  # an admin: the code comes next
            async with http.post(
                f"{b.url}/api/auth/mfa", json={"mfa_token": pending, "code": account.totp_code()}
            ) as resp:
                assert resp.status == 200
                token = (await resp.json())["token"]
            headers = {"Authorization": f"Bearer {token}"}
            async with http.get(f"{b.url}/api/me", headers=headers) as resp:
                assert resp.status == 200
                assert (await resp.json())["user"]["email"] == account.user.email
            async with http.post(f"{b.url}/api/auth/logout", headers=headers) as resp:
                assert resp.status == 204
            async with http.get(f"{a.url}/api/me", headers=headers) as resp:
                assert resp.status == 401


async def test_failed_logins_on_both_processes_count_toward_one_lock(process_env, factory: Factory):
    account = await factory.staff(Role.PROVIDER)
    with app_server(process_env) as a, app_server(process_env) as b:
        async with aiohttp.ClientSession() as http:
            statuses = []
            for i in range(5):
                base = a if i % 2 == 0 else b
                async with http.post(
                    f"{base.url}/api/auth/login",
                    json={"email": account.user.email, "password": "wrong-guess"},
                ) as resp:
                    statuses.append(resp.status)
            # Locked after the fifth, which says no more than a wrong password does.
            assert statuses == [401, 401, 401, 401, 401]
            async with http.post(
                f"{a.url}/api/auth/login",
                json={"email": account.user.email, "password": account.password},
            ) as resp:
                assert resp.status == 401
    async with factory.db.session() as session:
        user = await session.get(User, account.id)
        assert user is not None and user.locked_until is not None

"""A staff socket ends with its user's session epoch: a password change made in another session
closes the provider's open sockets at their next event, on the deny-list sign-out uses."""

from __future__ import annotations

import aiohttp
import pytest

from app.core.models import Role
from tests.conftest import Factory, bearer_login
from tests.signaling.conftest import WaitingFactory, staff_headers
from tests.signaling.test_signout_ends_sockets import refused_as_signed_out, wait_disconnected

NEW_PASSWORD = "a calm new passphrase for the clinic 7"


async def test_a_password_change_elsewhere_closes_the_providers_open_clinic_socket(
    server, waiting: WaitingFactory, sockets
):
    v = await waiting.visitable()
    url = str(server.make_url("/"))
    base = url.rstrip("/")
    laptop = await staff_headers(base, v.provider)
    clinic = await sockets(url, "/clinic", laptop)
    delay = {"minutes": 5}
    assert "error" not in (await clinic.call("delay", delay))

    # The provider changes their password from another session (another device).
    phone = await staff_headers(base, v.provider)
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            f"{base}/api/me/password",
            headers=phone,
            json={"current_password": v.provider.password, "new_password": NEW_PASSWORD},
        )
        assert resp.status == 200, await resp.text()
        renewed = {"Authorization": f"Bearer {(await resp.json())['token']}"}

    refused = await clinic.call("delay", delay)
    assert refused_as_signed_out(refused), refused
    await wait_disconnected(clinic)

    # The session the change renewed is of the new epoch: its socket works.
    again = await sockets(url, "/clinic", renewed)
    assert "error" not in (await again.call("delay", delay))


@pytest.mark.parametrize("ended_by", ["mfa_reset", "clinic_requires_mfa"])
async def test_an_admin_ending_the_providers_sessions_closes_their_open_clinic_socket(
    server, http_clients, waiting: WaitingFactory, factory: Factory, sockets, ended_by: str
):
    v = await waiting.visitable()
    url = str(server.make_url("/"))
    clinic = await sockets(url, "/clinic", await staff_headers(url.rstrip("/"), v.provider))
    delay = {"minutes": 5}
    assert "error" not in (await clinic.call("delay", delay))

    admin = await factory.staff(Role.ADMIN, v.clinic)
    http = http_clients()
    headers = await bearer_login(http, admin)
    if ended_by == "mfa_reset":
        resp = await http.post(f"/api/users/{v.provider.id}/mfa/reset", headers=headers)
    else:  # the provider has no second factor yet: their sessions end so they enrol
        resp = await http.put("/api/clinic/security", json={"require_mfa": True}, headers=headers)
    assert resp.status == 200, await resp.text()

    refused = await clinic.call("delay", delay)
    assert refused_as_signed_out(refused), refused
    await wait_disconnected(clinic)

"""A real server's log over a whole check-in, visit and summary holds no join or guest link.

Those links are bearer secrets: whoever reads one in a log could check in as the patient or
join as the guest. The access log keeps the path with the token masked.
"""

from __future__ import annotations

import aiohttp

from app.web.access_log import loggable_path
from tests.signaling.conftest import WaitingFactory, check_in, staff_headers
from tests.signaling.test_guests import guest_checks_in
from tests.signaling.test_two_processes import BaseClient
from tests.support.servers import app_server
from tests.support.waiting import wait_for

LAST_REQUEST = "/static/end-of-this-test"


async def test_no_link_token_reaches_the_log(process_env, waiting: WaitingFactory, sockets) -> None:
    v = await waiting.visitable()
    env = process_env | {"OPENCONSULT_LOG_LEVEL": "INFO"}
    with app_server(env) as server:
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as patient_session,
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as guest_session,
        ):
            patient = BaseClient(server.url, patient_session)
            assert (await patient.get(f"/join/{v.token}")).status == 200
            await check_in(patient, v.token)
            assert (await patient.get(f"/api/join/{v.token}/status")).status == 200

            provider = await staff_headers(server.url, v.provider)
            clinic = await sockets(server.url + "/", "/clinic", provider)
            admitted = await clinic.call("admit", {"appointment_id": str(v.appointment.id)})
            visit_id = admitted["visit_id"]
            assert (await patient.get(f"/visit/{visit_id}")).status == 200

            resp = await patient_session.post(
                f"{server.url}/api/visits/{visit_id}/guests",
                json={"label": "Interpreter"},
                headers=provider,
            )
            guest_path = (await resp.json())["path"]
            guest_token = guest_path.rsplit("/", 1)[1]
            guest = BaseClient(server.url, guest_session)
            assert (await guest.get(guest_path)).status == 200
            await guest_checks_in(guest, guest_path, "Ana Souza")

            visit = await sockets(server.url + "/", "/visit", provider, {"visit_id": visit_id})
            assert (await visit.call("end", {}))["ok"] is True
            assert (await patient.get(f"/api/join/{v.token}/summary")).status == 200
            # Paths that match no route are masked too.
            assert (await patient.get(f"/api/join/{v.token}/no-such-step")).status == 404
            assert (await guest.get(f"/guest/{guest_token}/nowhere")).status == 404
            assert (await patient.get(LAST_REQUEST)).status == 404
            # Open sockets would hold the server's graceful shutdown up.
            for listener in (clinic, visit):
                await listener.client.disconnect()

        # The access log line of a response is written after it is sent.
        await wait_for(lambda: LAST_REQUEST in server.log.read_text(), 10, "the last log line")
        log = server.log.read_text()

    assert "/api/join/***/identity" in log and "/api/guest/***/name" in log
    for token in (v.token, guest_token):
        signature = token.rsplit(".", 1)[-1]
        assert signature not in log, [line for line in log.splitlines() if signature in line]


def test_any_route_parameter_named_token_is_masked() -> None:
    """A future route with a token elsewhere in its path is masked by its parameter's name."""
    match_info = {"visit_id": "v1", "invite_token": "s3cr3t"}
    assert loggable_path("/api/visits/v1/invites/s3cr3t", match_info) == (
        "/api/visits/v1/invites/***"
    )

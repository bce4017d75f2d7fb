"""The waiting room across two real server processes sharing PostgreSQL and Redis."""

from __future__ import annotations

import os
from datetime import timedelta

import aiohttp
import pytest

from tests.signaling.conftest import WaitingFactory, check_in, staff_headers
from tests.support.servers import app_server

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.skipif(
        not (os.environ.get("REDIS_URL") and os.environ.get("DATABASE_URL")),
        reason="needs REDIS_URL and DATABASE_URL (the at-scale pass of the suite)",
    ),
]


class BaseClient:
    """Enough of a test client for `check_in`: paths relative to one server."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.session = session

    def post(self, path: str, **kwargs):
        return self.session.post(self.base + path, **kwargs)

    def get(self, path: str, **kwargs):
        return self.session.get(self.base + path, **kwargs)


async def test_patient_on_one_process_provider_on_the_other(
    process_env, waiting: WaitingFactory, sockets
):
    v = await waiting.visitable()
    with (
        app_server(process_env, health="/readyz") as a,
        app_server(process_env, health="/readyz") as b,
    ):
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            provider = await sockets(b.url + "/", "/clinic", await staff_headers(b.url, v.provider))
            await provider.wait_for("queue")

            # Check-in on process A reaches the provider on process B.
            await check_in(BaseClient(a.url, http), v.token)
            cookie = next(c for c in jar if c.key == "oc_patient")
            patient = await sockets(
                a.url + "/", "/waiting", {"Cookie": f"oc_patient={cookie.value}"}
            )
            queue = await provider.wait_for(
                "queue",
                lambda q: any(p["status"] == "waiting" for p in q["patients"]),
            )
            assert queue["patients"][0]["position"] == 1
            assert (await patient.wait_for("place"))["position"] == 1

            # A reload that lands on the other process: away meanwhile, then back in place.
            await patient.client.disconnect()
            await provider.wait_for(
                "queue", lambda q: any(p["status"] == "away" for p in q["patients"])
            )
            patient = await sockets(
                b.url + "/", "/waiting", {"Cookie": f"oc_patient={cookie.value}"}
            )
            await provider.wait_for(
                "queue", lambda q: any(p["status"] == "waiting" for p in q["patients"])
            )
            assert (await patient.wait_for("place"))["position"] == 1

            # The provider's message and admit on B reach the patient on A.
            ack = await provider.call(
                "message", {"appointment_id": str(v.appointment.id), "text": "Two minutes"}
            )
            assert ack["ok"]
            assert (await patient.wait_for("message"))["text"] == "Two minutes"
            admitted = await provider.call("admit", {"appointment_id": str(v.appointment.id)})
            assert (await patient.wait_for("admitted"))["visit_id"] == admitted["visit_id"]


async def test_an_admit_on_one_process_moves_up_patients_waiting_on_the_other(
    process_env, waiting: WaitingFactory, sockets
):
    """Places are sent as one batch per change: the other process delivers its own patients'."""
    clinic, provider_account, _, kind = await waiting.clinic_day()
    _, appointment, first_token = await waiting.appointment(clinic, provider_account, kind)
    _, _, second_token = await waiting.appointment(
        clinic, provider_account, kind, starts_in=timedelta(minutes=30), given="Omar"
    )
    with (
        app_server(process_env, health="/readyz") as a,
        app_server(process_env, health="/readyz") as b,
    ):
        patients = []
        for token in (first_token, second_token):
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as http:
                await check_in(BaseClient(a.url, http), token)
            cookie = next(c for c in jar if c.key == "oc_patient")
            patients.append(
                await sockets(a.url + "/", "/waiting", {"Cookie": f"oc_patient={cookie.value}"})
            )
        first, second = patients
        assert (await second.wait_for("place", lambda p: p["position"] == 2))["position"] == 2

        provider = await sockets(
            b.url + "/", "/clinic", await staff_headers(b.url, provider_account)
        )
        await provider.wait_for(
            "queue", lambda q: sum(p["status"] == "waiting" for p in q["patients"]) == 2
        )
        admitted = await provider.call("admit", {"appointment_id": str(appointment.id)})
        assert (await first.wait_for("admitted"))["visit_id"] == admitted["visit_id"]
        # Computed on B, where nobody waits; delivered by A to the patient connected to it.
        moved = await second.wait_for("place", lambda p: p["position"] == 1)
        assert moved["expected_wait_minutes"] >= 0

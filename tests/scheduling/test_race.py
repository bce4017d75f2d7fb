"""No double booking across two real server processes: exactly one success per contested slot."""

from __future__ import annotations

import asyncio
from datetime import time, timedelta

import aiohttp
import pytest

from tests.scheduling.conftest import at, book_body, next_weekday
from tests.support.servers import app_server

ROUNDS = 20
CONTENDERS = 10


@pytest.mark.multiprocess
async def test_two_processes_twenty_rounds_exactly_one_booking_each(client, sched, process_env):
    # A whole-day calendar gives enough distinct slots for every round.
    cal = await sched.calendar(hours=(time(0), time(0)), weekdays=tuple(range(7)))
    day = next_weekday(2)
    with app_server(process_env) as first, app_server(process_env) as second:
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.post(
                f"{first.url}/api/auth/login",
                json={"email": cal.scheduler.user.email, "password": cal.scheduler.password},
            ) as resp:
                assert resp.status == 200
                token = (await resp.json())["token"]
            headers = {"Authorization": f"Bearer {token}"}

            async def attempt(base: str, body: dict[str, str]) -> int:
                async with http.post(f"{base}/api/appointments", json=body, headers=headers) as r:
                    await r.read()
                    return r.status

            outcomes = []
            for round_no in range(ROUNDS):
                start = at(day, 0) + timedelta(minutes=30 * round_no)
                body = book_body(cal, start)
                statuses = await asyncio.gather(
                    *[attempt((first if i % 2 else second).url, body) for i in range(CONTENDERS)]
                )
                outcomes.append(sorted(statuses))
    assert outcomes == [[201] + [409] * (CONTENDERS - 1)] * ROUNDS

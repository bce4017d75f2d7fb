"""No double booking across two real server processes: exactly one success per contested slot."""

from __future__ import annotations

import asyncio
from datetime import time, timedelta

import aiohttp
import pytest

from tests.conftest import TEST_SECRET
from tests.scheduling.conftest import at, book_body, next_weekday
from tests.support.servers import server_env, server_process

ROUNDS = 20
CONTENDERS = 10


@pytest.mark.multiprocess
async def test_two_processes_twenty_rounds_exactly_one_booking_each(
    client, sched, database_url, tmp_path
):
    # A whole-day calendar gives enough distinct slots for every round.
    cal = await sched.calendar(hours=(time(0), time(0)), weekdays=tuple(range(7)))
    env = server_env(
        database_url,
        tmp_path / "data",
        OPENCONSULT_SECRET_KEY=TEST_SECRET,
        OPENCONSULT_BACKGROUND_TASKS="false",
    )
    day = next_weekday(2)
    with server_process(env) as first, server_process(env) as second:
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.post(
                f"{first}/api/auth/login",
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
                    *[attempt(first if i % 2 else second, body) for i in range(CONTENDERS)]
                )
                outcomes.append(sorted(statuses))
    assert outcomes == [[201] + [409] * (CONTENDERS - 1)] * ROUNDS

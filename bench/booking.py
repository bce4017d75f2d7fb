"""Booking benchmark against real server processes (`python -m app serve`), SQLite and PostgreSQL.

Race: C concurrent clients book the same slot of one provider; exactly one may succeed, the rest
must get 409. Repeated R times on distinct slots. Slot search: P providers x D days, ms per
provider-month, and requests/s of the slot endpoint as a ratio to the bare /healthz endpoint
served by the same process in the same run.

    python bench/booking.py [--clients 200] [--runs 20] [--providers 50] [--days 30]
        [--pg postgresql://postgres@127.0.0.1/postgres] [--no-pg]

The last printed line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg

# `python bench/booking.py` puts bench/ on the import path, not the repository root where
# tests.support lives (app, scheduling and signaling also come from the editable install).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.auth import hash_password
from app.core.db import Database
from app.core.models import Clinic, Patient, Role, User
from app.migrations import upgrade
from scheduling.models import AppointmentType, AvailabilityRule, ProviderSchedule
from tests.support.servers import app_server, server_env

SECRET = "bench-secret-" + secrets.token_hex(24)
PASSWORD = "bench-password-123"
ZONE = "America/New_York"


async def seed(url: str, providers: int) -> dict[str, Any]:
    db = Database(url)
    await upgrade(db)
    clinic = Clinic(name=f"Bench clinic {secrets.token_hex(3)}", timezone=ZONE)
    scheduler = User(
        clinic_id=clinic.id,
        email=f"scheduler-{secrets.token_hex(3)}@bench.example",
        full_name="Bench Scheduler",
        role=Role.SCHEDULER,
        password_hash=hash_password(PASSWORD),
    )
    kind = AppointmentType(clinic_id=clinic.id, name="Video 30", duration_minutes=30)
    patient = Patient(
        clinic_id=clinic.id, given_name="Bench", family_name="Patient", birth_date=date(1970, 1, 1)
    )
    staff = [
        User(
            clinic_id=clinic.id,
            email=f"dr{i}-{secrets.token_hex(3)}@bench.example",
            full_name=f"Dr Bench {i}",
            role=Role.PROVIDER,
            password_hash="x",
        )
        for i in range(providers)
    ]
    async with db.session() as session:
        session.add(clinic)
        await session.flush()
        session.add_all([scheduler, kind, patient, *staff])
        await session.flush()
        schedules = [
            ProviderSchedule(
                clinic_id=clinic.id,
                provider_id=p.id,
                timezone=ZONE,
                min_notice_minutes=60,
                horizon_days=400,
            )
            for p in staff
        ]
        session.add_all(schedules)
        await session.flush()
        session.add_all(
            AvailabilityRule(schedule_id=s.id, weekday=w, start_time=clock(9), end_time=clock(17))
            for s in schedules
            for w in range(7)
        )
        await session.commit()
    await db.dispose()
    return {
        "email": scheduler.email,
        "type": str(kind.id),
        "patient": str(patient.id),
        "providers": [str(p.id) for p in staff],
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def race_once(base: str, token: str, body: dict[str, str], clients: int) -> dict[str, Any]:
    start = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=120)
    sessions = [aiohttp.ClientSession(timeout=timeout) for _ in range(clients)]
    headers = {"Authorization": f"Bearer {token}"}

    async def one(http: aiohttp.ClientSession) -> tuple[int, float]:
        await start.wait()
        began = time.perf_counter()
        try:
            async with http.post(f"{base}/api/appointments", json=body, headers=headers) as r:
                await r.read()
                status = r.status
        except aiohttp.ClientError:
            status = 0
        return status, (time.perf_counter() - began) * 1000

    try:
        tasks = [asyncio.create_task(one(s)) for s in sessions]
        await asyncio.sleep(0.2)
        start.set()
        results = await asyncio.gather(*tasks)
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    statuses = [s for s, _ in results]
    return {
        "successes": statuses.count(201),
        "conflicts": statuses.count(409),
        "server_errors": sum(1 for s in statuses if s >= 500 or s == 0),
        "other": sum(1 for s in statuses if s not in (201, 409) and 0 < s < 500),
        "latencies": [ms for _, ms in results],
    }


async def login(http: aiohttp.ClientSession, base: str, email: str) -> str:
    async with http.post(
        f"{base}/api/auth/login", json={"email": email, "password": PASSWORD}
    ) as resp:
        resp.raise_for_status()
        token: str = (await resp.json())["token"]
        return token


async def throughput(
    http: aiohttp.ClientSession, urls: list[str], headers: dict[str, str], seconds: float
) -> float:
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal count
        i = offset
        while time.perf_counter() < deadline:
            async with http.get(urls[i % len(urls)], headers=headers) as r:
                await r.read()
                assert r.status == 200, r.status
            count += 1
            i += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(16)))
    return count / (time.perf_counter() - began)


def next_monday() -> date:
    today = datetime.now(UTC).date()
    return today + timedelta(days=(7 - today.weekday()) % 7 + 7)


async def bench_db(
    name: str, url: str, data_dir: Path, args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, Any]]:
    seeded = await seed(url, args.providers)
    first_day = next_monday()
    env = server_env(
        url,
        data_dir,
        OPENCONSULT_SECRET_KEY=SECRET,
        OPENCONSULT_BACKGROUND_TASKS="false",
        OPENCONSULT_LOGIN_MAX_PER_ADDRESS="10000",
    )
    with app_server(env) as server:
        base = server.url
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            token = await login(http, base, seeded["email"])
            headers = {"Authorization": f"Bearer {token}"}
            runs = []
            for run in range(args.runs):
                # 16 half-hour slots a day (09:00-17:00 every day): a fresh slot per run.
                day = first_day + timedelta(days=run // 16)
                slot = datetime.combine(day, clock(9), tzinfo=ZoneInfo(ZONE)) + timedelta(
                    minutes=30 * (run % 16)
                )
                body = {
                    "provider_id": seeded["providers"][0],
                    "patient_id": seeded["patient"],
                    "appointment_type_id": seeded["type"],
                    "start": slot.astimezone(UTC).isoformat(),
                }
                runs.append(await race_once(base, token, body, args.clients))
            latencies = [ms for r in runs for ms in r["latencies"]]
            race = {
                "db": name,
                "clients": args.clients,
                "successes": runs[0]["successes"],
                "conflicts": runs[0]["conflicts"],
                "server_errors": runs[0]["server_errors"],
                "other_statuses": runs[0]["other"],
                "p50_ms": round(percentile(runs[0]["latencies"], 0.5), 1),
                "p99_ms": round(percentile(runs[0]["latencies"], 0.99), 1),
                "repeat": {
                    "runs": args.runs,
                    "runs_with_exactly_one_success": sum(
                        1
                        for r in runs
                        if r["successes"] == 1 and r["conflicts"] == args.clients - 1
                    ),
                    "server_errors": sum(r["server_errors"] for r in runs),
                    "p50_ms": round(percentile(latencies, 0.5), 1),
                    "p99_ms": round(percentile(latencies, 0.99), 1),
                },
            }
            last_day = first_day + timedelta(days=args.days - 1)
            slot_urls = [
                f"{base}/api/providers/{p}/slots?appointment_type_id={seeded['type']}"
                f"&from={first_day}&to={last_day}"
                for p in seeded["providers"]
            ]
            timings = []
            slot_count = 0
            for u in slot_urls:
                began = time.perf_counter()
                async with http.get(u, headers=headers) as r:
                    data = await r.json()
                    assert r.status == 200, data
                timings.append((time.perf_counter() - began) * 1000)
                slot_count += len(data["slots"])
            healthz_rps = await throughput(http, [f"{base}/healthz"], {}, args.seconds)
            slots_rps = await throughput(http, slot_urls, headers, args.seconds)
            search = {
                "db": name,
                "providers": args.providers,
                "days": args.days,
                "slots_found": slot_count,
                "ms_per_provider_month": round(statistics.mean(timings), 2),
                "ms_per_provider_month_p99": round(percentile(timings, 0.99), 2),
                "slot_search_rps": round(slots_rps, 1),
                "healthz_rps": round(healthz_rps, 1),
                "ratio_to_healthz": round(slots_rps / healthz_rps, 4),
            }
    return race, search


def _dsn(url: str, database: str) -> str:
    base = url.replace("postgresql+asyncpg://", "postgresql://").rpartition("/")[0]
    return f"{base}/{database}"


async def main(args: argparse.Namespace) -> dict[str, Any]:
    races: list[dict[str, Any]] = []
    searches: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="oc-bench-") as tmp:
        data_dir = Path(tmp)
        race, search = await bench_db(
            "sqlite", f"sqlite+aiosqlite:///{data_dir / 'bench.db'}", data_dir, args
        )
        races.append(race)
        searches.append(search)
        print(json.dumps(race), json.dumps(search), sep="\n", flush=True)
        if not args.no_pg:
            name = f"oc_bench_{secrets.token_hex(4)}"
            admin = await asyncpg.connect(args.pg.replace("postgresql+asyncpg://", "postgresql://"))
            await admin.execute(f'CREATE DATABASE "{name}"')
            try:
                url = _dsn(args.pg, name).replace("postgresql://", "postgresql+asyncpg://", 1)
                race, search = await bench_db("postgresql", url, data_dir, args)
                races.append(race)
                searches.append(search)
                print(json.dumps(race), json.dumps(search), sep="\n", flush=True)
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()
    return {"race": races, "slot_search": searches}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--providers", type=int, default=50)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=3.0, help="per throughput measurement")
    parser.add_argument(
        "--pg",
        default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1/postgres"),
        help="PostgreSQL server to create a scratch database on",
    )
    parser.add_argument("--no-pg", action="store_true")
    result = asyncio.run(main(parser.parse_args()))
    print(json.dumps(result))

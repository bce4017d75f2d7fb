"""Waiting room at scale: memory per waiting patient socket, and how fast an admit reaches
the provider's queue and every affected patient.

    python bench/waiting_room.py [--sizes 1000,5000] [--admits 20] [--per-provider 50]

Runs a real server process (`python -m app serve`) on a scratch SQLite file with the
in-process manager; with --postgres URL and --redis URL it also runs two processes sharing
them, patients on one and providers on the other. Patients speak the Engine.IO/Socket.IO
wire protocol over plain websockets (one aiohttp session for all, so the client side stays
light); providers use python-socketio. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import socketio

# `python bench/waiting_room.py` puts bench/ on the import path, not the repository root where
# tests.support lives (app, scheduling and signaling also come from the editable install).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.auth import hash_password, issue_session_token
from app.core.config import load_settings
from app.core.db import Database
from app.core.models import Clinic, Patient, Role, User
from app.migrations import upgrade
from scheduling.models import Appointment, AppointmentType, ProviderSchedule
from signaling.checkin.patient_session import issue_patient_token
from signaling.models import CheckIn, ConsentDocument, ConsentRecord
from tests.support.servers import app_server, server_env

SECRET = "bench-secret-" + "b" * 40


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@dataclass
class Seeded:
    providers: list[User]
    # provider id -> [(appointment id, patient cookie)], in queue order
    patients: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = field(default_factory=dict)


async def seed(url: str, total: int, per_provider: int) -> Seeded:
    """Providers with checked-in patients, written straight to the database."""
    settings = load_settings(env="test", secret_key=SECRET, DATABASE_URL=url)
    db = Database(settings.resolved_database_url)
    await upgrade(db)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # Today (the queue shows today) and recent enough that the patients' sessions are valid.
    first_start = max(now.replace(hour=0, minute=0), now - timedelta(minutes=per_provider))
    seeded = Seeded(providers=[])
    password_hash = hash_password("bench-password-1")
    async with db.session() as session:
        clinic = Clinic(name=f"Bench clinic {uuid.uuid4().hex[:6]}")
        session.add(clinic)
        await session.flush()
        kind = AppointmentType(clinic_id=clinic.id, name="Bench", duration_minutes=1)
        consent = ConsentDocument(clinic_id=clinic.id, version=1, title="Consent", body="Text")
        session.add_all([kind, consent])
        await session.flush()
        for p in range((total + per_provider - 1) // per_provider):
            provider = User(
                clinic_id=clinic.id,
                email=f"provider{p}-{uuid.uuid4().hex[:6]}@bench.example",
                full_name=f"Provider {p}",
                role=Role.PROVIDER,
                password_hash=password_hash,
            )
            session.add(provider)
            await session.flush()
            session.add(
                ProviderSchedule(clinic_id=clinic.id, provider_id=provider.id, timezone="UTC")
            )
            seeded.providers.append(provider)
            seeded.patients[provider.id] = []
            for i in range(min(per_provider, total - p * per_provider)):
                patient = Patient(
                    clinic_id=clinic.id,
                    given_name="P",
                    family_name=f"{p}-{i}",
                    birth_date=date(1980, 1, 1),
                )
                session.add(patient)
                await session.flush()
                start = first_start + timedelta(minutes=i)
                appointment = Appointment(
                    clinic_id=clinic.id,
                    provider_id=provider.id,
                    patient_id=patient.id,
                    appointment_type_id=kind.id,
                    start_at=start,
                    end_at=start + timedelta(minutes=1),
                    busy_until=start + timedelta(minutes=1),
                    status="checked-in",
                )
                session.add(appointment)
                await session.flush()
                record = ConsentRecord(
                    appointment_id=appointment.id,
                    patient_id=patient.id,
                    document_id=consent.id,
                    version=1,
                    accepted_at=datetime.now(UTC),
                )
                session.add(record)
                await session.flush()
                session.add(
                    CheckIn(
                        appointment_id=appointment.id,
                        clinic_id=clinic.id,
                        provider_id=provider.id,
                        patient_id=patient.id,
                        identity_verified_at=datetime.now(UTC),
                        consent_id=record.id,
                        waiting_since=datetime.now(UTC) - timedelta(minutes=5),
                    )
                )
                seeded.patients[provider.id].append(
                    (appointment.id, issue_patient_token(settings, appointment))
                )
        await session.commit()
    await db.dispose()
    return seeded


class PatientSocket:
    """A waiting patient on the raw Socket.IO wire protocol; records when `place` arrives."""

    def __init__(self, appointment_id: uuid.UUID) -> None:
        self.appointment_id = appointment_id
        self.places: list[tuple[float, dict[str, Any]]] = []
        self.connected = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def run(self, http: aiohttp.ClientSession, base: str, cookie: str) -> None:
        ws_url = base.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        async with http.ws_connect(ws_url, headers={"Cookie": f"oc_patient={cookie}"}) as ws:
            async for msg in ws:
                data = msg.data
                if data.startswith("0"):
                    await ws.send_str("40/waiting,")
                elif data == "2":
                    await ws.send_str("3")
                elif data.startswith("40/waiting"):
                    self.connected.set()
                elif data.startswith("44/waiting"):
                    raise RuntimeError(f"refused: {data}")
                elif data.startswith("42/waiting,"):
                    event, payload = json.loads(data[len("42/waiting,") :])[:2]
                    if event == "place":
                        self.places.append((time.perf_counter(), payload))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(
    *, patients_base: str, providers_base: str, server_pids: list[int], seeded: Seeded, admits: int
) -> dict[str, Any]:
    total = sum(len(v) for v in seeded.patients.values())
    rss_before = sum(rss_kib(pid) for pid in server_pids)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        sockets: dict[uuid.UUID, PatientSocket] = {}
        started = time.perf_counter()
        batch: list[PatientSocket] = []
        for _provider_id, rows in seeded.patients.items():
            for appointment_id, cookie in rows:
                sock = PatientSocket(appointment_id)
                sock.task = asyncio.create_task(sock.run(http, patients_base, cookie))
                sockets[appointment_id] = sock
                batch.append(sock)
                if len(batch) >= 100:  # connect in waves, as patients arrive
                    await asyncio.wait_for(
                        asyncio.gather(*(s.connected.wait() for s in batch)), 120
                    )
                    batch = []
        await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in batch)), 120)
        connect_s = time.perf_counter() - started
        await asyncio.sleep(3)  # let the connect storm's queue sends settle
        rss_after = sum(rss_kib(pid) for pid in server_pids)

        settings = load_settings(env="test", secret_key=SECRET)
        delays_ms: list[float] = []
        provider_ms: list[float] = []
        chosen = seeded.providers[: max(1, min(admits, len(seeded.providers)))]
        rounds = [(p, i) for i in range((admits + len(chosen) - 1) // len(chosen)) for p in chosen][
            :admits
        ]
        clients: dict[uuid.UUID, tuple[socketio.AsyncClient, list[tuple[float, Any]]]] = {}
        for provider in chosen:
            token, _ = issue_session_token(
                settings, user_id=provider.id, clinic_id=provider.clinic_id, role=Role.PROVIDER
            )
            client = socketio.AsyncClient(reconnection=False)
            received: list[tuple[float, Any]] = []
            client.on(
                "queue",
                lambda d, r=received: r.append((time.perf_counter(), d)),
                namespace="/clinic",
            )
            await client.connect(
                providers_base,
                headers={"Authorization": f"Bearer {token}"},
                namespaces=["/clinic"],
                transports=["websocket"],
                wait_timeout=10,
            )
            clients[provider.id] = (client, received)
        await asyncio.sleep(1)
        for provider, index in rounds:
            rows = seeded.patients[provider.id]
            admitted_id = rows[index][0]
            others = [sockets[a] for a, _ in rows[index + 1 :]]
            client, received = clients[provider.id]
            marks = {id(s): len(s.places) for s in others}
            mark = len(received)
            sent = time.perf_counter()
            answer = await client.call(
                "admit", {"appointment_id": str(admitted_id)}, namespace="/clinic", timeout=30
            )
            assert "visit_id" in answer, answer
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                provider_done = any(
                    any(
                        p["appointment_id"] == str(admitted_id) and p["status"] == "in visit"
                        for p in d["patients"]
                    )
                    for _, d in received[mark:]
                )
                if provider_done and all(len(s.places) > marks[id(s)] for s in others):
                    break
                await asyncio.sleep(0.005)
            else:
                raise TimeoutError("updates did not arrive")
            provider_at = next(
                t
                for t, d in received[mark:]
                if any(
                    p["appointment_id"] == str(admitted_id) and p["status"] == "in visit"
                    for p in d["patients"]
                )
            )
            provider_ms.append((provider_at - sent) * 1000)
            delays_ms.append((provider_at - sent) * 1000)
            for s in others:
                delays_ms.append((s.places[marks[id(s)]][0] - sent) * 1000)
            await asyncio.sleep(0.2)
        for client, _ in clients.values():
            await client.disconnect()
        for sock in sockets.values():
            assert sock.task is not None
            sock.task.cancel()
        await asyncio.gather(*(s.task for s in sockets.values() if s.task), return_exceptions=True)
    return {
        "sockets": total,
        "connect_s": round(connect_s, 1),
        "rss_mb_before": round(rss_before / 1024, 1),
        "rss_mb_after": round(rss_after / 1024, 1),
        "kib_per_socket": round((rss_after - rss_before) / total, 1),
        "admits": len(rounds),
        "updates_measured": len(delays_ms),
        "admit_provider_p50_ms": round(percentile(provider_ms, 0.5), 1),
        "admit_update_p50_ms": round(percentile(delays_ms, 0.5), 1),
        "admit_update_p99_ms": round(percentile(delays_ms, 0.99), 1),
    }


def bench_env(database_url: str, data_dir: str, redis_url: str | None) -> dict[str, str]:
    return server_env(
        database_url,
        Path(data_dir),
        redis_url=redis_url,
        OPENCONSULT_SECRET_KEY=SECRET,
        OPENCONSULT_BACKGROUND_TASKS="false",
        OPENCONSULT_LOG_LEVEL="ERROR",
    )


async def run_sqlite(size: int, per_provider: int, admits: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        seeded = await seed(url, size, per_provider)
        with app_server(bench_env(url, tmp, None)) as server:
            result = await measure(
                patients_base=server.url,
                providers_base=server.url,
                server_pids=[server.pid],
                seeded=seeded,
                admits=admits,
            )
    return {"mode": "sqlite, 1 process"} | result


async def run_two_processes(
    size: int, per_provider: int, admits: int, pg_url: str, redis_url: str
) -> dict[str, Any]:
    name = f"oc_bench_{secrets.token_hex(4)}"
    admin_dsn = pg_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = admin_dsn.rsplit("/", 1)[0] + "/" + name
    try:
        seeded = await seed(url, size, per_provider)
        with tempfile.TemporaryDirectory() as tmp:
            env = bench_env(url, tmp, redis_url)
            with app_server(env) as a, app_server(env) as b:
                result = await measure(
                    patients_base=a.url,
                    providers_base=b.url,
                    server_pids=[a.pid, b.pid],
                    seeded=seeded,
                    admits=admits,
                )
    finally:
        conn = await asyncpg.connect(admin_dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    return {
        "mode": "postgresql + redis, 2 processes (patients on one, providers on the other)"
    } | result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--per-provider", type=int, default=50)
    parser.add_argument("--admits", type=int, default=20)
    parser.add_argument("--postgres", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    runs = []
    for size in sizes:
        result = await run_sqlite(size, args.per_provider, args.admits)
        print(json.dumps(result), flush=True)
        runs.append(result)
    if args.postgres and args.redis:
        for size in sizes:
            result = await run_two_processes(
                size, args.per_provider, args.admits, args.postgres, args.redis
            )
            print(json.dumps(result), flush=True)
            runs.append(result)
    largest = max(runs, key=lambda r: r["sockets"])
    summary = {
        k: largest[k]
        for k in ("sockets", "kib_per_socket", "admit_update_p50_ms", "admit_update_p99_ms")
    }
    print(json.dumps(summary | {"runs": runs}))


if __name__ == "__main__":
    asyncio.run(main())

"""The on-demand (walk-in) queue at scale: admit one walk-in, time until every other waiting
walk-in's new place has arrived.

    python bench/ondemand.py [--waiting 1000] [--admits 20] [--providers 2]

Runs a real server process (`python -m app serve`) on a scratch SQLite file with the in-process
manager. `--waiting` walk-ins of one clinic wait in its walk-in queue, which `--providers`
providers take from; the patients speak the Engine.IO/Socket.IO wire protocol over plain
websockets (as bench/waiting_room.py). Each round a provider (in turn) admits the walk-in who
arrived first from their queue; the round's figures are from the admit call to each remaining
patient's next `place` event. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import socketio

# `python bench/ondemand.py` puts bench/ on the import path, not the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.auth import hash_password, issue_session_token
from app.core.config import load_settings
from app.core.db import Database
from app.core.models import Clinic, Patient, Role, User
from app.migrations import upgrade
from bench.waiting_room import SECRET, PatientSocket, bench_env, percentile
from scheduling.models import Appointment, AppointmentType, ProviderSchedule
from signaling.checkin.patient_session import issue_patient_token
from signaling.models import CheckIn, ConsentDocument, ConsentRecord
from signaling.ondemand.models import OnDemandProvider, OnDemandQueue, OnDemandRequest
from tests.support.servers import app_server

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used (load on the machine does not count)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def seed(
    url: str, waiting: int, providers: int
) -> tuple[list[User], list[tuple[uuid.UUID, str]]]:
    """A clinic whose walk-in queue holds `waiting` checked-in walk-ins, in arrival order."""
    settings = load_settings(env="test", secret_key=SECRET, DATABASE_URL=url)
    db = Database(settings.resolved_database_url)
    await upgrade(db)
    now = datetime.now(UTC).replace(microsecond=0)
    password_hash = hash_password("bench-password-1")
    staff: list[User] = []
    walk_ins: list[tuple[uuid.UUID, str]] = []
    async with db.session() as session:
        clinic = Clinic(name=f"Walk-in clinic {uuid.uuid4().hex[:6]}")
        session.add(clinic)
        await session.flush()
        kind = AppointmentType(clinic_id=clinic.id, name="Urgent care", duration_minutes=10)
        consent = ConsentDocument(clinic_id=clinic.id, version=1, title="Consent", body="Text")
        session.add_all([kind, consent])
        await session.flush()
        for p in range(providers):
            provider = User(
                clinic_id=clinic.id,
                email=f"walkin{p}-{uuid.uuid4().hex[:6]}@bench.example",
                full_name=f"Provider {p}",
                role=Role.PROVIDER,
                password_hash=password_hash,
            )
            session.add(provider)
            await session.flush()
            session.add(
                ProviderSchedule(clinic_id=clinic.id, provider_id=provider.id, timezone="UTC")
            )
            session.add(OnDemandProvider(clinic_id=clinic.id, provider_id=provider.id))
            staff.append(provider)
        session.add(
            OnDemandQueue(
                clinic_id=clinic.id,
                code=f"bench-{uuid.uuid4().hex[:6]}",
                enabled=True,
                hours=json.dumps(
                    [{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)]
                ),
                appointment_type_id=kind.id,
            )
        )
        # Arrivals spread over the last minutes, all of today (UTC, the providers' zone).
        first = max(now.replace(hour=0, minute=0, second=0), now - timedelta(minutes=30))
        step = (now - first) / max(1, waiting)
        for i in range(waiting):
            arrived = first + step * i
            patient = Patient(
                clinic_id=clinic.id, given_name="W", family_name=f"{i}", birth_date=date(1985, 1, 1)
            )
            session.add(patient)
            await session.flush()
            appointment = Appointment(
                clinic_id=clinic.id,
                provider_id=staff[0].id,
                patient_id=patient.id,
                appointment_type_id=kind.id,
                start_at=arrived,
                end_at=arrived + timedelta(minutes=10),
                busy_until=arrived,
                status="checked-in",
                on_demand=True,
            )
            session.add(appointment)
            await session.flush()
            record = ConsentRecord(
                appointment_id=appointment.id,
                patient_id=patient.id,
                document_id=consent.id,
                version=1,
                accepted_at=arrived,
            )
            session.add(record)
            await session.flush()
            session.add(
                OnDemandRequest(
                    appointment_id=appointment.id,
                    clinic_id=clinic.id,
                    contact=f"w{i}@bench.example",
                    arrived_at=arrived,
                )
            )
            session.add(
                CheckIn(
                    appointment_id=appointment.id,
                    clinic_id=clinic.id,
                    provider_id=staff[0].id,
                    patient_id=patient.id,
                    identity_verified_at=arrived,
                    consent_id=record.id,
                    waiting_since=arrived,
                )
            )
            walk_ins.append((appointment.id, issue_patient_token(settings, appointment)))
        await session.commit()
    await db.dispose()
    return staff, walk_ins


def in_visit(queue: dict[str, Any], appointment_id: uuid.UUID) -> bool:
    """Whether a provider's queue shows this appointment's visit started."""
    return any(
        p["appointment_id"] == str(appointment_id) and p["status"] == "in visit"
        for p in queue["patients"]
    )


async def measure(
    server_pid: int,
    base: str,
    staff: list[User],
    walk_ins: list[tuple[uuid.UUID, str]],
    admits: int,
) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        sockets: dict[uuid.UUID, PatientSocket] = {}
        started = time.perf_counter()
        for start in range(0, len(walk_ins), 100):  # connect in waves, as patients arrive
            wave = []
            for appointment_id, cookie in walk_ins[start : start + 100]:
                sock = PatientSocket(appointment_id)
                sock.task = asyncio.create_task(sock.run(http, base, cookie))
                sockets[appointment_id] = sock
                wave.append(sock)
            await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in wave)), 120)
        connect_s = time.perf_counter() - started
        print(f"{len(sockets)} patients connected in {connect_s:.1f}s", flush=True)
        await asyncio.sleep(3)  # let the connect storm's queue sends settle

        settings = load_settings(env="test", secret_key=SECRET)
        clients = []
        received: list[list[tuple[float, Any]]] = []
        for provider in staff:
            token, _ = issue_session_token(
                settings, user_id=provider.id, clinic_id=provider.clinic_id, role=Role.PROVIDER
            )
            client = socketio.AsyncClient(reconnection=False)
            seen: list[tuple[float, Any]] = []
            client.on(
                "queue", lambda d, r=seen: r.append((time.perf_counter(), d)), namespace="/clinic"
            )
            received.append(seen)
            await client.connect(
                base,
                headers={"Authorization": f"Bearer {token}"},
                namespaces=["/clinic"],
                transports=["websocket"],
                # A provider's first queue audits each of the 1,000 patients it shows.
                wait_timeout=300,
            )
            clients.append(client)
            print(f"provider connected after {time.perf_counter() - started:.1f}s", flush=True)
        # This one process stands in for a thousand browsers: its own garbage collector's pauses
        # (a full collection scans every socket) would show as the server's latency.
        gc.collect()
        gc.freeze()
        await asyncio.sleep(1)
        delays_ms: list[float] = []
        rounds_ms: list[float] = []
        provider_ms: list[float] = []
        cpu_ms: list[float] = []
        places_cpu_ms: list[float] = []
        for index in range(min(admits, len(walk_ins) - 1)):
            admitted_id = walk_ins[index][0]
            others = [sockets[a] for a, _ in walk_ins[index + 1 :]]
            marks = {id(s): len(s.places) for s in others}
            client = clients[index % len(clients)]
            queue_seen = received[index % len(clients)]
            mark = len(queue_seen)
            cpu_before = cpu_seconds(server_pid)
            sent = time.perf_counter()
            answer = await client.call(
                "admit", {"appointment_id": str(admitted_id)}, namespace="/clinic", timeout=30
            )
            assert "visit_id" in answer, answer
            deadline = time.monotonic() + 30

            # As bench/waiting_room.py: the round ends when the admitting provider's queue shows
            # the visit and every other patient has their new place.
            while not all(len(s.places) > marks[id(s)] for s in others):
                if time.monotonic() > deadline:
                    raise TimeoutError("position updates did not arrive")
                await asyncio.sleep(0.002)
            places_cpu_ms.append((cpu_seconds(server_pid) - cpu_before) * 1000)
            while not any(in_visit(d, admitted_id) for _, d in queue_seen[mark:]):
                if time.monotonic() > deadline:
                    raise TimeoutError("the provider's queue did not show the visit")
                await asyncio.sleep(0.002)
            cpu_ms.append((cpu_seconds(server_pid) - cpu_before) * 1000)
            this_round = [(s.places[marks[id(s)]][0] - sent) * 1000 for s in others]
            # Each remaining walk-in moved up one place.
            assert all(
                s.places[marks[id(s)]][1]["position"] == n for n, s in enumerate(others, start=1)
            ), "positions out of order"
            delays_ms.extend(this_round)
            rounds_ms.append(max(this_round))
            print(
                f"round {index}: all places in {max(this_round):.0f} ms "
                f"(p50 {percentile(this_round, 0.5):.0f} ms), server CPU "
                f"{places_cpu_ms[-1]:.0f} ms until then, {cpu_ms[-1]:.0f} ms in all",
                flush=True,
            )
            provider_at = next(t for t, d in queue_seen[mark:] if in_visit(d, admitted_id))
            provider_ms.append((provider_at - sent) * 1000)
            await asyncio.sleep(0.3)
        for client in clients:
            await client.disconnect()
        for sock in sockets.values():
            assert sock.task is not None
            sock.task.cancel()
        await asyncio.gather(*(s.task for s in sockets.values() if s.task), return_exceptions=True)
    return {
        "waiting": len(walk_ins),
        "providers": len(staff),
        "connect_s": round(connect_s, 1),
        "admits": len(rounds_ms),
        "updates_measured": len(delays_ms),
        "admit_provider_queue_p50_ms": round(percentile(provider_ms, 0.5), 1),
        "admit_update_p50_ms": round(percentile(delays_ms, 0.5), 1),
        "admit_update_p99_ms": round(percentile(delays_ms, 0.99), 1),
        "admit_all_updated_p50_ms": round(percentile(rounds_ms, 0.5), 1),
        "admit_all_updated_max_ms": round(max(rounds_ms), 1),
        # The server's CPU per round (admit, every place, both providers' queues): what the
        # round costs whatever else the machine runs.
        "server_cpu_ms_per_admit_p50": round(percentile(cpu_ms, 0.5), 1),
        # ... of which until every place had arrived (the admit and the places, first).
        "server_cpu_ms_to_all_places_p50": round(percentile(places_cpu_ms, 0.5), 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiting", type=int, default=1000)
    parser.add_argument("--admits", type=int, default=20)
    parser.add_argument("--providers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        staff, walk_ins = await seed(url, args.waiting, args.providers)
        with app_server(bench_env(url, tmp, None)) as server:
            result = await measure(server.pid, server.url, staff, walk_ins, args.admits)
    load = os.getloadavg()[0]
    print(json.dumps({"mode": "sqlite, 1 process", "load_average_1m": round(load, 1)} | result))


if __name__ == "__main__":
    asyncio.run(main())

"""One participant floods the visit namespace with WebRTC offers: does another clinic notice?

    python bench/offer_flood.py [--seconds 10] [--pace-ms 20]

Runs a real server process (`python -m app serve`) on a scratch SQLite file. A provider of
clinic A holds an open visit and, on its socket, sends offers back to back: each big one has
400 small media sections (about 40 KB, under the body limit), every fifth is a valid offer of
six sections from an aiortc peer. Meanwhile an admin of clinic B lists their staff over HTTP
(`GET /api/users`) every `--pace-ms`; the same requests run first with no flood. Prints the
p50/p99 of clinic B's requests in both phases, the offers sent and how they were answered, and,
last, one JSON line: {"idle_p99_ms", "flood_p99_ms", "ratio", ...} (goal: ratio <= 2).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import socketio

# `python bench/offer_flood.py` puts bench/ on the import path, not the repository root where
# tests.support lives (app, scheduling and signaling also come from the editable install).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.auth import hash_password, issue_session_token
from app.core.config import load_settings
from app.core.db import Database
from app.core.models import Clinic, Patient, Role, User
from app.migrations import upgrade
from scheduling.models import Appointment, AppointmentStatus, AppointmentType, ProviderSchedule
from signaling.models import Visit
from tests.support.servers import app_server, server_env

SECRET = "bench-secret-" + "f" * 40
BIG_SECTIONS = 400


async def seed(url: str) -> tuple[str, str, uuid.UUID]:
    """Clinic A's provider with an open visit, clinic B's admin: their session tokens and the
    visit."""
    settings = load_settings(env="test", secret_key=SECRET, DATABASE_URL=url)
    db = Database(settings.resolved_database_url)
    await upgrade(db)
    now = datetime.now(UTC)
    async with db.session() as session:
        a, b = Clinic(name="Clinic A"), Clinic(name="Clinic B")
        session.add_all([a, b])
        await session.flush()
        provider = User(
            clinic_id=a.id,
            email="provider@a.example",
            full_name="Flooding Provider",
            role=Role.PROVIDER,
            password_hash=hash_password("bench-password-1"),
        )
        admin = User(
            clinic_id=b.id,
            email="admin@b.example",
            full_name="Other Clinic Admin",
            role=Role.ADMIN,
            password_hash=hash_password("bench-password-1"),
        )
        staff = [
            User(
                clinic_id=b.id,
                email=f"staff{i}@b.example",
                full_name=f"Staff {i}",
                role=Role.PROVIDER,
                password_hash="x",
            )
            for i in range(20)
        ]
        patient = Patient(
            clinic_id=a.id, given_name="Pat", family_name="Flood", birth_date=date(1980, 1, 1)
        )
        kind = AppointmentType(clinic_id=a.id, name="Video", duration_minutes=20)
        session.add_all([provider, admin, patient, kind, *staff])
        await session.flush()
        session.add(ProviderSchedule(clinic_id=a.id, provider_id=provider.id, timezone="UTC"))
        appointment = Appointment(
            clinic_id=a.id,
            provider_id=provider.id,
            patient_id=patient.id,
            appointment_type_id=kind.id,
            start_at=now - timedelta(minutes=5),
            end_at=now + timedelta(minutes=15),
            busy_until=now + timedelta(minutes=15),
            status=AppointmentStatus.CHECKED_IN,
        )
        session.add(appointment)
        await session.flush()
        visit = Visit(
            appointment_id=appointment.id,
            clinic_id=a.id,
            provider_id=provider.id,
            patient_id=patient.id,
        )
        session.add(visit)
        await session.commit()
        tokens = [
            issue_session_token(settings, user_id=u.id, clinic_id=u.clinic_id, role=u.role)[0]
            for u in (provider, admin)
        ]
    await db.dispose()
    return tokens[0], tokens[1], visit.id


def big_offer(valid: str) -> str:
    """The valid offer's session lines, then BIG_SECTIONS small media sections."""
    head = valid.split("\r\nm=", 1)[0]
    head = "\r\n".join(x for x in head.split("\r\n") if not x.startswith("a=group:"))
    sections = "".join(
        f"\r\nm={'audio' if i % 2 == 0 else 'video'} 9 UDP/TLS/RTP/SAVPF 96\r\n"
        f"c=IN IP4 0.0.0.0\r\na=mid:{i}\r\na=sendrecv\r\na=rtpmap:96 opus/48000/2"
        for i in range(BIG_SECTIONS)
    )
    return head + sections + "\r\n"


async def valid_offer() -> str:
    from tests.signaling.peers import ClientPeer

    peer = ClientPeer("flooder")
    await peer.pc.setLocalDescription(await peer.pc.createOffer())
    sdp: str = peer.pc.localDescription.sdp
    await peer.close()
    return sdp


async def other_clinic(base: str, token: str, until: float, pace: float, out: list[float]) -> None:
    """Clinic B's admin lists their staff every `pace` seconds until `until`."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < until:
            started = time.perf_counter()
            async with http.get(f"{base}/api/users", headers=headers) as resp:
                await resp.read()
                assert resp.status == 200, resp.status
            out.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(pace)


async def flood(
    base: str, token: str, visit_id: uuid.UUID, until: float, answers: collections.Counter[str]
) -> None:
    valid = await valid_offer()
    big = big_offer(valid)
    assert big.count("\r\nm=") == BIG_SECTIONS and len(big) < 60_000
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        base,
        headers={"Authorization": f"Bearer {token}"},
        auth={"visit_id": str(visit_id)},
        namespaces=["/visit"],
        transports=["websocket"],
        wait_timeout=10,
    )
    sent = 0
    try:
        while time.monotonic() < until:
            sdp = valid if sent % 5 == 4 else big
            ack: Any = await client.call("offer", {"sdp": sdp}, namespace="/visit", timeout=60)
            sent += 1
            answers[ack.get("type") or ack.get("error", {}).get("code", "?")] += 1
    finally:
        await client.disconnect()


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(seconds: float, pace_ms: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="offer-flood-") as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        provider_token, admin_token, visit_id = await seed(url)
        env = server_env(url, Path(tmp) / "data", OPENCONSULT_SECRET_KEY=SECRET)
        env["OPENCONSULT_RTC_LOOPBACK"] = "true"
        with app_server(env) as server:
            pace = pace_ms / 1000
            warm: list[float] = []
            await other_clinic(server.url, admin_token, time.monotonic() + 2, pace, warm)
            idle: list[float] = []
            await other_clinic(server.url, admin_token, time.monotonic() + seconds, pace, idle)
            flooded: list[float] = []
            answers: collections.Counter[str] = collections.Counter()
            until = time.monotonic() + seconds
            await asyncio.gather(
                flood(server.url, provider_token, visit_id, until, answers),
                other_clinic(server.url, admin_token, until, pace, flooded),
            )
    idle_p99, flood_p99 = p(idle, 0.99), p(flooded, 0.99)
    print(
        f"idle:  {len(idle)} requests, p50 {statistics.median(idle):.1f} ms, p99 {idle_p99:.1f} ms"
    )
    print(
        f"flood: {len(flooded)} requests, p50 {statistics.median(flooded):.1f} ms, "
        f"p99 {flood_p99:.1f} ms"
    )
    print(f"offers sent: {sum(answers.values())}, answered: {dict(answers)}")
    return {
        "idle_p99_ms": round(idle_p99, 1),
        "flood_p99_ms": round(flood_p99, 1),
        "ratio": round(flood_p99 / idle_p99, 2),
        "idle_p50_ms": round(statistics.median(idle), 1),
        "flood_p50_ms": round(statistics.median(flooded), 1),
        "requests": [len(idle), len(flooded)],
        "offers": dict(answers),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--pace-ms", type=float, default=20.0, help="gap between B's requests")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.seconds, args.pace_ms))))


if __name__ == "__main__":
    main()

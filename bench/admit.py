"""Instant admit: from the provider's admit click to the first remote picture on both sides.

    python bench/admit.py [--walks 7] [--warm 100] [--cpu-seconds 20]

Runs a real server process (`python -m app serve`, scratch SQLite, the relay offering
127.0.0.1) and Debian's headless Chromium with its fake camera. Each walk is one patient and one
provider: the patient checks in through the page (date of birth, consent, device check) and
waits; the provider clicks Admit in their queue; both pages note when their first remote
picture arrives (epoch ms from the browser's clock, the same on both pages). The walks run
three times in one run, one server after the other:

- baseline: OPENCONSULT_WARM_WAITING=false (the waiting page opens the visit page after the
  admit, and so does the provider's queue, as before instant admit);
- patient_warm: the waiting page holds its connection to the relay and becomes the visit at
  the admit; the provider has not allowed the camera yet, so their queue opens the visit page;
- warm: both warm: the provider has allowed the camera, so their queue page holds its own
  connection to the relay too and becomes the visit at the admit click.

Then the cost of waiting warm: `--warm` synthetic aiortc patients (tests/signaling/peers.py)
check in, wait with a warm connection each (ICE and DTLS done, nothing sent), and the server's
CPU is measured over `--cpu-seconds`, against the same server idle with none.

A walk's time is the later of the two sides (the visit has started when both see each other).
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

# `python bench/admit.py` puts bench/ on the import path, not the repository root where
# tests.support lives (app, scheduling and signaling come from the editable install).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import socketio

from app.core.auth import hash_password
from app.core.config import load_settings
from app.core.db import Database
from app.core.models import Clinic, Patient, Role, User
from app.migrations import upgrade
from bench.waiting_room import SECRET, bench_env, percentile, seed
from scheduling.links import join_token
from scheduling.models import Appointment, AppointmentType, ProviderSchedule
from tests.signaling.conftest import daytime_zone
from tests.support.servers import app_server

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PASSWORD = "bench-password-1"
BIRTH_DATE = date(1979, 4, 2)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


# ---------------------------------------------------------------- the walks in Chromium


async def seed_walks(url: str, walks: int) -> list[dict[str, str]]:
    """One provider and one patient due in five minutes per walk (a queue of one)."""
    settings = load_settings(env="test", secret_key=SECRET, DATABASE_URL=url)
    db = Database(settings.resolved_database_url)
    await upgrade(db)
    out = []
    async with db.session() as session:
        clinic = Clinic(name=f"Admit bench {uuid.uuid4().hex[:6]}")
        session.add(clinic)
        await session.flush()
        kind = AppointmentType(clinic_id=clinic.id, name="Video 20", duration_minutes=20)
        session.add(kind)
        await session.flush()
        for n in range(walks):
            provider = User(
                clinic_id=clinic.id,
                email=f"admit{n}-{uuid.uuid4().hex[:6]}@bench.example",
                full_name=f"Provider {n}",
                role=Role.PROVIDER,
                password_hash=hash_password(PASSWORD),
            )
            patient = Patient(
                clinic_id=clinic.id,
                given_name="Walk",
                family_name=f"Patient{n}",
                birth_date=BIRTH_DATE,
            )
            session.add_all([provider, patient])
            await session.flush()
            session.add(
                ProviderSchedule(
                    clinic_id=clinic.id, provider_id=provider.id, timezone=daytime_zone()
                )
            )
            start = datetime.now(UTC) + timedelta(minutes=5)
            appointment = Appointment(
                clinic_id=clinic.id,
                provider_id=provider.id,
                patient_id=patient.id,
                appointment_type_id=kind.id,
                start_at=start,
                end_at=start + timedelta(minutes=20),
                busy_until=start + timedelta(minutes=20),
            )
            session.add(appointment)
            await session.flush()
            out.append(
                {
                    "email": provider.email,
                    "token": join_token(settings, appointment),
                    "name": f"{patient.given_name} {patient.family_name}",
                }
            )
        await session.commit()
    await db.dispose()
    return out


WARM_CONNECTED = """async () => window.openconsultVisit
  && (await window.openconsultVisit.remoteStats()).connection === "connected" """


async def walk(browser: Any, base: str, who: dict[str, str], mode: str) -> tuple[float, float]:
    """One check-in and admit; seconds from the click to each side's first remote picture."""
    from tests.e2e.test_instant_admit import FIRST_FRAME, NOT_ASKED_YET, admit_and_time
    from tests.e2e.test_waiting_room import check_in

    patient_ctx = await browser.new_context(base_url=base)
    provider_ctx = await browser.new_context(base_url=base)
    try:
        for ctx in (patient_ctx, provider_ctx):
            ctx.set_default_timeout(20_000)
            await ctx.add_init_script(FIRST_FRAME)
        if mode == "warm":
            # A provider who has allowed the site their camera: the queue page holds it warm.
            await provider_ctx.grant_permissions(["camera", "microphone"])
        else:
            # Not asked yet (the test browser's fake prompt would say "granted").
            await provider_ctx.add_init_script(NOT_ASKED_YET)
        provider = await provider_ctx.new_page()
        await provider.goto("/login?next=/provider/queue")
        await provider.get_by_label("Email").fill(who["email"])
        await provider.get_by_label("Password").fill(PASSWORD)
        await provider.get_by_role("button", name="Sign in").click()
        await provider.wait_for_url("**/provider/queue")
        patient = await patient_ctx.new_page()
        await check_in(patient, who["token"])
        if mode != "baseline":
            await patient.wait_for_function(WARM_CONNECTED, timeout=20_000)
        if mode == "warm":
            await provider.wait_for_function(WARM_CONNECTED, timeout=20_000)
        await provider.get_by_role("button", name=f"Admit {who['name']}").wait_for()
        return await admit_and_time(patient, provider, who["name"], timeline=mode == "warm")
    finally:
        await patient_ctx.close()
        await provider_ctx.close()


async def walks(mode: str, count: int) -> dict[str, Any]:
    from tests.support import chromium

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        people = await seed_walks(url, count)
        env = bench_env(url, tmp, None) | {
            "OPENCONSULT_RTC_LOOPBACK": "true",
            "OPENCONSULT_WARM_WAITING": "false" if mode == "baseline" else "true",
        }
        with app_server(env) as server:
            async with chromium.launched() as browser:
                sides = []
                for who in people:
                    patient_s, provider_s = await walk(browser, server.url, who, mode)
                    sides.append((patient_s, provider_s))
                    print(
                        f"{mode}: admit click -> first remote frame: patient {patient_s:.3f} s, "
                        f"provider {provider_s:.3f} s",
                        flush=True,
                    )
    both = [max(s) for s in sides]
    return {
        "p50_s": round(statistics.median(both), 3),
        "p95_s": round(percentile(both, 0.95), 3),
        "patient_p50_s": round(statistics.median(s[0] for s in sides), 3),
        "provider_p50_s": round(statistics.median(s[1] for s in sides), 3),
        "walks": len(both),
    }


# ---------------------------------------------------------------- waiting warm, at scale


async def warm_cost(count: int, seconds: float) -> dict[str, Any]:
    """Server CPU with `count` patients waiting warm, against the same server with none."""
    from tests.signaling.peers import ClientPeer

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        seeded = await seed(url, count, count)
        env = bench_env(url, tmp, None) | {"OPENCONSULT_RTC_LOOPBACK": "true"}
        with app_server(env) as server:
            await asyncio.sleep(2)  # start-up work done
            before = cpu_seconds(server.pid)
            await asyncio.sleep(seconds)
            idle_pct = (cpu_seconds(server.pid) - before) / seconds * 100

            clients: list[socketio.AsyncClient] = []
            peers: list[ClientPeer] = []
            started = time.perf_counter()
            try:
                for rows in seeded.patients.values():
                    for _appointment_id, cookie in rows:
                        client = socketio.AsyncClient(reconnection=False)
                        await client.connect(
                            server.url,
                            headers={"Cookie": f"oc_patient={cookie}"},
                            auth={"waiting": True},
                            namespaces=["/visit"],
                            transports=["websocket"],
                            wait_timeout=10,
                        )
                        clients.append(client)
                        peer = ClientPeer(f"warm{len(peers)}", sending=False)
                        peers.append(peer)
                        await peer.pc.setLocalDescription(await peer.pc.createOffer())
                        ack = await client.call(
                            "offer",
                            {"sdp": peer.pc.localDescription.sdp},
                            namespace="/visit",
                            timeout=30,
                        )
                        await peer.answered(ack["sdp"])
                deadline = time.monotonic() + 120
                while sum(p.pc.connectionState == "connected" for p in peers) < count:
                    if time.monotonic() > deadline:
                        raise TimeoutError("warm connections did not all connect")
                    await asyncio.sleep(0.2)
                connect_s = time.perf_counter() - started
                await asyncio.sleep(3)  # the DTLS handshakes' after-work settles
                before = cpu_seconds(server.pid)
                await asyncio.sleep(seconds)
                warm_pct = (cpu_seconds(server.pid) - before) / seconds * 100
                packets = sum([await p.packets_received() for p in peers])
            finally:
                for peer in peers:
                    await peer.close()
                for client in clients:
                    await client.disconnect()
    return {
        "warm_connections": count,
        "warm_connect_s": round(connect_s, 1),
        "server_cpu_idle_pct": round(idle_pct, 2),
        "server_cpu_warm_pct": round(warm_pct, 2),
        "server_cpu_per_warm_connection_pct": round((warm_pct - idle_pct) / count, 3),
        "rtp_packets_received_while_waiting": packets,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--walks", type=int, default=7)
    parser.add_argument("--warm", type=int, default=100)
    parser.add_argument("--cpu-seconds", type=float, default=20.0)
    args = parser.parse_args()

    baseline = await walks("baseline", args.walks)
    print(f"baseline (no warm connection): {baseline}", flush=True)
    patient_warm = await walks("patient_warm", args.walks)
    print(f"patient warm, provider opens the visit page: {patient_warm}", flush=True)
    warm = await walks("warm", args.walks)
    print(f"warm, both sides: {warm}", flush=True)
    cost = await warm_cost(args.warm, args.cpu_seconds)
    print(f"waiting warm: {cost}", flush=True)
    print(
        json.dumps(
            {
                "admit_to_first_frame_p50_s": warm["p50_s"],
                "admit_to_first_frame_p95_s": warm["p95_s"],
                "admit_patient_first_frame_p50_s": warm["patient_p50_s"],
                "admit_provider_first_frame_p50_s": warm["provider_p50_s"],
                "baseline_admit_to_first_frame_p50_s": baseline["p50_s"],
                "baseline_admit_to_first_frame_p95_s": baseline["p95_s"],
                "baseline_patient_first_frame_p50_s": baseline["patient_p50_s"],
                "baseline_provider_first_frame_p50_s": baseline["provider_p50_s"],
                "patient_warm_admit_to_first_frame_p50_s": patient_warm["p50_s"],
                "patient_warm_admit_to_first_frame_p95_s": patient_warm["p95_s"],
                "walks": warm["walks"],
            }
            | cost
        )
    )


if __name__ == "__main__":
    asyncio.run(main())

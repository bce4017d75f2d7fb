"""Autosave under load: N providers each save a draft every few seconds against one server.

Starts one real server process (`python -m app serve`) on a fresh database, signs in N providers
(tokens minted with the server's secret), and has each autosave its own draft on a fixed
cadence. Reports save latency, lost or reordered versions (a save answered with a version other
than the one expected, a 409, or a final note that differs from the last text sent), and the
share of the server's save time spent encrypting (from the Server-Timing header).

    python bench/notes.py [--providers 100] [--interval 2] [--seconds 60]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import aiohttp

# `python bench/notes.py` puts bench/ on the import path, not the repository root where
# tests.support lives (app, scheduling and signaling also come from the editable install).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.auth import issue_session_token
from app.core.config import Settings, load_settings, new_note_key
from app.core.db import Database
from app.core.models import Clinic, Patient, Role, User
from app.migrations import upgrade
from tests.support.servers import app_server, server_env

FILLER = (
    "Patient reports intermittent symptoms; reviewed history, medications and allergies. "
) * 30  # ~2.5 kB: a realistic note body


@dataclass
class Provider:
    user_id: uuid.UUID
    clinic_id: uuid.UUID
    patient_id: uuid.UUID
    token: str = ""
    note_id: str = ""
    version: int = 1
    last_sections: dict[str, str] = field(default_factory=dict)
    ok_saves: int = 0


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    encrypt_ms: float = 0.0
    app_ms: float = 0.0
    saves: int = 0
    lost: int = 0
    reordered: int = 0
    errors: int = 0


def server_timing(header: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in header.split(","):
        name, _, rest = part.strip().partition(";")
        if rest.startswith("dur="):
            out[name] = float(rest[4:])
    return out


async def seed(settings: Settings, providers: int) -> list[Provider]:
    db = Database(settings.resolved_database_url)
    await upgrade(db)
    clinic = Clinic(name=f"Bench clinic {uuid.uuid4().hex[:6]}")
    out: list[Provider] = []
    async with db.session() as session:
        session.add(clinic)
        await session.commit()
        for i in range(providers):
            user = User(
                clinic_id=clinic.id,
                email=f"bench-{i}-{uuid.uuid4().hex[:6]}@bench.example",
                full_name=f"Dr. Bench {i}",
                role=Role.PROVIDER,
                password_hash="!unusable",
            )
            patient = Patient(
                clinic_id=clinic.id,
                given_name="Bench",
                family_name=f"Patient {i}",
                birth_date=date(1980, 1, 1),
            )
            session.add_all([user, patient])
            out.append(Provider(user.id, clinic.id, patient.id))
        await session.commit()
    await db.dispose()
    for p in out:
        p.token, _ = issue_session_token(
            settings, user_id=p.user_id, clinic_id=p.clinic_id, role=Role.PROVIDER
        )
    return out


async def run_provider(
    http: aiohttp.ClientSession,
    base: str,
    p: Provider,
    tally: Tally,
    *,
    interval: float,
    until: float,
) -> None:
    headers = {"Authorization": f"Bearer {p.token}"}
    async with http.post(
        f"{base}/api/patients/{p.patient_id}/notes", json={}, headers=headers
    ) as resp:
        body = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"create failed: {resp.status} {body}")
        p.note_id, p.version = body["id"], body["version"]
    await asyncio.sleep(random.uniform(0, interval))
    tick = 0
    next_at = time.monotonic()
    while next_at < until:
        tick += 1
        sections = {"chief_complaint": f"save {tick}", "subjective": f"{tick} {FILLER}"}
        started = time.perf_counter()
        try:
            async with http.put(
                f"{base}/api/notes/{p.note_id}",
                json={"version": p.version, "sections": sections},
                headers=headers,
            ) as resp:
                body = await resp.json()
                elapsed = (time.perf_counter() - started) * 1000
                tally.saves += 1
                if resp.status == 200:
                    tally.latencies_ms.append(elapsed)
                    timing = server_timing(resp.headers.get("Server-Timing", ""))
                    tally.encrypt_ms += timing.get("encrypt", 0.0)
                    tally.app_ms += timing.get("app", 0.0)
                    if body["version"] != p.version + 1:
                        tally.reordered += 1
                    p.version = body["version"]
                    p.last_sections = sections
                    p.ok_saves += 1
                else:
                    tally.lost += 1
                    if resp.status == 409 and "current" in body["error"].get("detail", {}):
                        p.version = body["error"]["detail"]["current"]["version"]
        except aiohttp.ClientError:
            tally.errors += 1
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def verify(http: aiohttp.ClientSession, base: str, providers: list[Provider]) -> int:
    """Notes whose stored version or text is not what the last acknowledged save wrote."""
    bad = 0
    for p in providers:
        headers = {"Authorization": f"Bearer {p.token}"}
        async with http.get(f"{base}/api/notes/{p.note_id}", headers=headers) as resp:
            note = await resp.json()
        expected = {"chief_complaint": "", "subjective": ""} | p.last_sections
        stored = {k: note["sections"][k] for k in expected}
        if note["version"] != 1 + p.ok_saves or stored != expected:
            bad += 1
    return bad


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


async def main(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="oc-bench-") as workdir:
        database_url = args.database_url or f"sqlite+aiosqlite:///{workdir}/bench.db"
        env = server_env(
            database_url,
            Path(workdir),
            redis_url=args.redis_url,
            OPENCONSULT_SECRET_KEY=secrets.token_urlsafe(48),
            OPENCONSULT_NOTE_KEYS=new_note_key("bench"),
        )
        settings = load_settings(
            env="test",
            secret_key=env["OPENCONSULT_SECRET_KEY"],
            note_keys=env["OPENCONSULT_NOTE_KEYS"],
            DATABASE_URL=database_url,
            data_dir=workdir,
        )
        providers = await seed(settings, args.providers)
        tally = Tally()
        with app_server(env, port=args.port or None) as server:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as http:
                until = time.monotonic() + args.seconds
                await asyncio.gather(
                    *(
                        run_provider(
                            http, server.url, p, tally, interval=args.interval, until=until
                        )
                        for p in providers
                    )
                )
                mismatched = await verify(http, server.url, providers)
    database = "postgresql" if args.database_url else "sqlite"
    print(f"{args.providers} providers, one save every {args.interval}s for {args.seconds}s")
    print(f"database {database}, redis {'yes' if args.redis_url else 'no'}, one server process")
    print(f"saves answered: {tally.saves} (ok {len(tally.latencies_ms)}, errors {tally.errors})")
    print(f"lost {tally.lost}, reordered {tally.reordered}, notes not as last saved {mismatched}")
    return {
        "providers": args.providers,
        "interval_s": args.interval,
        "seconds": args.seconds,
        "database": database,
        "saves": tally.saves,
        "lost_versions": tally.lost + tally.reordered + mismatched,
        "reordered_versions": tally.reordered,
        "transport_errors": tally.errors,
        "save_p50_ms": round(statistics.median(tally.latencies_ms), 2) if tally.latencies_ms else 0,
        "save_p99_ms": round(percentile(tally.latencies_ms, 99), 2),
        "save_max_ms": round(max(tally.latencies_ms, default=0.0), 2),
        "encryption_share": round(tally.encrypt_ms / tally.app_ms, 4) if tally.app_ms else 0,
        "encrypt_ms_per_save": round(tally.encrypt_ms / max(1, len(tally.latencies_ms)), 4),
        "server_ms_per_save": round(tally.app_ms / max(1, len(tally.latencies_ms)), 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=100)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--database-url", help="PostgreSQL URL of an empty database")
    parser.add_argument("--redis-url", help="Redis for the session denylist")
    figures = asyncio.run(main(parser.parse_args()))
    print(json.dumps(figures))

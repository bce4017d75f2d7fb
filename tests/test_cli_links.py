"""Links and times the command line hands out: links on the port served (`serve --port`), the
demo visit's time in the clinic's zone, and the clinic's phone number."""

from __future__ import annotations

import re

import aiohttp
from sqlmodel import select

from app.core.db import Database
from app.core.models import Clinic
from app.demo import DEMO_CLINIC
from scheduling.models import OutboxMessage
from tests.conftest import Factory
from tests.scheduling.conftest import SchedulingFactory, at, book_body, next_weekday
from tests.support.servers import app_server
from tests.test_cli import _env, run


async def test_serve_on_another_port_sends_links_to_that_port(
    process_env: dict[str, str], db: Database, factory: Factory
):
    """The README's second process runs `serve --port 8081`: its emails must not say :8080."""
    cal = await SchedulingFactory(db, factory).calendar()
    assert "OPENCONSULT_PORT" not in process_env and "OPENCONSULT_PUBLIC_URL" not in process_env
    with app_server(process_env) as server:  # --port: a free port, never the default 8080
        async with aiohttp.ClientSession() as http:
            login = await http.post(
                f"{server.url}/api/auth/login",
                json={"email": cal.scheduler.user.email, "password": cal.scheduler.password},
            )
            assert login.status == 200, await login.text()
            headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
            start = at(next_weekday(1), 10)
            booked = await http.post(
                f"{server.url}/api/appointments", json=book_body(cal, start), headers=headers
            )
            assert booked.status == 201, await booked.text()
            link = (await booked.json())["join_url"]
    assert link.startswith(f"{server.url}/j/"), link
    async with db.session() as session:
        emails = (await session.exec(select(OutboxMessage))).all()
    assert emails and all(f"{server.url}/j/" in m.body_text for m in emails)


def test_a_public_url_wins_over_the_port_served(settings_factory):
    settings = settings_factory(public_url="https://visits.clinic.example/")
    assert settings.serving_at("127.0.0.1", 8081).base_url == "https://visits.clinic.example"
    plain = settings_factory()
    assert plain.serving_at("127.0.0.1", 8081).base_url == "http://127.0.0.1:8081"


async def test_seed_demo_prints_the_visit_time_in_the_clinic_zone_and_sets_a_phone(
    database_url, tmp_path, db: Database
):
    result = run(["seed-demo"], _env(database_url, tmp_path))
    assert result.returncode == 0, result.stderr
    line = next(row for row in result.stdout.splitlines() if row.startswith("Demo visit:"))
    # e.g. "… on Monday 9 March 2026, 09:40 (America/New_York, EDT), 13:40 UTC; …"
    assert re.search(r"\d{2}:\d{2} \(America/New_York, E[SD]T\), \d{2}:\d{2} UTC", line), line
    async with db.session() as session:
        clinic = (await session.exec(select(Clinic).where(Clinic.name == DEMO_CLINIC))).one()
    assert clinic.phone  # what a patient with a locked link is told to call


async def test_create_user_sets_the_clinic_phone(database_url, tmp_path, db: Database):
    env = _env(database_url, tmp_path)
    args = ["create-user", "--name", "Dana Boss", "--role", "admin", "--clinic", "Hilltop Clinic"]
    first = run(
        [
            *args,
            "--email",
            "a@hilltop.example",
            "--clinic-phone",
            "+1 555 0100",
            "--password-stdin",
        ],
        env,
        stdin="correct-horse-battery\n",
    )
    assert first.returncode == 0, first.stderr
    too_long = run(
        [*args, "--email", "b@hilltop.example", "--clinic-phone", "1" * 41, "--password-stdin"],
        env,
        stdin="correct-horse-battery\n",
    )
    assert too_long.returncode == 2 and "--clinic-phone" in too_long.stderr
    async with db.session() as session:
        clinic = (await session.exec(select(Clinic).where(Clinic.name == "Hilltop Clinic"))).one()
    assert clinic.phone == "+1 555 0100"

"""A booking for today reaches the provider's open clinic queue at once."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import aiohttp

from app.core.db import Database
from app.core.models import Role
from scheduling.models import AppointmentType, AvailabilityRule, ProviderSchedule
from tests.conftest import Factory
from tests.signaling.conftest import staff_headers


def midday_zone(now: datetime) -> str:
    """A fixed-offset zone where it is now about noon: a slot later today exists at any hour."""
    offset = 12 - now.hour  # -11..+12 hours, each an IANA zone (whose sign is inverted)
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


async def test_a_same_day_booking_appears_in_the_open_queue(
    server, db: Database, factory: Factory, sockets
):
    clinic = await factory.clinic()
    provider = await factory.staff(Role.PROVIDER, clinic)
    scheduler = await factory.staff(Role.SCHEDULER, clinic)
    patient = await factory.patient(clinic)
    zone = midday_zone(datetime.now(UTC))
    today = datetime.now(ZoneInfo(zone)).date()
    kind = AppointmentType(clinic_id=clinic.id, name="Video 20", duration_minutes=20)
    schedule = ProviderSchedule(
        clinic_id=clinic.id, provider_id=provider.id, timezone=zone, min_notice_minutes=30
    )
    async with db.session() as session:
        session.add_all([kind, schedule])
        await session.flush()
        session.add(
            AvailabilityRule(
                schedule_id=schedule.id,
                weekday=today.weekday(),
                start_time=time(6),
                end_time=time(20),
            )
        )
        await session.commit()

    base = str(server.make_url("")).rstrip("/")
    queue = await sockets(base, "/clinic", await staff_headers(base, provider))
    assert (await queue.wait_for("queue"))["patients"] == []

    headers = await staff_headers(base, scheduler)
    async with aiohttp.ClientSession(headers=headers) as http:
        found = await http.get(
            f"{base}/api/providers/{provider.id}/slots",
            params={"appointment_type_id": str(kind.id), "from": str(today), "to": str(today)},
        )
        assert found.status == 200, await found.text()
        slot = (await found.json())["slots"][0]
        booked = await http.post(
            f"{base}/api/appointments",
            json={
                "provider_id": str(provider.id),
                "patient_id": str(patient.id),
                "appointment_type_id": str(kind.id),
                "start": slot["start"],
            },
        )
        assert booked.status == 201, await booked.text()
        appointment_id = (await booked.json())["id"]

    shown = await queue.wait_for(
        "queue", lambda q: any(p["appointment_id"] == appointment_id for p in q["patients"])
    )
    row = next(p for p in shown["patients"] if p["appointment_id"] == appointment_id)
    assert row["status"] == "not arrived"

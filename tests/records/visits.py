"""A held video visit for the record's tests: its appointment, visit and note helpers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from app.core.db import Database
from app.core.models import AuditEvent, utcnow
from app.web.keys import SETTINGS
from scheduling.links import join_token
from scheduling.models import Appointment, AppointmentStatus, AppointmentType, ProviderSchedule
from signaling.models import Visit
from tests.records.conftest import Person, Ward

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
BIRTH_DATE = "1984-03-12"  # the ward patient's (tests.conftest.Factory.patient)


@dataclass
class HeldVisit:
    appointment: Appointment
    visit: Visit
    token: str


async def hold_visit(
    db: Database, ward: Ward, *, provider: Person | None = None, started_ago: timedelta
) -> HeldVisit:
    """An appointment of the ward's patient that started `started_ago`, with its visit."""
    provider = provider or ward.author
    start = datetime.now(UTC) - started_ago
    kind = AppointmentType(clinic_id=ward.clinic.id, name="Video 20", duration_minutes=20)
    async with db.session() as session:
        found = await session.exec(
            select(ProviderSchedule).where(ProviderSchedule.provider_id == provider.account.id)
        )
        if found.first() is None:
            session.add(
                ProviderSchedule(
                    clinic_id=ward.clinic.id, provider_id=provider.account.id, timezone="UTC"
                )
            )
        session.add(kind)
        await session.flush()
        appointment = Appointment(
            clinic_id=ward.clinic.id,
            provider_id=provider.account.id,
            patient_id=ward.patient.id,
            appointment_type_id=kind.id,
            start_at=start,
            end_at=start + timedelta(minutes=20),
            busy_until=start + timedelta(minutes=20),
            status=AppointmentStatus.CHECKED_IN,
        )
        session.add(appointment)
        await session.flush()
        visit = Visit(
            appointment_id=appointment.id,
            clinic_id=ward.clinic.id,
            provider_id=provider.account.id,
            patient_id=ward.patient.id,
            started_at=start + timedelta(minutes=1),
        )
        session.add(visit)
        await session.commit()
    token = join_token(ward.client.app[SETTINGS], appointment)
    return HeldVisit(appointment, visit, token)


async def end_visit(db: Database, held: HeldVisit) -> None:
    """What the provider's "End visit" does (signaling.visit.service.end_visit)."""
    async with db.session() as session:
        visit = await session.get(Visit, held.visit.id)
        appointment = await session.get(Appointment, held.appointment.id)
        assert visit is not None and appointment is not None
        visit.ended_at = utcnow()
        appointment.status = AppointmentStatus.FULFILLED
        session.add_all([visit, appointment])
        await session.commit()
        held.visit = visit


async def open_note(ward: Ward, held: HeldVisit, who: Person | None = None) -> Any:
    who = who or ward.author
    return await ward.client.post(f"/api/visits/{held.visit.id}/note", headers=who.headers)


async def write_and_sign(ward: Ward, held: HeldVisit, sections: dict[str, str]) -> dict[str, Any]:
    note = await (await open_note(ward, held)).json()
    resp = await ward.save(note, sections)
    assert resp.status == 200, await resp.text()
    return await ward.sign(await resp.json())


async def confirm_identity(client: TestClient, token: str) -> None:
    resp = await client.post(f"/api/join/{token}/identity", json={"birth_date": BIRTH_DATE})
    assert resp.status == 200, await resp.text()


async def events(db: Database, action: str) -> list[AuditEvent]:
    async with db.session() as session:
        rows = await session.exec(
            select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.id))
        )
        return list(rows.all())


# --- the provider's note for the visit ------------------------------------------------------

"""A clinic with its staff, a patient, and staff of another clinic, all signed in.

The author and the colleague each had a (fulfilled) appointment with the patient a month ago, so
the patient is in their care; the bystander is a provider of the clinic who never saw them, and
admins are never in a patient's care: both must break the glass to read the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from app.core.db import Database
from app.core.models import Clinic, Patient, Role
from scheduling.models import Appointment, AppointmentStatus, AppointmentType, ProviderSchedule
from tests.conftest import Factory, StaffAccount, bearer_login


@dataclass
class Person:
    account: StaffAccount
    headers: dict[str, str]


@dataclass
class Ward:
    client: TestClient
    clinic: Clinic
    patient: Patient
    author: Person
    colleague: Person
    admin: Person
    scheduler: Person
    outsider: Person
    outside_admin: Person
    bystander: Person
    # The appointments that put the patient in the author's and the colleague's care.
    care_appointments: list[Appointment] = field(default_factory=list)

    async def break_glass(
        self, who: Person, reason: str = "Covering the on-call provider tonight."
    ) -> dict[str, Any]:
        """`who` breaks the glass for the ward's patient."""
        resp = await self.client.post(
            f"/api/patients/{self.patient.id}/break-glass",
            json={"reason": reason},
            headers=who.headers,
        )
        assert resp.status == 201, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body

    async def create_note(self, sections: dict[str, str] | None = None) -> dict[str, Any]:
        resp = await self.client.post(
            f"/api/patients/{self.patient.id}/notes",
            json={"sections": sections or {}},
            headers=self.author.headers,
        )
        assert resp.status == 201, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body

    async def save(
        self, note: dict[str, Any], sections: dict[str, str], *, version: int | None = None
    ) -> Any:
        return await self.client.put(
            f"/api/notes/{note['id']}",
            json={"version": version or note["version"], "sections": sections},
            headers=self.author.headers,
        )

    async def addendum(self, note: dict[str, Any], reason: str, text: str) -> dict[str, Any]:
        """The author adds an addendum to a signed note."""
        resp = await self.client.post(
            f"/api/notes/{note['id']}/addenda",
            json={"reason": reason, "text": text},
            headers=self.author.headers,
        )
        assert resp.status == 201, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body

    async def signed_note(self, sections: dict[str, str] | None = None) -> dict[str, Any]:
        return await self.sign(await self.create_note(sections or {"plan": "Rest and fluids."}))

    async def sign(self, note: dict[str, Any]) -> dict[str, Any]:
        """The author signs the note at the version given."""
        resp = await self.client.post(
            f"/api/notes/{note['id']}/sign",
            json={"version": note["version"]},
            headers=self.author.headers,
        )
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body


async def put_in_care(
    db: Database, clinic: Clinic, patient: Patient, provider: StaffAccount, *, days_ago: int
) -> Appointment:
    """A fulfilled appointment of `provider` with `patient`, `days_ago` days ago."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days_ago)
    async with db.session() as session:
        found = await session.exec(
            select(ProviderSchedule).where(ProviderSchedule.provider_id == provider.id)
        )
        if found.first() is None:
            session.add(
                ProviderSchedule(clinic_id=clinic.id, provider_id=provider.id, timezone="UTC")
            )
        kind = AppointmentType(clinic_id=clinic.id, name="Video 20", duration_minutes=20)
        session.add(kind)
        await session.flush()
        appointment = Appointment(
            clinic_id=clinic.id,
            provider_id=provider.id,
            patient_id=patient.id,
            appointment_type_id=kind.id,
            start_at=start,
            end_at=start + timedelta(minutes=20),
            busy_until=start + timedelta(minutes=20),
            status=AppointmentStatus.FULFILLED,
        )
        session.add(appointment)
        await session.commit()
    return appointment


@pytest.fixture
async def ward(client: TestClient, factory: Factory, db: Database) -> Ward:
    clinic = await factory.clinic()
    other = await factory.clinic()

    async def person(role: Role, where: Clinic) -> Person:
        account = await factory.staff(role, where)
        return Person(account, await bearer_login(client, account))

    patient = await factory.patient(clinic)
    author = await person(Role.PROVIDER, clinic)
    colleague = await person(Role.PROVIDER, clinic)
    return Ward(
        client=client,
        clinic=clinic,
        patient=patient,
        author=author,
        colleague=colleague,
        admin=await person(Role.ADMIN, clinic),
        scheduler=await person(Role.SCHEDULER, clinic),
        outsider=await person(Role.PROVIDER, other),
        outside_admin=await person(Role.ADMIN, other),
        bystander=await person(Role.PROVIDER, clinic),
        care_appointments=[
            await put_in_care(db, clinic, patient, author.account, days_ago=30),
            await put_in_care(db, clinic, patient, colleague.account, days_ago=29),
        ],
    )

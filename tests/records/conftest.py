"""A clinic with its staff, a patient, and staff of another clinic, all signed in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from app.core.models import Clinic, Patient, Role
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


@pytest.fixture
async def ward(client: TestClient, factory: Factory) -> Ward:
    clinic = await factory.clinic()
    other = await factory.clinic()

    async def person(role: Role, where: Clinic) -> Person:
        account = await factory.staff(role, where)
        return Person(account, await bearer_login(client, account))

    return Ward(
        client=client,
        clinic=clinic,
        patient=await factory.patient(clinic),
        author=await person(Role.PROVIDER, clinic),
        colleague=await person(Role.PROVIDER, clinic),
        admin=await person(Role.ADMIN, clinic),
        scheduler=await person(Role.SCHEDULER, clinic),
        outsider=await person(Role.PROVIDER, other),
        outside_admin=await person(Role.ADMIN, other),
    )

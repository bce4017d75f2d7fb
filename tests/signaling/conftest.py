"""Waiting-room test data: a clinic day with appointments starting soon, and socket clients."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp.test_utils import TestClient

from app.core.db import Database
from app.core.models import Clinic, Patient, Role
from app.main import create_app
from scheduling.links import join_token
from scheduling.models import Appointment, AppointmentType, ProviderSchedule
from tests.conftest import Factory, StaffAccount

BIRTH_DATE = date(1979, 4, 2)


@dataclass
class Visitable:
    """A provider's clinic with an appointment that can be joined now."""

    clinic: Clinic
    provider: StaffAccount
    scheduler: StaffAccount
    patient: Patient
    appointment: Appointment
    token: str


def daytime_zone() -> str:
    """A zone where it is around noon now: the provider's "today" (their queue's day) then
    holds the appointments of the next hours at any time the suite runs."""
    hours_ahead = (12 - datetime.now(UTC).hour + 12) % 24 - 12  # -12 .. +11
    if hours_ahead == 0:
        return "UTC"
    # POSIX-style names: Etc/GMT-3 is three hours ahead of UTC.
    return f"Etc/GMT{-hours_ahead:+d}"


class WaitingFactory:
    def __init__(self, db: Database, factory: Factory, settings: Any) -> None:
        self.db = db
        self.factory = factory
        self.settings = settings

    async def clinic_day(self) -> tuple[Clinic, StaffAccount, StaffAccount, AppointmentType]:
        clinic = await self.factory.clinic()
        provider = await self.factory.staff(Role.PROVIDER, clinic)
        scheduler = await self.factory.staff(Role.SCHEDULER, clinic)
        kind = AppointmentType(clinic_id=clinic.id, name="Video 20", duration_minutes=20)
        schedule = ProviderSchedule(
            clinic_id=clinic.id, provider_id=provider.id, timezone=daytime_zone()
        )
        async with self.db.session() as session:
            session.add_all([kind, schedule])
            await session.commit()
        return clinic, provider, scheduler, kind

    async def appointment(
        self,
        clinic: Clinic,
        provider: StaffAccount,
        kind: AppointmentType,
        *,
        starts_in: timedelta = timedelta(minutes=5),
        given: str = "Nora",
    ) -> tuple[Patient, Appointment, str]:
        patient = Patient(
            clinic_id=clinic.id,
            given_name=given,
            family_name=f"Patient{uuid.uuid4().hex[:4]}",
            birth_date=BIRTH_DATE,
            email=f"{given.lower()}@mail.example",
        )
        start = datetime.now(UTC) + starts_in
        appointment = Appointment(
            clinic_id=clinic.id,
            provider_id=provider.id,
            patient_id=patient.id,
            appointment_type_id=kind.id,
            start_at=start,
            end_at=start + timedelta(minutes=kind.duration_minutes),
            busy_until=start + timedelta(minutes=kind.duration_minutes),
        )
        async with self.db.session() as session:
            session.add(patient)
            await session.flush()
            session.add(appointment)
            await session.commit()
        return patient, appointment, join_token(self.settings, appointment)

    async def visitable(self) -> Visitable:
        clinic, provider, scheduler, kind = await self.clinic_day()
        patient, appointment, token = await self.appointment(clinic, provider, kind)
        return Visitable(clinic, provider, scheduler, patient, appointment, token)


@pytest.fixture
def waiting(db: Database, factory: Factory, settings: Any) -> WaitingFactory:
    return WaitingFactory(db, factory, settings)


async def check_in(client: Any, token: str, *, birth_date: date = BIRTH_DATE) -> None:
    """Walk the whole HTTP check-in; the client keeps the patient cookie."""
    base = f"/api/join/{token}"
    resp = await client.post(f"{base}/identity", json={"birth_date": birth_date.isoformat()})
    assert resp.status == 200, await resp.text()
    consent = await (await client.get(f"{base}/consent")).json()
    resp = await client.post(
        f"{base}/consent", json={"version": consent["version"], "accepted": True}
    )
    assert resp.status == 200, await resp.text()
    resp = await client.post(
        f"{base}/device-check", json={"camera": "ok", "microphone": "ok", "network_rtt_ms": 12}
    )
    assert resp.status == 200
    resp = await client.post(f"{base}/waiting")
    assert resp.status == 200 and (await resp.json())["step"] == "waiting"


@dataclass
class Listener:
    """A Socket.IO client that keeps every event it receives."""

    client: socketio.AsyncClient
    namespace: str
    events: list[tuple[str, Any]] = field(default_factory=list)

    async def wait_for(self, event: str, predicate: Any = None, within: float = 10) -> Any:
        """The first `event` (already received or coming) whose data passes `predicate`."""
        async with asyncio.timeout(within):
            seen = 0
            while True:
                for name, data in self.events[seen:]:
                    if name == event and (predicate is None or predicate(data)):
                        return data
                seen = len(self.events)
                await asyncio.sleep(0.02)

    async def call(self, event: str, data: Any) -> Any:
        return await self.client.call(event, data, namespace=self.namespace, timeout=10)


@pytest.fixture
async def sockets() -> AsyncIterator[Any]:
    opened: list[socketio.AsyncClient] = []

    async def connect(
        url: str, namespace: str, headers: dict[str, str], auth: dict[str, Any] | None = None
    ) -> Listener:
        client = socketio.AsyncClient(reconnection=False)
        listener = Listener(client, namespace)

        @client.on("*", namespace=namespace)  # type: ignore[misc]
        async def catch_all(event: str, data: Any = None) -> None:
            listener.events.append((event, data))

        await asyncio.wait_for(
            client.connect(
                url,
                headers=headers,
                auth=auth,
                namespaces=[namespace],
                transports=["websocket"],
                wait_timeout=10,
            ),
            timeout=10,
        )
        opened.append(client)
        return listener

    yield connect
    for client in opened:
        if client.connected:
            await client.disconnect()


async def staff_headers(base_url: str, account: StaffAccount) -> dict[str, str]:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            f"{base_url}/api/auth/login",
            json={"email": account.user.email, "password": account.password},
        )
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        if body.get("mfa") == "verify":  # admins pass the code step
            resp = await http.post(
                f"{base_url}/api/auth/mfa",
                json={"mfa_token": body["mfa_token"], "code": account.totp_code()},
            )
            assert resp.status == 200, await resp.text()
            body = await resp.json()
        return {"Authorization": f"Bearer {body['token']}"}


def cookie_header(client: Any, name: str = "oc_patient") -> dict[str, str]:
    for cookie in client.session.cookie_jar:
        if cookie.key == name:
            return {"Cookie": f"{name}={cookie.value}"}
    raise AssertionError(f"no {name} cookie")


@pytest.fixture
async def server(aiohttp_server, settings_factory):
    """The app, ready for visits over loopback (modules that need another define their own)."""
    app = create_app(
        settings_factory(waiting_grace_seconds=1.0, background_tasks=False, rtc_loopback=True)
    )
    return await aiohttp_server(app, host="127.0.0.1")


@pytest.fixture
async def http_clients(server):
    opened: list[TestClient] = []

    def make() -> TestClient:
        client = TestClient(server)
        opened.append(client)
        return client

    yield make
    for client in opened:
        # client.close() would stop the shared server too; close only the client's session.
        await client.session.close()


async def admit_patient(
    server, http: TestClient, v: Visitable, sockets
) -> tuple[str, dict[str, str]]:
    """Check the patient in and admit them; the visit id and the provider's headers."""
    url = str(server.make_url("/"))
    provider_headers = await staff_headers(url.rstrip("/"), v.provider)
    await check_in(http, v.token)
    clinic = await sockets(url, "/clinic", provider_headers)
    admitted = await clinic.call("admit", {"appointment_id": str(v.appointment.id)})
    await clinic.client.disconnect()
    return admitted["visit_id"], provider_headers


async def refused_connection(
    server, headers: dict[str, str], visit_id: str, *, auth: dict[str, Any] | None = None
) -> Any:
    """The refusal (code, message) a connection to the visit (or with `auth`) gets."""
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    refused_event = asyncio.Event()

    @client.on("connect_error", namespace="/visit")  # type: ignore[misc]
    async def on_error(data: Any = None) -> None:
        errors.append(data)
        refused_event.set()

    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await asyncio.wait_for(
                client.connect(
                    str(server.make_url("/")),
                    headers=headers,
                    auth=auth or {"visit_id": visit_id},
                    namespaces=["/visit"],
                    transports=["websocket"],
                    wait_timeout=10,
                ),
                timeout=10,
            )
        await asyncio.wait_for(refused_event.wait(), timeout=5)
        assert "data" in errors[0], errors
        return errors[0]["data"]
    finally:
        await client.disconnect()

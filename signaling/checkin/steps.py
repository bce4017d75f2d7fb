"""The check-in steps patients and guests share: consent, device check, waiting room, ping.

A patient comes by their join link (`/api/join/{token}/…`), a guest by their guest link
(`/api/guest/{token}/…`). Each kind says how its link resolves, how it is audited and what each
step changes; the handlers here parse, call and answer the same way for both.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core import audit
from app.core.models import utcnow
from app.web.api import read_json
from app.web.audited import record
from app.web.identity import Actor
from app.web.keys import DATABASE
from signaling.checkin import service as checkin


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    accepted: Literal[True]


DeviceState = Literal["ok", "denied", "missing", "error", "unsupported"]


class DeviceCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera: DeviceState
    microphone: DeviceState
    network_rtt_ms: int | None = Field(default=None, ge=0, le=60_000)
    browser: str | None = Field(default=None, max_length=200)


@dataclass(frozen=True)
class Audited:
    """How a step is audited: who acts, on what, and whose data it is."""

    actor: Actor
    object_type: str
    object_id: uuid.UUID
    patient_id: uuid.UUID


A = TypeVar("A")


class CheckInSteps(ABC, Generic[A]):
    """One kind of arrival (`A`: a patient's or a guest's) through the shared steps."""

    #: Where this kind's API lives, e.g. "/api/join/{token}".
    prefix: ClassVar[str]
    #: The audit action of each step: "consent", "device_check" and "waiting".
    actions: ClassVar[Mapping[str, str]]

    @abstractmethod
    async def arrival(self, request: web.Request, *, signed_in: bool = True) -> A:
        """Who the link names; with `signed_in`, only for the session their first step gave."""

    @abstractmethod
    def progress(self, arrival: A) -> dict[str, object]: ...

    @abstractmethod
    def clinic_of(self, arrival: A) -> uuid.UUID:
        """The clinic whose consent text applies."""

    @abstractmethod
    def audited(self, request: web.Request, arrival: A) -> Audited: ...

    @abstractmethod
    async def accept_consent(
        self, request: web.Request, session: AsyncSession, arrival: A, version: int
    ) -> dict[str, object]:
        """Record the acceptance; what the answer tells of it besides the progress."""

    @abstractmethod
    async def record_device_check(
        self, session: AsyncSession, arrival: A, result: dict[str, object]
    ) -> None: ...

    @abstractmethod
    async def enter_waiting(self, session: AsyncSession, arrival: A) -> None: ...

    @abstractmethod
    async def waiting_changed(self, request: web.Request, arrival: A) -> None:
        """Tell the provider (after the change is committed) that someone waits."""

    async def audit(
        self, request: web.Request, arrival: A, action: str, outcome: str = audit.SUCCESS
    ) -> None:
        audited = self.audited(request, arrival)
        await record(
            request,
            audited.actor,
            action,
            outcome=outcome,
            object_type=audited.object_type,
            object_id=audited.object_id,
            patient_id=audited.patient_id,
        )

    def add_routes(self, routes: web.RouteTableDef) -> None:
        routes.get(f"{self.prefix}/consent")(self.consent_text)
        routes.post(f"{self.prefix}/consent")(self.consent)
        routes.post(f"{self.prefix}/device-check")(self.device_check)
        routes.post(f"{self.prefix}/waiting")(self.waiting)
        routes.get(f"{self.prefix}/ping")(self.ping)

    async def consent_text(self, request: web.Request) -> web.Response:
        arrival = await self.arrival(request)
        async with request.app[DATABASE].session() as session:
            document = await checkin.current_consent(session, self.clinic_of(arrival))
        return web.json_response(checkin.consent_public(document))

    async def consent(self, request: web.Request) -> web.Response:
        body = await read_json(request, ConsentIn)
        arrival = await self.arrival(request)
        async with request.app[DATABASE].session() as session:
            accepted = await self.accept_consent(request, session, arrival, body.version)
        await self.audit(request, arrival, self.actions["consent"])
        return web.json_response(accepted | self.progress(arrival))

    async def device_check(self, request: web.Request) -> web.Response:
        body = await read_json(request, DeviceCheckIn)
        arrival = await self.arrival(request)
        async with request.app[DATABASE].session() as session:
            await self.record_device_check(session, arrival, body.model_dump())
        await self.audit(request, arrival, self.actions["device_check"])
        return web.json_response(self.progress(arrival))

    async def waiting(self, request: web.Request) -> web.Response:
        arrival = await self.arrival(request)
        async with request.app[DATABASE].session() as session:
            await self.enter_waiting(session, arrival)
        await self.audit(request, arrival, self.actions["waiting"])
        await self.waiting_changed(request, arrival)
        return web.json_response(self.progress(arrival))

    async def ping(self, request: web.Request) -> web.Response:
        """For the network check: the page times a few round trips to the server."""
        await self.arrival(request)
        return web.json_response({"server_time": utcnow().isoformat()})

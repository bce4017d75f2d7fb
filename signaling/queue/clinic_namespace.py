"""The staff side: providers watch and act on their queue; schedulers and admins watch."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Forbidden
from app.core.models import Role, User, utcnow
from app.web.api import parse_model
from app.web.audited import record
from app.web.identity import Actor, staff_actor
from scheduling.models import Appointment
from signaling.auth import request_of, staff_from_environ
from signaling.queue import service as clinic_queue
from signaling.queue.chart import RECORD_READERS
from signaling.queue.keys import QueueNamespace
from signaling.rooms import (
    CLINIC_NAMESPACE,
    WAITING_NAMESPACE,
    appointment_room,
    clinic_queue_room,
    clinic_room,
    provider_room,
)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    appointment_id: uuid.UUID
    text: str = Field(min_length=1, max_length=500)


class DelayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minutes: int = Field(ge=0, le=clinic_queue.MAX_DELAY_MINUTES)


class AdmitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    appointment_id: uuid.UUID


async def _patients_of(session: AsyncSession, appointment_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """The patients of these appointments, each once, in the order first shown."""
    if not appointment_ids:
        return []
    query = select(Appointment.id, Appointment.patient_id).where(
        col(Appointment.id).in_(appointment_ids)
    )
    patient_of = dict((await session.exec(query)).all())
    return list(dict.fromkeys(patient_of[a] for a in appointment_ids if a in patient_of))


def visit_url(visit_id: uuid.UUID) -> str:
    return f"/visit/{visit_id}"


class ClinicQueueNamespace(QueueNamespace):
    def __init__(self, app: web.Application) -> None:
        super().__init__(CLINIC_NAMESPACE, app)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        staff = await staff_from_environ(environ, Role.PROVIDER, Role.SCHEDULER, Role.ADMIN)
        request = request_of(environ)
        self.remember_session(sid, staff.claims)
        await self.save_session(
            sid,
            {"user_id": str(staff.id), "role": staff.role.value, "clinic_id": str(staff.clinic_id)},
        )
        reads_records = staff.role.value in RECORD_READERS
        async with self.db.session() as session:
            if staff.role == Role.PROVIDER:
                await self.enter_room(sid, provider_room(staff.id))
                providers = [staff.user]
            else:
                # Alerts (a locked link) reach the clinic room; queues the room for the role.
                await self.enter_room(sid, clinic_room(staff.clinic_id))
                await self.enter_room(
                    sid, clinic_queue_room(staff.clinic_id, record_readers=reads_records)
                )
                providers = await clinic_queue.clinic_providers(session, staff.clinic_id)
            queues = [
                await clinic_queue.provider_queue(session, self.presence, provider)
                for provider in providers
            ]
            charts = [
                await self.notifier.chart_facts(session, queue) if reads_records else None
                for queue in queues
            ]
            shown = await _patients_of(
                session, [row.appointment_id for queue in queues for row in queue.rows]
            )
        now = utcnow()
        for queue, chart in zip(queues, charts, strict=True):
            await self.emit("queue", queue.public(now, chart), to=sid)
        actor = staff_actor(request, staff)
        await record(
            request,
            actor,
            "queue.view",
            object_type="clinic_queue",
            detail=f"{len(queues)} queue(s), {sum(len(q.rows) for q in queues)} patients",
        )
        # Each patient whose name and state left the server, as appointment lists record them;
        # for the record's readers also their age, reason, answers and last signed note's date.
        for patient_id in shown:
            await record(
                request,
                actor,
                "queue.read",
                object_type="patient",
                object_id=patient_id,
                patient_id=patient_id,
                detail="with chart facts" if reads_records else None,
            )

    async def _provider(self, sid: str) -> User:
        session = await self.get_session(sid)
        if session["role"] != Role.PROVIDER.value:
            raise Forbidden("Only the patient's provider can do this.")
        async with self.db.session() as db_session:
            user = await db_session.get(User, uuid.UUID(session["user_id"]))
        if user is None or not user.is_active:
            raise Forbidden("This account can no longer act.")
        return user

    async def _audit(
        self, sid: str, provider: User, action: str, appointment_id: uuid.UUID
    ) -> None:
        async with self.db.session() as session:
            appointment = await session.get(Appointment, appointment_id)
        # Events after the connect are recorded without an address, like the visit's.
        actor = Actor("staff", provider.id, provider.role.value, provider.clinic_id)
        await record(
            self.request(sid),
            actor,
            action,
            object_type="appointment",
            object_id=appointment_id,
            patient_id=appointment.patient_id if appointment else None,
        )

    async def on_message(self, sid: str, data: Any) -> dict[str, Any]:
        provider = await self._provider(sid)
        message_in = parse_model(MessageIn, data)
        async with self.db.session() as session:
            message = await clinic_queue.send_message(
                session, provider, message_in.appointment_id, message_in.text
            )
        await self.server.emit(
            "message",
            {
                "text": message.text,
                "sent_at": message.sent_at.isoformat(),
                "sender": message.sender,
                "from": provider.full_name,
            },
            room=appointment_room(message_in.appointment_id),
            namespace=WAITING_NAMESPACE,
        )
        await self._audit(sid, provider, "waiting_room.message", message_in.appointment_id)
        await self.notifier.provider_changed(provider.id)  # the conversation, in the queue
        return {"ok": True, "sent_at": message.sent_at.isoformat()}

    async def on_admit(self, sid: str, data: Any) -> dict[str, Any]:
        provider = await self._provider(sid)
        admit_in = parse_model(AdmitIn, data)
        async with self.db.session() as session:
            visit = await clinic_queue.admit(session, provider, admit_in.appointment_id)
        url = visit_url(visit.id)
        await self.server.emit(
            "admitted",
            {"visit_id": str(visit.id), "url": url},
            room=appointment_room(admit_in.appointment_id),
            namespace=WAITING_NAMESPACE,
        )
        await self._audit(sid, provider, "visit.admit", admit_in.appointment_id)
        # The provider's page enters the visit on this reply; their queue can follow it.
        self.notifier.provider_changed_soon(provider.id)
        return {"visit_id": str(visit.id), "url": url}

    async def on_delay(self, sid: str, data: Any) -> dict[str, Any]:
        """The provider says how late they run; each waiting patient reads it in words."""
        provider = await self._provider(sid)
        delay_in = parse_model(DelayIn, data)
        async with self.db.session() as session:
            minutes = await clinic_queue.set_delay(session, provider, delay_in.minutes)
        await self.notifier.provider_changed(provider.id)
        return {"delay_minutes": minutes}

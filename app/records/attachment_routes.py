"""A visit's photos and documents for staff, beside the note: the record's readers only.

Who reads them is who reads the patient's record: a provider in the patient's care (or after
breaking the glass), an admin after breaking the glass; schedulers never; another clinic's
appointment is not found. Every list, view and download is audited, refusals too.
"""

from __future__ import annotations

import uuid

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from app.attachments import http
from app.attachments import service as attachments
from app.attachments.models import Attachment
from app.records import access
from app.records.access import READERS
from app.web.api import path_uuid
from app.web.audited import PatientOf, Recorded, run_audited
from app.web.identity import Actor, authorize, staff_actor
from app.web.keys import DATABASE, SETTINGS
from scheduling.models import Appointment

routes = web.RouteTableDef()
BASE = "/api/appointments/{appointment_id}/attachments"


async def readable_appointment(
    session: AsyncSession, actor: Actor, appointment_id: uuid.UUID
) -> Appointment:
    """One of the actor's clinic's appointments whose patient's record the actor may read."""
    access.require_reader(actor)
    appointment = await attachments.clinic_appointment(session, actor.clinic_id, appointment_id)
    await access.require_access(session, actor, appointment.patient_id)
    return appointment


def _patient_of(actor: Actor, appointment_id: uuid.UUID) -> PatientOf:
    async def patient_of(session: AsyncSession) -> uuid.UUID | None:
        appointment = await session.get(Appointment, appointment_id)
        if appointment is None or appointment.clinic_id != actor.clinic_id:
            return None
        return appointment.patient_id

    return patient_of


@routes.get(BASE)
async def list_attachments(request: web.Request) -> web.Response:
    actor = staff_actor(request, await authorize(request, *READERS))
    appointment_id = path_uuid(request, "appointment_id")
    settings = request.app[SETTINGS]

    async def work(session: AsyncSession) -> tuple[uuid.UUID, list[Attachment]]:
        appointment = await readable_appointment(session, actor, appointment_id)
        return appointment.patient_id, await attachments.for_appointment(session, appointment.id)

    _, found = await run_audited(
        request,
        actor,
        work,
        action="attachment.list",
        object_type="appointment",
        object_id=appointment_id,
        patient_of=_patient_of(actor, appointment_id),
        recorded=lambda r: Recorded(patient_id=r[0], detail=f"{len(r[1])} files"),
    )
    urls = attachments.staff_urls(appointment_id)
    return web.json_response(
        {
            "attachments": [attachments.public(a, urls) for a in found],
            "max_files": settings.attachments_per_appointment,
            "max_bytes": settings.attachment_max_bytes,
        }
    )


@routes.get("/api/patients/{patient_id}/attachments")
async def patient_attachments(request: web.Request) -> web.Response:
    """Every photo and document the patient added, across their visits, for the record page."""
    actor = staff_actor(request, await authorize(request, *READERS))
    patient_id = path_uuid(request, "patient_id")
    settings = request.app[SETTINGS]

    async def work(session: AsyncSession) -> list[Attachment]:
        patient = await access.readable_patient(session, actor, patient_id)
        return await attachments.for_patient(session, patient.id)

    found = await run_audited(
        request,
        actor,
        work,
        action="attachment.list",
        object_type="patient",
        object_id=patient_id,
        patient_id=patient_id,
        recorded=lambda r: Recorded(detail=f"{len(r)} files"),
    )
    return web.json_response(
        {
            "attachments": [
                attachments.public(a, attachments.staff_urls(a.appointment_id)) for a in found
            ],
            "max_files": settings.attachments_per_appointment,
            "max_bytes": settings.attachment_max_bytes,
        }
    )


@routes.get(BASE + "/{attachment_id}/content")
async def attachment_content(request: web.Request) -> web.Response:
    actor = staff_actor(request, await authorize(request, *READERS))
    appointment_id = path_uuid(request, "appointment_id")
    attachment_id = path_uuid(request, "attachment_id")
    db = request.app[DATABASE]
    keyring = db.keyring
    assert keyring is not None
    inline_asked = request.query.get("disposition") == "inline"

    async def work(session: AsyncSession) -> tuple[Attachment, bytes]:
        appointment = await readable_appointment(session, actor, appointment_id)
        attachment = await attachments.of_appointment(session, appointment.id, attachment_id)
        return attachment, await attachments.content_of(session, keyring, attachment)

    attachment, data = await run_audited(
        request,
        actor,
        work,
        action="attachment.view" if inline_asked else "attachment.download",
        object_type="attachment",
        object_id=attachment_id,
        patient_of=_patient_of(actor, appointment_id),
        recorded=lambda r: Recorded(patient_id=r[0].patient_id),
    )
    return http.file_response(attachment, data, inline=http.wants_inline(request, attachment))

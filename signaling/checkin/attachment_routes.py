"""The patient's photos and documents, by their join link: during check-in and the visit.

The patient adds a file once they accepted the consent, and sees their own; staff read them
beside the note (`app.records.attachment_routes`). Every upload (refused ones too), list and
download is audited as the patient's. A file added while the visit runs is announced to the
visit's provider at once.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from app.attachments import content, http
from app.attachments import service as attachments
from app.core import audit
from app.core.errors import DomainError, NotFound
from app.web.api import path_uuid
from app.web.audited import record
from app.web.events import appointment_changed
from app.web.keys import DATABASE, SETTINGS
from signaling.checkin.routes import PATIENTS
from signaling.checkin.service import Arrival, NeedsStep
from signaling.rooms import VISIT_NAMESPACE, visit_provider_room
from signaling.server import SOCKET_SERVER

routes = web.RouteTableDef()
BASE = "/api/join/{token}/attachments"


async def _consented_patient(request: web.Request) -> Arrival:
    arrival = await PATIENTS.arrival(request)
    if arrival.check_in.consent_id is None:
        raise NeedsStep("Please accept the consent first.", fields={"step": "consent"})
    return arrival


async def _audit(
    request: web.Request,
    arrival: Arrival,
    action: str,
    *,
    outcome: str = audit.SUCCESS,
    attachment_id: uuid.UUID | None = None,
    detail: str | None = None,
) -> None:
    audited = PATIENTS.audited(request, arrival)
    await record(
        request,
        audited.actor,
        action,
        outcome=outcome,
        object_type="attachment" if attachment_id else "appointment",
        object_id=attachment_id or arrival.appointment.id,
        patient_id=audited.patient_id,
        detail=detail,
    )


def _urls(request: web.Request) -> attachments.Urls:
    return attachments.Urls(f"/api/join/{request.match_info['token']}/attachments")


@routes.get(BASE)
async def list_attachments(request: web.Request) -> web.Response:
    arrival = await _consented_patient(request)
    async with request.app[DATABASE].session() as session:
        found = await attachments.for_appointment(session, arrival.appointment.id)
    await _audit(request, arrival, "attachment.list", detail=f"{len(found)} files")
    settings = request.app[SETTINGS]
    return web.json_response(
        {
            "attachments": [attachments.public(a, _urls(request)) for a in found],
            "max_files": settings.attachments_per_appointment,
            "max_bytes": settings.attachment_max_bytes,
        }
    )


@routes.post(BASE)
async def add_attachment(request: web.Request) -> web.Response:
    arrival = await _consented_patient(request)
    settings = request.app[SETTINGS]
    db = request.app[DATABASE]
    assert db.keyring is not None
    try:
        filename, data = await http.read_upload(request, settings.attachment_max_bytes)
        checked = content.check(data, max_pixels=settings.attachment_max_pixels)
        async with db.session() as session:
            attachment = await attachments.add(
                session, settings, db.keyring, arrival.appointment, checked, filename
            )
            shown = attachments.public(attachment, _urls(request))
    except DomainError as error:
        detail = f"{error.status} {error.code}"
        await _audit(request, arrival, "attachment.add", outcome=audit.FAILURE, detail=detail)
        raise error
    await _audit(
        request, arrival, "attachment.add", attachment_id=attachment.id, detail=checked.kind
    )
    await _tell_provider(request, arrival)
    return web.json_response(shown, status=201)


async def _tell_provider(request: web.Request, arrival: Arrival) -> None:
    """The visit's provider sees the new file beside the note; the queue shows the count."""
    visit_id = arrival.check_in.visit_id
    if visit_id is not None:
        await request.app[SOCKET_SERVER].emit(
            "attachments",
            {"appointment_id": str(arrival.appointment.id)},
            room=visit_provider_room(visit_id),
            namespace=VISIT_NAMESPACE,
        )
    await appointment_changed(request.app, arrival.appointment.id)


@routes.get(BASE + "/{attachment_id}/content")
async def attachment_content(request: web.Request) -> web.Response:
    arrival = await _consented_patient(request)
    attachment_id: uuid.UUID = path_uuid(request, "attachment_id")
    db = request.app[DATABASE]
    assert db.keyring is not None
    try:
        async with db.session() as session:
            attachment = await attachments.of_appointment(
                session, arrival.appointment.id, attachment_id
            )
            data = await attachments.content_of(session, db.keyring, attachment)
    except NotFound as error:
        detail = f"{error.status} {error.code}"
        await _audit(request, arrival, "attachment.download", outcome=audit.DENIED, detail=detail)
        raise error
    inline = http.wants_inline(request, attachment)
    action = "attachment.view" if inline else "attachment.download"
    await _audit(request, arrival, action, attachment_id=attachment.id)
    return http.file_response(attachment, data, inline=inline)

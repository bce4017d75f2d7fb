"""The record during and after a video visit: the provider's note for the visit, and the
summary the patient reads from their join link once the visit has ended."""

from __future__ import annotations

import uuid
from functools import partial

from aiohttp import web

from app.core import audit
from app.core.errors import DomainError
from app.core.models import Role
from app.records import visit_notes, visit_summary
from app.records.keys import NOTE_KEYRING
from app.records.schemas import NotePublic
from app.web.api import model_response, path_uuid
from app.web.audited import Recorded, record, run_audited
from app.web.identity import (
    PATIENT_COOKIE,
    Actor,
    authorize,
    client_addr,
    patient_actor,
    read_patient_token,
    staff_actor,
)
from app.web.keys import DATABASE, SETTINGS
from signaling.checkin import service as checkin

routes = web.RouteTableDef()


def _opened(opened: tuple[NotePublic, bool], *, visit_id: uuid.UUID) -> Recorded:
    """Opening the visit note creates it the first time, reads it after."""
    note, created = opened
    return Recorded(
        action="note.create" if created else "note.read",
        object_type="consult_note",
        object_id=note.id,
        patient_id=note.patient_id,
        detail=f"visit {visit_id}",
    )


@routes.post("/api/visits/{visit_id}/note")
async def open_visit_note(request: web.Request) -> web.Response:
    """The visit's provider opens their note for it: the existing one, or a new draft."""
    actor = staff_actor(request, await authorize(request, Role.PROVIDER))
    visit_id = path_uuid(request, "visit_id")
    note, created = await run_audited(
        request,
        actor,
        partial(
            visit_notes.open_visit_note,
            keyring=request.app[NOTE_KEYRING],
            actor=actor,
            writes=request.app[DATABASE].write_queue(),
            visit_id=visit_id,
            max_chars=request.app[SETTINGS].max_note_chars,
        ),
        action="visit.note.open",
        object_type="visit",
        object_id=visit_id,
        recorded=partial(_opened, visit_id=visit_id),
    )
    return model_response(note, status=201 if created else 200)


@routes.get("/api/join/{token}/summary")
async def patient_visit_summary(request: web.Request) -> web.Response:
    """The patient's summary of their ended visit (their session from the link required)."""
    settings = request.app[SETTINGS]
    async with request.app[DATABASE].session() as session:
        arrival = await checkin.resolve_link(
            session, settings, request.match_info["token"], after_visit=True
        )
    clinic_id = arrival.appointment.clinic_id
    audit_summary = partial(
        record,
        request,
        action="visit.summary.read",
        object_type="appointment",
        object_id=arrival.appointment.id,
        patient_id=arrival.patient.id,
    )
    try:
        checkin.require_patient(
            arrival, read_patient_token(settings, request.cookies.get(PATIENT_COOKIE))
        )
    except checkin.NeedsStep as error:
        # Not (yet) the patient: the link alone names nobody.
        stranger = Actor("anonymous", None, None, clinic_id, client_addr(request))
        await audit_summary(stranger, outcome=audit.DENIED, detail=error.code)
        raise
    actor = patient_actor(request, arrival.patient.id, clinic_id)
    try:
        async with request.app[DATABASE].session() as session:
            summary = await visit_summary.visit_summary(
                session, keyring=request.app[NOTE_KEYRING], appointment_id=arrival.appointment.id
            )
    except DomainError as error:
        await audit_summary(actor, outcome=audit.FAILURE, detail=error.code)
        raise
    detail = "signed plan" if summary.ready else "not signed yet"
    await audit_summary(actor, detail=detail)
    response = model_response(summary)
    response.headers["Cache-Control"] = "no-store"
    return response

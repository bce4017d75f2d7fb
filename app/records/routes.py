"""JSON API of the patient record: notes of a patient, autosave, sign, addenda.

Handlers parse, authorize, call the service and serialize; every read and write of a note is an
audit event naming the patient, refusals included.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core import audit
from app.core.errors import DomainError
from app.core.models import Role
from app.records import service
from app.records.keys import NOTE_KEYRING
from app.records.schemas import (
    AddendumCreate,
    AddendumPublic,
    NoteCreate,
    NotePublic,
    NoteSave,
    NoteSign,
    PatientPublic,
    PatientRecord,
)
from app.web.api import model_response, path_uuid, read_json
from app.web.identity import Staff, actor_of, authorize
from app.web.keys import DATABASE, SETTINGS

routes = web.RouteTableDef()
T = TypeVar("T")


def viewer_of(staff: Staff) -> service.Viewer:
    return service.Viewer(id=staff.id, role=staff.role, clinic_id=staff.clinic_id)


async def record_event(
    request: web.Request,
    staff: Staff,
    *,
    action: str,
    object_type: str,
    object_id: uuid.UUID,
    patient_id: uuid.UUID | None,
    outcome: str = audit.SUCCESS,
    detail: str | None = None,
) -> None:
    await audit.record(
        request.app[DATABASE],
        action=action,
        outcome=outcome,
        actor=actor_of(request, staff),
        object_type=object_type,
        object_id=object_id,
        patient_id=patient_id,
        detail=detail,
    )


async def run_audited(
    request: web.Request,
    staff: Staff,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    action: str,
    object_type: str,
    object_id: uuid.UUID,
    patient_id: uuid.UUID | None = None,
) -> T:
    """Run `work` in a session; a refusal or failure is audited (naming the patient when the
    object belongs to the viewer's clinic) before it is raised."""
    viewer = viewer_of(staff)
    async with request.app[DATABASE].session() as session:
        try:
            return await work(session)
        except DomainError as exc:
            error = exc
            if patient_id is None and object_type == "consult_note":
                patient_id = await service.note_patient_id(session, viewer, object_id)
    # Audited after the session is closed: audit.record queues for the chain and must not
    # wait there while this request still holds a pooled connection.
    outcome = audit.DENIED if error.status in (403, 404) else audit.FAILURE
    await record_event(
        request,
        staff,
        action=action,
        object_type=object_type,
        object_id=object_id,
        patient_id=patient_id,
        outcome=outcome,
        detail=f"{error.status} {error.code}",
    )
    raise error


@routes.get("/api/patients/{patient_id}/record")
async def patient_record(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.PROVIDER, Role.ADMIN)
    patient_id = path_uuid(request, "patient_id")
    viewer = viewer_of(staff)
    keyring = request.app[NOTE_KEYRING]

    async def work(session: AsyncSession) -> PatientRecord:
        patient = await service.readable_patient(session, viewer, patient_id)
        notes = await service.patient_notes(
            session, keyring=keyring, viewer=viewer, patient_id=patient_id
        )
        return PatientRecord(
            patient=PatientPublic.model_validate(patient, from_attributes=True), notes=notes
        )

    record = await run_audited(
        request,
        staff,
        work,
        action="record.read",
        object_type="patient",
        object_id=patient_id,
        patient_id=patient_id,
    )
    await record_event(
        request,
        staff,
        action="record.read",
        object_type="patient",
        object_id=patient_id,
        patient_id=patient_id,
    )
    return model_response(record)


@routes.get("/api/patients/{patient_id}/notes")
async def list_notes(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.PROVIDER, Role.ADMIN)
    patient_id = path_uuid(request, "patient_id")
    viewer = viewer_of(staff)
    keyring = request.app[NOTE_KEYRING]
    notes = await run_audited(
        request,
        staff,
        lambda s: service.patient_notes(s, keyring=keyring, viewer=viewer, patient_id=patient_id),
        action="note.list",
        object_type="patient",
        object_id=patient_id,
        patient_id=patient_id,
    )
    await record_event(
        request,
        staff,
        action="note.list",
        object_type="patient",
        object_id=patient_id,
        patient_id=patient_id,
        detail=f"{len(notes)} notes",
    )
    return model_response(list(notes))


@routes.post("/api/patients/{patient_id}/notes")
async def create_note(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.PROVIDER)
    patient_id = path_uuid(request, "patient_id")
    viewer = viewer_of(staff)
    keyring = request.app[NOTE_KEYRING]
    max_chars = request.app[SETTINGS].max_note_chars

    async def work(session: AsyncSession) -> NotePublic:
        note_in = await read_json(request, NoteCreate)
        return await service.create_draft(
            session,
            writes=request.app[DATABASE].write_queue(),
            keyring=keyring,
            viewer=viewer,
            patient_id=patient_id,
            note_in=note_in,
            max_chars=max_chars,
        )

    note = await run_audited(
        request,
        staff,
        work,
        action="note.create",
        object_type="patient",
        object_id=patient_id,
        patient_id=patient_id,
    )
    await record_event(
        request,
        staff,
        action="note.create",
        object_type="consult_note",
        object_id=note.id,
        patient_id=note.patient_id,
    )
    return model_response(note, status=201)


@routes.get("/api/notes/{note_id}")
async def get_note(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.PROVIDER, Role.ADMIN)
    note_id = path_uuid(request, "note_id")
    viewer = viewer_of(staff)
    keyring = request.app[NOTE_KEYRING]
    note = await run_audited(
        request,
        staff,
        lambda s: service.read_note(s, keyring=keyring, viewer=viewer, note_id=note_id),
        action="note.read",
        object_type="consult_note",
        object_id=note_id,
    )
    await record_event(
        request,
        staff,
        action="note.read",
        object_type="consult_note",
        object_id=note.id,
        patient_id=note.patient_id,
    )
    return model_response(note)


@routes.put("/api/notes/{note_id}")
async def autosave_note(request: web.Request) -> web.Response:
    started = time.perf_counter()
    staff = await authorize(request, Role.PROVIDER)
    note_id = path_uuid(request, "note_id")
    viewer = viewer_of(staff)
    keyring = request.app[NOTE_KEYRING]
    max_chars = request.app[SETTINGS].max_note_chars

    async def work(session: AsyncSession) -> service.SaveResult:
        save = await read_json(request, NoteSave)
        return await service.save_draft(
            session,
            writes=request.app[DATABASE].write_queue(),
            keyring=keyring,
            viewer=viewer,
            note_id=note_id,
            save=save,
            max_chars=max_chars,
        )

    result = await run_audited(
        request, staff, work, action="note.save", object_type="consult_note", object_id=note_id
    )
    await record_event(
        request,
        staff,
        action="note.save",
        object_type="consult_note",
        object_id=note_id,
        patient_id=result.note.patient_id,
        detail=f"version {result.note.version}",
    )
    response = model_response(result.note)
    # Lets a client (and bench/notes.py) see what share of a save the encryption costs.
    elapsed_ms = (time.perf_counter() - started) * 1000
    response.headers["Server-Timing"] = (
        f"encrypt;dur={result.encrypt_seconds * 1000:.3f}, app;dur={elapsed_ms:.3f}"
    )
    return response


@routes.post("/api/notes/{note_id}/sign")
async def sign_note(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.PROVIDER)
    note_id = path_uuid(request, "note_id")
    viewer = viewer_of(staff)
    keyring = request.app[NOTE_KEYRING]

    async def work(session: AsyncSession) -> NotePublic:
        sign = await read_json(request, NoteSign)
        return await service.sign_note(
            session,
            writes=request.app[DATABASE].write_queue(),
            keyring=keyring,
            viewer=viewer,
            note_id=note_id,
            version=sign.version,
        )

    note = await run_audited(
        request, staff, work, action="note.sign", object_type="consult_note", object_id=note_id
    )
    await record_event(
        request,
        staff,
        action="note.sign",
        object_type="consult_note",
        object_id=note_id,
        patient_id=note.patient_id,
        detail=f"version {note.version}",
    )
    return model_response(note)


@routes.get("/api/notes/{note_id}/addenda")
async def list_addenda(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.PROVIDER, Role.ADMIN)
    note_id = path_uuid(request, "note_id")
    viewer = viewer_of(staff)
    keyring = request.app[NOTE_KEYRING]
    note = await run_audited(
        request,
        staff,
        lambda s: service.read_note(s, keyring=keyring, viewer=viewer, note_id=note_id),
        action="note.addenda.read",
        object_type="consult_note",
        object_id=note_id,
    )
    await record_event(
        request,
        staff,
        action="note.addenda.read",
        object_type="consult_note",
        object_id=note_id,
        patient_id=note.patient_id,
    )
    return model_response(list(note.addenda))


@routes.post("/api/notes/{note_id}/addenda")
async def add_addendum(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.PROVIDER)
    note_id = path_uuid(request, "note_id")
    viewer = viewer_of(staff)
    keyring = request.app[NOTE_KEYRING]
    max_chars = request.app[SETTINGS].max_note_chars

    async def work(session: AsyncSession) -> tuple[AddendumPublic, uuid.UUID | None]:
        addendum_in = await read_json(request, AddendumCreate)
        addendum = await service.add_addendum(
            session,
            writes=request.app[DATABASE].write_queue(),
            keyring=keyring,
            viewer=viewer,
            note_id=note_id,
            addendum_in=addendum_in,
            max_chars=max_chars,
        )
        return addendum, await service.note_patient_id(session, viewer, note_id)

    addendum, patient_id = await run_audited(
        request,
        staff,
        work,
        action="note.addendum.create",
        object_type="consult_note",
        object_id=note_id,
    )
    await record_event(
        request,
        staff,
        action="note.addendum.create",
        object_type="note_addendum",
        object_id=addendum.id,
        patient_id=patient_id,
    )
    return model_response(addendum, status=201)

"""JSON API of the patient record: notes of a patient, autosave, sign, addenda.

Handlers parse, call the service with the acting `Actor` and serialize; every read and write of
a note is an audit event naming the patient, refusals included (a note's patient is named when
the note is of the actor's clinic).
"""

from __future__ import annotations

import time
import uuid
from functools import partial

from aiohttp import web
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.models import Role
from app.records import access, addenda, break_glass, consult_notes, drafts
from app.records.access import READERS
from app.records.keys import NOTE_KEYRING
from app.records.schemas import (
    AddendumCreate,
    AddendumPublic,
    BreakGlassCreate,
    BreakGlassPublic,
    NoteCreate,
    NotePublic,
    NoteSave,
    NoteSign,
    PatientRecord,
)
from app.web.api import model_response, parse_model, path_uuid, read_json
from app.web.audited import Recorded, run_audited
from app.web.identity import authorize, staff_actor
from app.web.keys import DATABASE, SETTINGS
from scheduling.schemas import PatientPublic

routes = web.RouteTableDef()


@routes.get("/api/patients/{patient_id}/record")
async def patient_record(request: web.Request) -> web.Response:
    actor = staff_actor(request, await authorize(request, *READERS))
    patient_id = path_uuid(request, "patient_id")
    patient, notes = await run_audited(
        request,
        actor,
        partial(
            consult_notes.patient_record,
            keyring=request.app[NOTE_KEYRING],
            actor=actor,
            patient_id=patient_id,
        ),
        action="record.read",
        object_type="patient",
        object_id=patient_id,
        patient_id=patient_id,
    )
    public = PatientPublic.model_validate(patient, from_attributes=True)
    return model_response(PatientRecord(patient=public, notes=notes))


@routes.get("/api/patients/{patient_id}/notes")
async def list_notes(request: web.Request) -> web.Response:
    actor = staff_actor(request, await authorize(request, *READERS))
    patient_id = path_uuid(request, "patient_id")
    keyring = request.app[NOTE_KEYRING]
    notes = await run_audited(
        request,
        actor,
        partial(consult_notes.patient_notes, keyring=keyring, actor=actor, patient_id=patient_id),
        action="note.list",
        object_type="patient",
        object_id=patient_id,
        patient_id=patient_id,
        recorded=lambda notes: Recorded(detail=f"{len(notes)} notes"),
    )
    return model_response(list(notes))


@routes.post("/api/patients/{patient_id}/notes")
async def create_note(request: web.Request) -> web.Response:
    actor = staff_actor(request, await authorize(request, Role.PROVIDER))
    patient_id = path_uuid(request, "patient_id")

    async def work(session: AsyncSession) -> NotePublic:
        note_in = await read_json(request, NoteCreate)
        return await drafts.create_draft(
            session,
            writes=request.app[DATABASE].write_queue(),
            keyring=request.app[NOTE_KEYRING],
            actor=actor,
            patient_id=patient_id,
            note_in=note_in,
            max_chars=request.app[SETTINGS].max_note_chars,
        )

    note = await run_audited(
        request,
        actor,
        work,
        action="note.create",
        object_type="patient",
        object_id=patient_id,
        patient_id=patient_id,
        recorded=lambda note: Recorded(
            object_type="consult_note", object_id=note.id, patient_id=note.patient_id
        ),
    )
    return model_response(note, status=201)


async def _read_note(request: web.Request, action: str) -> NotePublic:
    """The note of the path, for a reader; the read is audited as `action`."""
    actor = staff_actor(request, await authorize(request, *READERS))
    note_id = path_uuid(request, "note_id")
    note = await run_audited(
        request,
        actor,
        partial(
            consult_notes.read_note, keyring=request.app[NOTE_KEYRING], actor=actor, note_id=note_id
        ),
        action=action,
        object_type="consult_note",
        object_id=note_id,
        patient_of=partial(access.note_patient_id, actor=actor, note_id=note_id),
        recorded=lambda note: Recorded(patient_id=note.patient_id),
    )
    return note


@routes.get("/api/notes/{note_id}")
async def get_note(request: web.Request) -> web.Response:
    return model_response(await _read_note(request, "note.read"))


@routes.put("/api/notes/{note_id}")
async def autosave_note(request: web.Request) -> web.Response:
    started = time.perf_counter()
    actor = staff_actor(request, await authorize(request, Role.PROVIDER))
    note_id = path_uuid(request, "note_id")

    async def work(session: AsyncSession) -> drafts.SaveResult:
        save = await read_json(request, NoteSave)
        return await drafts.save_draft(
            session,
            writes=request.app[DATABASE].write_queue(),
            keyring=request.app[NOTE_KEYRING],
            actor=actor,
            note_id=note_id,
            save=save,
            max_chars=request.app[SETTINGS].max_note_chars,
        )

    result = await run_audited(
        request,
        actor,
        work,
        action="note.save",
        object_type="consult_note",
        object_id=note_id,
        patient_of=partial(access.note_patient_id, actor=actor, note_id=note_id),
        recorded=lambda saved: Recorded(
            patient_id=saved.note.patient_id, detail=f"version {saved.note.version}"
        ),
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
    actor = staff_actor(request, await authorize(request, Role.PROVIDER))
    note_id = path_uuid(request, "note_id")

    async def work(session: AsyncSession) -> NotePublic:
        sign = await read_json(request, NoteSign)
        return await drafts.sign_note(
            session,
            writes=request.app[DATABASE].write_queue(),
            keyring=request.app[NOTE_KEYRING],
            actor=actor,
            note_id=note_id,
            version=sign.version,
        )

    note = await run_audited(
        request,
        actor,
        work,
        action="note.sign",
        object_type="consult_note",
        object_id=note_id,
        patient_of=partial(access.note_patient_id, actor=actor, note_id=note_id),
        recorded=lambda note: Recorded(
            patient_id=note.patient_id, detail=f"version {note.version}"
        ),
    )
    return model_response(note)


@routes.get("/api/notes/{note_id}/addenda")
async def list_addenda(request: web.Request) -> web.Response:
    note = await _read_note(request, "note.addenda.read")
    return model_response(list(note.addenda))


def _addendum_recorded(done: tuple[AddendumPublic, uuid.UUID | None]) -> Recorded:
    addendum, patient_id = done
    return Recorded(object_type="note_addendum", object_id=addendum.id, patient_id=patient_id)


@routes.post("/api/notes/{note_id}/addenda")
async def add_addendum(request: web.Request) -> web.Response:
    actor = staff_actor(request, await authorize(request, Role.PROVIDER))
    note_id = path_uuid(request, "note_id")

    async def work(session: AsyncSession) -> tuple[AddendumPublic, uuid.UUID | None]:
        addendum_in = await read_json(request, AddendumCreate)
        addendum = await addenda.add_addendum(
            session,
            writes=request.app[DATABASE].write_queue(),
            keyring=request.app[NOTE_KEYRING],
            actor=actor,
            note_id=note_id,
            addendum_in=addendum_in,
            max_chars=request.app[SETTINGS].max_note_chars,
        )
        return addendum, await access.note_patient_id(session, actor, note_id)

    addendum, _ = await run_audited(
        request,
        actor,
        work,
        action="note.addendum.create",
        object_type="consult_note",
        object_id=note_id,
        patient_of=partial(access.note_patient_id, actor=actor, note_id=note_id),
        recorded=_addendum_recorded,
    )
    return model_response(addendum, status=201)


async def open_break_glass(request: web.Request, patient_id: uuid.UUID) -> BreakGlassPublic:
    """Break the glass for the signed-in reader (API and form alike), audited with the reason."""
    actor = staff_actor(request, await authorize(request, *READERS))

    async def work(session: AsyncSession) -> BreakGlassPublic:
        if request.content_type == "application/json":
            wanted = await read_json(request, BreakGlassCreate)
        else:
            form = await request.post()
            wanted = parse_model(BreakGlassCreate, {"reason": str(form.get("reason", ""))})
        return await break_glass.break_glass(
            session,
            actor=actor,
            writes=request.app[DATABASE].write_queue(),
            patient_id=patient_id,
            request=wanted,
            minutes=request.app[SETTINGS].break_glass_minutes,
        )

    return await run_audited(
        request,
        actor,
        work,
        action="record.break_glass",
        object_type="patient",
        object_id=patient_id,
        patient_id=patient_id,
        recorded=lambda opened: Recorded(
            object_type="break_glass",
            object_id=opened.id,
            patient_id=opened.patient_id,
            detail=f"until {opened.expires_at.isoformat(timespec='seconds')}: {opened.reason}",
        ),
    )


@routes.post("/api/patients/{patient_id}/break-glass")
async def break_the_glass(request: web.Request) -> web.Response:
    opened = await open_break_glass(request, path_uuid(request, "patient_id"))
    return model_response(opened, status=201)


async def review_break_glass(request: web.Request) -> list[BreakGlassPublic]:
    """The clinic's break-glass accesses for its admins; the review itself is audited."""
    actor = staff_actor(request, await authorize(request, Role.ADMIN))
    return await run_audited(
        request,
        actor,
        partial(break_glass.review, actor=actor),
        action="break_glass.review",
        object_type="clinic",
        object_id=actor.clinic_id,
        recorded=lambda rows: Recorded(detail=f"{len(rows)} accesses"),
    )


@routes.get("/api/break-glass")
async def list_break_glass(request: web.Request) -> web.Response:
    rows: list[BaseModel] = list(await review_break_glass(request))
    return model_response(rows)

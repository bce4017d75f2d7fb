"""Pages of the record: the patient's record and the note editor.

The editor is a page of its own for notes written outside a visit, and a fragment that the visit
page loads into its aside for the visit's provider.
"""

from __future__ import annotations

import uuid
from functools import partial

import aiohttp_jinja2
from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import InvalidInput
from app.core.models import Patient, Role
from app.records.access import (
    READERS,
    BreakGlassRequired,
    clinic_patient,
    in_care,
    note_patient_id,
    readable_patient,
)
from app.records.access import open_break_glass as open_break_glass_access
from app.records.consult_notes import patient_record, read_note
from app.records.keys import NOTE_KEYRING
from app.records.routes import open_break_glass, review_break_glass
from app.records.schemas import SECTION_NAMES, NotePublic
from app.web.api import path_uuid
from app.web.audited import Recorded, run_audited
from app.web.identity import authorize, staff_actor
from app.web.keys import DATABASE, SETTINGS

routes = web.RouteTableDef()

SECTION_LABELS = {
    "chief_complaint": "Chief complaint",
    "subjective": "Subjective",
    "objective": "Objective",
    "assessment": "Assessment",
    "plan": "Plan",
    "free_text": "Free text",
}


@routes.get("/records/patients/{patient_id}", name="patient_record")
async def record_page(request: web.Request) -> web.StreamResponse:
    staff = await authorize(request, *READERS)
    actor = staff_actor(request, staff)
    patient_id = path_uuid(request, "patient_id")
    try:
        patient, notes = await run_audited(
            request,
            actor,
            partial(
                patient_record,
                keyring=request.app[NOTE_KEYRING],
                actor=actor,
                patient_id=patient_id,
            ),
            action="record.read",
            object_type="patient",
            object_id=patient_id,
            patient_id=patient_id,
            recorded=lambda _: Recorded(detail="record page"),
        )
    except BreakGlassRequired:
        # The refusal is audited; the page offers to break the glass instead of a dead end.
        return await _break_glass_form(request, patient_id, status=403)
    async with request.app[DATABASE].session() as session:
        glass = (
            None
            if await in_care(session, actor, patient_id)
            else (await open_break_glass_access(session, actor, patient_id))
        )
    context = {
        "staff": staff,
        "patient": patient,
        "notes": notes,
        "glass_until": glass.expires_at if glass is not None else None,
        "sections": [(name, SECTION_LABELS[name]) for name in SECTION_NAMES],
        "can_write": staff.role == Role.PROVIDER,
    }
    return aiohttp_jinja2.render_template("records/record.html", request, context)


@routes.get("/records/notes/{note_id}", name="note_editor")
async def editor_page(request: web.Request) -> web.StreamResponse:
    return await _render_note(request, "records/note.html", detail="editor page")


@routes.get("/records/notes/{note_id}/panel", name="note_panel")
async def editor_panel(request: web.Request) -> web.StreamResponse:
    """The editor alone, as an HTML fragment for another page (the visit page's aside)."""
    return await _render_note(request, "records/_note_panel.html", detail="note panel")


async def _render_note(request: web.Request, template: str, *, detail: str) -> web.StreamResponse:
    staff = await authorize(request, *READERS)
    actor = staff_actor(request, staff)
    note_id = path_uuid(request, "note_id")
    keyring = request.app[NOTE_KEYRING]

    async def work(session: AsyncSession) -> tuple[Patient, NotePublic]:
        note = await read_note(session, keyring=keyring, actor=actor, note_id=note_id)
        patient = await readable_patient(session, actor, note.patient_id)
        return patient, note

    try:
        patient, note = await run_audited(
            request,
            actor,
            work,
            action="note.read",
            object_type="consult_note",
            object_id=note_id,
            patient_of=partial(note_patient_id, actor=actor, note_id=note_id),
            recorded=lambda found: Recorded(patient_id=found[0].id, detail=detail),
        )
    except BreakGlassRequired as error:
        return await _break_glass_form(
            request, uuid.UUID(str(error.detail["patient_id"])), status=403
        )
    context = {
        "staff": staff,
        "patient": patient,
        "note": note,
        "sections": [(name, SECTION_LABELS[name]) for name in SECTION_NAMES],
        "max_note_chars": request.app[SETTINGS].max_note_chars,
        "is_author": note.author_id == staff.id and staff.role == Role.PROVIDER,
    }
    return aiohttp_jinja2.render_template(template, request, context)


async def _break_glass_form(
    request: web.Request,
    patient_id: uuid.UUID,
    *,
    status: int,
    error: str | None = None,
    reason: str = "",
) -> web.StreamResponse:
    """The reason form for a patient of the actor's clinic (who they are: name and birth date,
    so the reader is sure to open the right record)."""
    staff = await authorize(request, *READERS)
    actor = staff_actor(request, staff)
    async with request.app[DATABASE].session() as session:
        patient = await clinic_patient(session, actor, patient_id)
    context = {
        "staff": staff,
        "patient": patient,
        "minutes": request.app[SETTINGS].break_glass_minutes,
        "error": error,
        "reason": reason,
    }
    return aiohttp_jinja2.render_template(
        "records/break_glass.html", request, context, status=status
    )


@routes.post("/records/patients/{patient_id}/break-glass", name="break_glass")
async def break_glass_submit(request: web.Request) -> web.StreamResponse:
    patient_id = path_uuid(request, "patient_id")
    try:
        await open_break_glass(request, patient_id)
    except InvalidInput as error:
        form = await request.post()
        message = error.message
        if "reason" in error.fields and error.fields["reason"] != "not needed":
            message = "Say in a few words (at least 10 characters) why you need this record."
        return await _break_glass_form(
            request, patient_id, status=400, error=message, reason=str(form.get("reason", ""))
        )
    raise web.HTTPSeeOther(request.app.router["patient_record"].url_for(patient_id=str(patient_id)))


@routes.get("/records/break-glass", name="break_glass_review")
async def break_glass_review_page(request: web.Request) -> web.StreamResponse:
    """The clinic admins' review of break-glass accesses."""
    staff = await authorize(request, Role.ADMIN)
    accesses = await review_break_glass(request)
    context = {
        "staff": staff,
        "accesses": accesses,
        "minutes": request.app[SETTINGS].break_glass_minutes,
    }
    return aiohttp_jinja2.render_template("records/break_glass_review.html", request, context)

"""OpenAPI fragment of the records API."""

from __future__ import annotations

from app.records.schemas import (
    AddendumCreate,
    AddendumPublic,
    BreakGlassCreate,
    BreakGlassPublic,
    NoteCreate,
    NotePublic,
    NoteSave,
    NoteSections,
    NoteSign,
    PatientRecord,
)
from app.records.visit_summary import SummaryAmendment, VisitSummary
from app.web.openapi import Spec, operation, path_param, ref, schemas_of
from scheduling.schemas import PatientPublic
from signaling.openapi import TOKEN as JOIN_TOKEN

PATIENT_ID = path_param("patient_id", "A patient of the caller's clinic")
NOTE_ID = path_param("note_id", "A consult note of the caller's clinic")
VISIT_ID = path_param("visit_id", "A video visit the calling provider holds")
TAG = "records"


def _also_ok(op: Spec, status: str) -> Spec:
    """An operation answering its success shape under a second status too."""
    op["responses"][status] = op["responses"][next(iter(op["responses"]))]
    return op


RECORDS_PATHS: Spec = {
    "/api/patients/{patient_id}/record": {
        "get": operation(
            "Demographics and notes of a patient (a provider in their care, or after breaking the "
            "glass); 403 `break_glass_required` otherwise; other clinics' are 404",
            tag=TAG,
            ok=ref("PatientRecord"),
            errors=(401, 403, 404),
            params=[PATIENT_ID],
        )
    },
    "/api/patients/{patient_id}/notes": {
        "get": operation(
            "Signed notes of the patient and the caller's own drafts, oldest first",
            tag=TAG,
            ok={"type": "array", "items": ref("NotePublic")},
            errors=(401, 403, 404),
            params=[PATIENT_ID],
        ),
        "post": operation(
            "Start a draft note for the patient (provider)",
            tag=TAG,
            body=ref("NoteCreate"),
            ok=ref("NotePublic"),
            status="201",
            errors=(400, 401, 403, 404, 413),
            params=[PATIENT_ID],
        ),
    },
    "/api/notes/{note_id}": {
        "get": operation(
            "One note with its addenda; a draft only for its author",
            tag=TAG,
            ok=ref("NotePublic"),
            errors=(401, 403, 404),
            params=[NOTE_ID],
        ),
        "put": operation(
            "Autosave a draft from the version it was edited from; 409 `version_conflict` "
            "carries the current note in error.detail.current, 409 `note_signed` points to "
            "the addenda; answers a Server-Timing header (encrypt, app)",
            tag=TAG,
            body=ref("NoteSave"),
            ok=ref("NotePublic"),
            errors=(400, 401, 403, 404, 409, 413),
            params=[NOTE_ID],
        ),
    },
    "/api/notes/{note_id}/sign": {
        "post": operation(
            "Sign the draft at the given version (author); the note is locked afterwards",
            tag=TAG,
            body=ref("NoteSign"),
            ok=ref("NotePublic"),
            errors=(400, 401, 403, 404, 409),
            params=[NOTE_ID],
        )
    },
    "/api/notes/{note_id}/addenda": {
        "get": operation(
            "Addenda of a note, oldest first",
            tag=TAG,
            ok={"type": "array", "items": ref("AddendumPublic")},
            errors=(401, 403, 404),
            params=[NOTE_ID],
        ),
        "post": operation(
            "Add an addendum (reason and text) to a signed note (provider of the clinic)",
            tag=TAG,
            body=ref("AddendumCreate"),
            ok=ref("AddendumPublic"),
            status="201",
            errors=(400, 401, 403, 404, 409, 413),
            params=[NOTE_ID],
        ),
    },
    "/api/visits/{visit_id}/note": {
        "post": _also_ok(
            operation(
                "The visit's provider opens their note for the visit's appointment: 200 with the "
                "existing note, or 201 with a new draft; anyone else's visit is 404",
                tag=TAG,
                ok=ref("NotePublic"),
                status="201",
                errors=(401, 403, 404),
                params=[VISIT_ID],
            ),
            "200",
        )
    },
    "/api/patients/{patient_id}/break-glass": {
        "post": operation(
            "Break the glass: open a patient's record outside the caller's care relationship "
            "for OPENCONSULT_BREAK_GLASS_MINUTES, giving a reason (provider, admin); audited and "
            "listed for the clinic's admins. Record reads outside the care relationship answer "
            "403 `break_glass_required` until then; 400 when the patient is in the caller's care",
            tag=TAG,
            body=ref("BreakGlassCreate"),
            ok=ref("BreakGlassPublic"),
            status="201",
            errors=(400, 401, 403, 404),
            params=[PATIENT_ID],
        )
    },
    "/api/break-glass": {
        "get": operation(
            "The clinic's break-glass accesses, newest first, for review (admin)",
            tag=TAG,
            ok={"type": "array", "items": ref("BreakGlassPublic")},
            errors=(401, 403),
        )
    },
    "/api/join/{token}/summary": {
        "get": operation(
            "The patient's summary of their ended visit (patient session cookie from the link): "
            "date, provider, duration and the signed note's plan with the addenda amending it; "
            "`ready` is false until the note is signed. 409 `step_missing` asks for the date of "
            "birth first, 409 `visit_not_ended` while the visit goes on; 410 after the link's "
            "window closes",
            tag=TAG,
            ok=ref("VisitSummary"),
            errors=(404, 409, 410, 423),
            params=[JOIN_TOKEN],
            public=True,
        )
    },
}


def _flatten(schemas: dict[str, Spec]) -> dict[str, Spec]:
    """Pydantic nests referenced models under $defs; lift them to components."""
    flat: dict[str, Spec] = {}
    for name, schema in schemas.items():
        for def_name, definition in schema.pop("$defs", {}).items():
            flat[def_name] = definition
        flat[name] = schema
    return flat


RECORDS_SCHEMAS: dict[str, Spec] = _flatten(
    schemas_of(
        AddendumCreate,
        AddendumPublic,
        BreakGlassCreate,
        BreakGlassPublic,
        NoteCreate,
        NotePublic,
        NoteSave,
        NoteSections,
        NoteSign,
        PatientPublic,
        PatientRecord,
        SummaryAmendment,
        VisitSummary,
    )
)

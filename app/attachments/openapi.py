"""OpenAPI fragment of a visit's photos and documents: the patient's (by the join link) and the
staff's (beside the note)."""

from __future__ import annotations

from app.attachments.content import DICOM_TYPE, IMAGE_FORMATS, PDF_TYPE
from app.web.openapi import Spec, operation, path_param

TAG = "attachments"
TOKEN: Spec = {
    "name": "token",
    "in": "path",
    "required": True,
    "description": "The join token from the patient's appointment email",
    "schema": {"type": "string"},
}
APPOINTMENT_ID = path_param("appointment_id", "An appointment of the caller's clinic")
ATTACHMENT_ID = path_param("attachment_id", "A file of that appointment")
DISPOSITION: Spec = {
    "name": "disposition",
    "in": "query",
    "required": False,
    "description": "`inline` shows a photo in the page (a PDF or DICOM file is always a download)",
    "schema": {"type": "string", "enum": ["inline", "attachment"]},
}
LINK_ERRORS = (400, 404, 409, 410, 423)
ATTACHMENT: Spec = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "appointment_id": {"type": "string", "format": "uuid"},
        "kind": {"type": "string", "enum": ["image", "pdf", "dicom"]},
        "content_type": {"type": "string"},
        "title": {"type": "string"},
        "size": {"type": "integer"},
        "sha256": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "details": {
            "type": "object",
            "description": "A photo's width and height, a PDF's pages, or DICOM header fields "
            "(Modality, StudyDate, StudyDescription, SeriesDescription, BodyPartExamined, …)",
        },
        "content_url": {"type": "string"},
    },
}
LISTING: Spec = {
    "type": "object",
    "properties": {
        "attachments": {"type": "array", "items": ATTACHMENT},
        "max_files": {"type": "integer"},
        "max_bytes": {"type": "integer"},
    },
}
UPLOAD: Spec = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        }
    },
}
SERVED_TYPES = [*(t for t, _ in IMAGE_FORMATS.values()), PDF_TYPE, DICOM_TYPE]


def _file(op: Spec) -> Spec:
    """An operation whose success answer is the file's bytes under its own type."""
    op["responses"]["200"] = {
        "description": "The file, with Content-Disposition, nosniff and no caching",
        "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in SERVED_TYPES},
    }
    return op


def _patient(summary: str, **kwargs: object) -> Spec:
    op = operation(summary, tag=TAG, public=True, **kwargs)  # type: ignore[arg-type]
    op["parameters"] = [TOKEN, *op.get("parameters", [])]
    return op


def _upload(op: Spec) -> Spec:
    op["requestBody"] = UPLOAD
    return op


PATHS: Spec = {
    "/api/join/{token}/attachments": {
        "get": _patient(
            "The patient's own photos and documents for this visit", ok=LISTING, errors=LINK_ERRORS
        ),
        "post": _upload(
            _patient(
                "Add a photo (JPEG, PNG, WebP: re-encoded without its metadata), a PDF or a DICOM "
                "file, judged by its content: 415 `unsupported_media_type` for anything else, "
                "413 `file_too_large` / `image_too_large`, 409 `too_many_attachments`",
                ok=ATTACHMENT,
                status="201",
                errors=(*LINK_ERRORS, 413, 415),
            )
        ),
    },
    "/api/join/{token}/attachments/{attachment_id}/content": {
        "get": _file(
            _patient(
                "Download one of the patient's own files",
                errors=LINK_ERRORS,
                params=[ATTACHMENT_ID, DISPOSITION],
            )
        )
    },
    "/api/appointments/{appointment_id}/attachments": {
        "get": operation(
            "The photos and documents the patient added to this appointment (the record's "
            "readers: a provider in the patient's care, or after breaking the glass)",
            tag=TAG,
            ok=LISTING,
            errors=(401, 403, 404),
            params=[APPOINTMENT_ID],
        )
    },
    "/api/patients/{patient_id}/attachments": {
        "get": operation(
            "Every photo and document the patient added, across their visits, oldest first (the "
            "record's readers; 403 `break_glass_required` outside the patient's care)",
            tag=TAG,
            ok=LISTING,
            errors=(401, 403, 404),
            params=[path_param("patient_id", "A patient of the caller's clinic")],
        )
    },
    "/api/appointments/{appointment_id}/attachments/{attachment_id}/content": {
        "get": _file(
            operation(
                "Download (or view a photo inline) one of the appointment's files",
                tag=TAG,
                errors=(401, 403, 404),
                params=[APPOINTMENT_ID, ATTACHMENT_ID, DISPOSITION],
            )
        )
    },
}

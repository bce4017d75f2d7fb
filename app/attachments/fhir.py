"""An attachment as a FHIR R4 DocumentReference: the file's type, size, hash and title, whose
it is and which visit (or appointment) it came with; the bytes stay behind the API."""

from __future__ import annotations

import uuid
from typing import Any

from app.attachments.models import Attachment

#: LOINC document kinds: a photo (clinical photograph), else a patient-supplied document.
CATEGORY = {
    "image": ("72170-4", "Photographic image"),
    "pdf": ("51851-4", "Administrative note"),
    "dicom": ("18748-4", "Diagnostic imaging study"),
}


def document_reference(
    attachment: Attachment, *, encounter_id: uuid.UUID | None, content_url: str
) -> dict[str, Any]:
    code, display = CATEGORY.get(attachment.kind, ("51851-4", "Administrative note"))
    context: dict[str, Any] = {
        "related": [{"reference": f"Appointment/{attachment.appointment_id}"}]
    }
    if encounter_id is not None:
        context["encounter"] = [{"reference": f"Encounter/{encounter_id}"}]
    return {
        "resourceType": "DocumentReference",
        "id": str(attachment.id),
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{attachment.patient_id}"},
        "date": attachment.created_at.isoformat(timespec="milliseconds"),
        "author": [{"reference": f"Patient/{attachment.patient_id}"}],
        "description": attachment.title,
        "content": [
            {
                "attachment": {
                    "contentType": attachment.content_type,
                    "url": content_url,
                    "size": attachment.size,
                    "hash": attachment.sha1,  # FHIR's: SHA-1 of the data, base64
                    "title": attachment.title,
                    "creation": attachment.created_at.isoformat(timespec="milliseconds"),
                }
            }
        ],
        "context": context,
    }

"""OpenAPI fragment of the staff intake API."""

from __future__ import annotations

from app.intake.routes import IntakeFormIn
from app.web.openapi import Spec, operation, path_param, ref, schemas_of

TAG = "intake"
TYPE_ID = path_param("type_id", "A visit type of the caller's clinic")
APPOINTMENT_ID = path_param("appointment_id", "An appointment of the caller's clinic")
CARD: Spec = {
    "type": "object",
    "description": "A CDS Hooks card: decision support, not a diagnosis",
    "properties": {
        "uuid": {"type": "string"},
        "summary": {"type": "string"},
        "indicator": {"type": "string", "enum": ["info", "warning", "critical"]},
        "detail": {"type": "string"},
        "source": {"type": "object", "properties": {"label": {"type": "string"}}},
    },
}
FORM: Spec = {
    "type": "object",
    "properties": {
        "appointment_type_id": {"type": "string", "format": "uuid"},
        "appointment_type": {"type": "string"},
        "is_default": {"type": "boolean"},
        "updated_at": {"type": ["string", "null"]},
        "questionnaire": {"type": "object", "description": "FHIR R4 Questionnaire"},
        "rules": {"type": "array", "items": {"type": "object"}},
    },
}
ANSWERS: Spec = {
    "type": "object",
    "properties": {
        "submitted_at": {"type": ["string", "null"]},
        "answers": {"type": "array", "items": {"type": "object"}},
        "cards": {"type": "array", "items": CARD},
    },
}

PATHS: Spec = {
    "/api/appointment-types/{type_id}/intake": {
        "get": operation(
            "The visit type's intake questionnaire and red-flag rules (the default until the "
            "clinic sets its own; admin)",
            tag=TAG,
            ok=FORM,
            errors=(401, 403, 404),
            params=[TYPE_ID],
        ),
        "put": operation(
            "Replace the visit type's questionnaire and rules (admin); a 400 names each wrong "
            "field",
            tag=TAG,
            body=ref("IntakeFormIn"),
            ok=FORM,
            errors=(400, 401, 403, 404, 413),
            params=[TYPE_ID],
        ),
    },
    "/api/appointments/{appointment_id}/intake": {
        "get": operation(
            "A patient's intake answers and the red-flag cards they raise, critical first "
            "(providers and admins of the clinic)",
            tag=TAG,
            ok=ANSWERS,
            errors=(401, 403, 404),
            params=[APPOINTMENT_ID],
        )
    },
}
SCHEMAS = schemas_of(IntakeFormIn)

"""OpenAPI fragment of the patient check-in API (the waiting room itself runs over Socket.IO)."""

from __future__ import annotations

from app.web.openapi import Spec, operation, path_param, schemas_of
from signaling.checkin.guest_routes import GuestNameIn
from signaling.checkin.intake_routes import AnswersIn
from signaling.checkin.routes import IdentityIn, WaitingTextIn
from signaling.checkin.steps import ConsentIn, DeviceCheckIn
from signaling.checkin.text_routes import TextsIn
from signaling.visit.guest_routes import GuestInviteIn

TOKEN = {
    "name": "token",
    "in": "path",
    "required": True,
    "description": "The join token from the patient's appointment email",
    "schema": {"type": "string"},
}


def progress_schema(first_step: str) -> Spec:
    """Where someone is on their way into a visit: patients start at identity, guests at name."""
    return {
        "type": "object",
        "properties": {
            "step": {
                "type": "string",
                "enum": [first_step, "consent", "intake", "device_check", "waiting", "admitted"],
            },
            "provider_name": {"type": "string"},
            "starts_at": {"type": "string", "format": "date-time"},
            "visit_url": {"type": ["string", "null"]},
        },
    }


PROGRESS = progress_schema("identity")
PATIENT_STATUS: Spec = {
    **PROGRESS,
    "properties": {
        **PROGRESS["properties"],
        "reason": {"type": ["string", "null"], "description": "the reason for the visit given"},
        "messages": {"type": "array", "items": {"type": "object"}},
    },
}
LINK_ERRORS = (400, 404, 409, 410, 423)
INTAKE: Spec = {
    "type": "object",
    "properties": {
        "questionnaire": {"type": "object", "description": "FHIR R4 Questionnaire"},
        "answers": {"type": "object", "description": "linkId → answer"},
        "submitted_at": {"type": ["string", "null"], "format": "date-time"},
    },
}


TEXTS: Spec = {
    "type": "object",
    "properties": {
        "can_text": {"type": "boolean"},
        "number_ends": {"type": ["string", "null"]},
        "agreed": {"type": "boolean"},
    },
    "required": ["can_text", "number_ends", "agreed"],
}


def _op(summary: str, **kwargs: object) -> Spec:
    return operation(summary, tag="check-in", params=[TOKEN], public=True, **kwargs)  # type: ignore[arg-type]


PATHS: Spec = {
    "/api/join/{token}/identity": {
        "post": _op(
            "Confirm identity with the date of birth; sets the patient session cookie. Wrong "
            "dates are counted; at the limit the link locks (423) and the clinic is alerted",
            body={"$ref": "#/components/schemas/IdentityIn"},
            ok=PROGRESS,
            errors=(*LINK_ERRORS, 413, 429),
        )
    },
    "/api/join/{token}/status": {
        "get": _op(
            "Where the patient is in check-in, the reason for the visit given and messages so far",
            ok=PATIENT_STATUS,
            errors=LINK_ERRORS,
        )
    },
    "/api/join/{token}/consent": {
        "get": _op(
            "The clinic's current telehealth consent text",
            ok={
                "type": "object",
                "properties": {
                    "version": {"type": "integer"},
                    "title": {"type": "string"},
                    "body": {"type": "string"},
                },
            },
            errors=LINK_ERRORS,
        ),
        "post": _op(
            "Accept the current consent version (409 if the text changed)",
            body={"$ref": "#/components/schemas/ConsentIn"},
            ok=PROGRESS,
            errors=LINK_ERRORS,
        ),
    },
    "/api/join/{token}/device-check": {
        "post": _op(
            "Record the camera, microphone and network check",
            body={"$ref": "#/components/schemas/DeviceCheckIn"},
            ok=PROGRESS,
            errors=LINK_ERRORS,
        )
    },
    "/api/join/{token}/waiting": {
        "post": _op("Enter the provider's waiting room queue", ok=PROGRESS, errors=LINK_ERRORS)
    },
    "/api/join/{token}/reply": {
        "post": _op(
            "A waiting patient answers the clinic (up to 200 characters, 3 a minute)",
            body={"$ref": "#/components/schemas/WaitingTextIn"},
            ok={
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "sent_at": {"type": "string", "format": "date-time"},
                    "from": {"type": "string"},
                },
            },
            status="201",
            errors=(*LINK_ERRORS, 413, 429),
        )
    },
    "/api/join/{token}/reason": {
        "post": _op(
            "A waiting patient says what they want to talk about; the provider's queue shows it",
            body={"$ref": "#/components/schemas/WaitingTextIn"},
            ok={"type": "object", "properties": {"text": {"type": "string"}}},
            status="201",
            errors=(*LINK_ERRORS, 413, 429),
        )
    },
    "/api/join/{token}/ping": {
        "get": _op("Round trip for the network check", ok={"type": "object"}, errors=LINK_ERRORS)
    },
    "/api/join/{token}/intake": {
        "get": _op(
            "The clinic's intake questions (a FHIR Questionnaire) and the patient's answers so far",
            ok=INTAKE,
            errors=LINK_ERRORS,
        ),
        "patch": _op(
            "Save changed answers (linkId → answer; null clears one); a wrong answer is a 400 "
            "naming its linkId",
            body={"$ref": "#/components/schemas/AnswersIn"},
            ok={"type": "object", "properties": {"updated_at": {"type": "string"}}},
            errors=(*LINK_ERRORS, 413),
        ),
    },
    "/api/join/{token}/intake/submit": {
        "post": _op(
            "Send the answers; each unanswered required question is a 400 naming its linkId",
            ok=PROGRESS,
            errors=LINK_ERRORS,
        )
    },
    "/api/join/{token}/texts": {
        "get": _op(
            "Whether the patient can get texts (a valid number, shown by its last four digits) "
            "and whether they agreed; audited",
            ok=TEXTS,
            errors=LINK_ERRORS,
        ),
        "put": _op(
            "The patient agrees to (or stops) getting their visits' links and reminders by text "
            "message; recorded as given by the patient at check-in, audited",
            body={"$ref": "#/components/schemas/TextsIn"},
            ok=TEXTS,
            errors=(*LINK_ERRORS, 413),
        ),
    },
}

ICE_SERVERS: Spec = {
    "type": "object",
    "properties": {
        "ice_servers": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "urls": {"type": "array", "items": {"type": "string"}},
                    "username": {"type": "string"},
                    "credential": {"type": "string"},
                },
                "required": ["urls"],
            },
        },
        "ice_transport_policy": {
            "type": "string",
            "enum": ["all", "relay"],
            "description": "RTCConfiguration.iceTransportPolicy: relay with "
            "OPENCONSULT_RTC_RELAY_ONLY (TURN candidates only)",
        },
    },
    "required": ["ice_servers", "ice_transport_policy"],
}

PATHS["/api/visits/{visit_id}/ice-servers"] = {
    "get": operation(
        "STUN/TURN servers for the caller's browser in this visit (the visit's provider, or "
        "its patient by the oc_patient session cookie); TURN entries carry short-lived "
        "credentials. Anyone else gets 404",
        tag="visit",
        params=[path_param("visit_id", "The visit")],
        ok=ICE_SERVERS,
        errors=(400, 404),
    )
}

PATHS["/api/visits/{visit_id}/placement"] = {
    "post": operation(
        "The node that runs this visit (its provider, patient or admitted guest asks): placed "
        "on the least-loaded serving node at the first join, kept while its lease holds. "
        "`epoch` grows at each placement. 503 `try_again` while the node registry (Redis) "
        "is out; anyone else gets 404",
        tag="visit",
        params=[path_param("visit_id", "The visit")],
        ok={
            "type": "object",
            "properties": {
                "node": {"type": "string"},
                "url": {"type": "string"},
                "epoch": {"type": "integer"},
                "socket_path": {"type": "string"},
            },
            "required": ["node", "url", "epoch", "socket_path"],
        },
        errors=(400, 404, 503),
    )
}

PATHS["/api/appointments/{appointment_id}/unlock-checkin"] = {
    "post": operation(
        "Unlock a join link locked after wrong dates of birth (admin, scheduler, or the "
        "appointment's own provider; audited): the same link works again with a fresh count "
        "of tries. 409 when the check-in is not locked; another clinic's appointment is 404",
        tag="check-in",
        params=[path_param("appointment_id", "An appointment of the caller's clinic")],
        ok={
            "type": "object",
            "properties": {
                "appointment_id": {"type": "string", "format": "uuid"},
                "patient_name": {"type": "string"},
                "link_locked": {"type": "boolean"},
            },
        },
        errors=(401, 403, 404, 409),
    )
}

SCHEMAS = schemas_of(IdentityIn, ConsentIn, DeviceCheckIn, WaitingTextIn, AnswersIn, TextsIn)

GUEST_TOKEN = TOKEN | {"description": "The token of the guest link the provider handed out"}
GUEST_PROGRESS = progress_schema("name")
GUEST: Spec = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "label": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "status": {
            "type": "string",
            "enum": ["invited", "checking in", "waiting", "admitted", "removed"],
        },
        "path": {"type": "string"},
        "url": {"type": "string"},
    },
}
VISIT_ID = path_param("visit_id", "The visit")


def _guest_op(summary: str, **kwargs: object) -> Spec:
    return operation(summary, tag="visit-guest", params=[GUEST_TOKEN], public=True, **kwargs)  # type: ignore[arg-type]


PATHS |= {
    "/api/visits/{visit_id}/guests": {
        "post": operation(
            "The visit's provider invites a guest (an interpreter, a family member); the answer "
            "carries the guest's link, which works until the visit ends or the guest is removed",
            tag="visit",
            params=[VISIT_ID],
            body={"$ref": "#/components/schemas/GuestInviteIn"},
            ok=GUEST,
            status="201",
            errors=(400, 403, 404, 409, 413),
        ),
        "get": operation(
            "The visit's guests with their links and states (the visit's provider only)",
            tag="visit",
            params=[VISIT_ID],
            ok={"type": "object", "properties": {"guests": {"type": "array", "items": GUEST}}},
            errors=(403, 404),
        ),
    },
    "/api/visits/{visit_id}/attendance": {
        "get": operation(
            "Who took part in the visit (role, name, joined and left times) and how long it "
            "lasted (the visit's provider only; audited)",
            tag="visit",
            params=[VISIT_ID],
            ok={
                "type": "object",
                "properties": {
                    "visit_id": {"type": "string", "format": "uuid"},
                    "started_at": {"type": "string", "format": "date-time"},
                    "ended_at": {"type": ["string", "null"], "format": "date-time"},
                    "duration_seconds": {"type": ["integer", "null"]},
                    "participants": {"type": "array", "items": {"type": "object"}},
                },
            },
            errors=(403, 404),
        )
    },
    "/api/guest/{token}/status": {
        "get": _guest_op("Where the guest is on their way in", ok=GUEST_PROGRESS, errors=(404, 410))
    },
    "/api/guest/{token}/name": {
        "post": _guest_op(
            "The guest gives their name; sets the guest session cookie",
            body={"$ref": "#/components/schemas/GuestNameIn"},
            ok=GUEST_PROGRESS,
            errors=(400, 404, 409, 410, 413),
        )
    },
    "/api/guest/{token}/consent": {
        "get": _guest_op(
            "The clinic's current telehealth consent text (the same the patient accepts)",
            ok={"type": "object"},
            errors=(404, 409, 410),
        ),
        "post": _guest_op(
            "Accept the current consent version (409 if the text changed)",
            body={"$ref": "#/components/schemas/ConsentIn"},
            ok=GUEST_PROGRESS,
            errors=(400, 404, 409, 410),
        ),
    },
    "/api/guest/{token}/device-check": {
        "post": _guest_op(
            "Record the guest's camera, microphone and network check",
            body={"$ref": "#/components/schemas/DeviceCheckIn"},
            ok=GUEST_PROGRESS,
            errors=(400, 404, 409, 410),
        )
    },
    "/api/guest/{token}/waiting": {
        "post": _guest_op(
            "Wait for the provider to admit the guest", ok=GUEST_PROGRESS, errors=(404, 409, 410)
        )
    },
    "/api/guest/{token}/ping": {
        "get": _guest_op(
            "Round trip for the network check", ok={"type": "object"}, errors=(404, 409, 410)
        )
    },
}

SCHEMAS |= schemas_of(GuestInviteIn, GuestNameIn)

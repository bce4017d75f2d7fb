"""OpenAPI fragment of the patient check-in API (the waiting room itself runs over Socket.IO)."""

from __future__ import annotations

from app.openapi import Spec, operation, path_param, schemas_of
from signaling.checkin_routes import ConsentIn, DeviceCheckIn, IdentityIn

TOKEN = {
    "name": "token",
    "in": "path",
    "required": True,
    "description": "The join token from the patient's appointment email",
    "schema": {"type": "string"},
}
PROGRESS: Spec = {
    "type": "object",
    "properties": {
        "step": {
            "type": "string",
            "enum": ["identity", "consent", "device_check", "waiting", "admitted"],
        },
        "provider_name": {"type": "string"},
        "starts_at": {"type": "string", "format": "date-time"},
        "visit_url": {"type": ["string", "null"]},
    },
}
LINK_ERRORS = (400, 404, 409, 410, 423)


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
            "Where the patient is in check-in, and messages so far", ok=PROGRESS, errors=LINK_ERRORS
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
    "/api/join/{token}/ping": {
        "get": _op("Round trip for the network check", ok={"type": "object"}, errors=LINK_ERRORS)
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
        }
    },
    "required": ["ice_servers"],
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

SCHEMAS = schemas_of(IdentityIn, ConsentIn, DeviceCheckIn)

"""OpenAPI fragment of on-demand visits: the admin's walk-in queue, the public walk-in link, and
a provider taking the next walk-in."""

from __future__ import annotations

from app.web.openapi import Spec, operation, ref, schemas_of
from signaling.ondemand.routes import OnDemandIn, WalkInIn

TAG = "on-demand"
CODE: Spec = {
    "name": "code",
    "in": "path",
    "required": True,
    "description": "The clinic's walk-in code (the public link is /walk-in/<code>)",
    "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{2,62}$"},
}
HOURS: Spec = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "weekday": {"type": "integer"},
            "start": {"type": "string"},
            "end": {"type": "string"},
        },
    },
}
QUEUE: Spec = {
    "type": "object",
    "properties": {
        "configured": {"type": "boolean"},
        "code": {"type": ["string", "null"]},
        "link": {"type": ["string", "null"]},
        "enabled": {"type": "boolean"},
        "timezone": {"type": "string"},
        "hours": HOURS,
        "appointment_type_id": {"type": ["string", "null"]},
        "provider_ids": {"type": "array", "items": {"type": "string"}},
        "open_now": {"type": "boolean"},
    },
}
PUBLIC: Spec = {
    "type": "object",
    "properties": {
        "clinic_name": {"type": "string"},
        "clinic_phone": {"type": ["string", "null"]},
        "timezone": {"type": "string"},
        "open": {"type": "boolean"},
        "opens_at": {"type": ["string", "null"], "description": "Next opening, clinic's offset"},
        "opens_text": {"type": ["string", "null"]},
    },
}

PATHS: Spec = {
    "/api/on-demand": {
        "get": operation(
            "The walk-in queue of the admin's clinic: link, open or not, hours in the clinic's "
            "zone, visit type, providers who take from it (admin)",
            tag=TAG,
            ok=QUEUE,
        ),
        "put": operation(
            "Set up, open or close the clinic's walk-in queue (admin; audited); providers and "
            "visit type must be the clinic's own",
            tag=TAG,
            body=ref("OnDemandIn"),
            ok=QUEUE,
            errors=(400, 401, 403, 409, 413),
        ),
    },
    "/api/on-demand/take": {
        "post": operation(
            "Take the walk-in who arrived first (a provider of the walk-in queue): their visit "
            "starts with the caller; 404 when nobody waits or the caller takes no walk-ins",
            tag=TAG,
            ok={
                "type": "object",
                "properties": {
                    "visit_id": {"type": "string"},
                    "url": {"type": "string"},
                    "appointment_id": {"type": "string"},
                },
            },
            errors=(401, 403, 404, 409),
        )
    },
    "/api/walk-in/{code}": {
        "get": operation(
            "Public: the clinic behind a walk-in link, open now or when it opens next",
            tag=TAG,
            ok=PUBLIC,
            errors=(404,),
            params=[CODE],
            public=True,
        ),
        "post": operation(
            "Public: ask for a walk-in visit (name, date of birth, email or phone, reason). "
            "The record is matched or made; the answer sets the patient's session and names "
            "their check-in link. 409 when closed (with the next opening), 429 past the "
            "address's rate or the contact's open requests",
            tag=TAG,
            status="201",
            body=ref("WalkInIn"),
            ok={"type": "object", "properties": {"join_url": {"type": "string"}}},
            errors=(400, 404, 409, 413, 429),
            params=[CODE],
            public=True,
        ),
    },
}
SCHEMAS = schemas_of(OnDemandIn, WalkInIn)

"""The OpenAPI 3 description of /api: helpers for each domain's fragment, and the merge."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

Spec = dict[str, Any]

ERROR_SCHEMA: Spec = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                "detail": {"type": "object"},
            },
        }
    },
}


def ref(name: str) -> Spec:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: Spec) -> Spec:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def operation(
    summary: str,
    *,
    tag: str,
    ok: Spec | None = None,
    status: str = "200",
    body: Spec | None = None,
    errors: tuple[int, ...] = (401, 403),
    params: list[Spec] | None = None,
    public: bool = False,
) -> Spec:
    """One operation with its success answer and the error answers it can give."""
    responses: Spec = {status: {"description": "OK"}}
    if ok is not None:
        responses[status]["content"] = {"application/json": {"schema": ok}}
    for code in errors:
        responses[str(code)] = {
            "description": "Error",
            "content": {"application/json": {"schema": ref("Error")}},
        }
    op: Spec = {"summary": summary, "tags": [tag], "responses": responses}
    if body is not None:
        op["requestBody"] = json_body(body)
    if params:
        op["parameters"] = params
    if public:
        op["security"] = []
    return op


def path_param(name: str, description: str) -> Spec:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "format": "uuid"},
    }


# A time of day on a wall clock ("09:00", "00:00:00"): the clinic's and providers' hours are in
# their own zone, so these times carry no offset, which JSON Schema's `format: time` (RFC 3339
# full-time) demands.
WALL_CLOCK_TIME: Spec = {
    "type": "string",
    "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
    "description": "A time of day without offset, HH:MM[:SS], in the zone the object names",
}


def _wall_clock_times(node: object) -> object:
    """The schema with every `format: time` string replaced by WALL_CLOCK_TIME."""
    if isinstance(node, list):
        return [_wall_clock_times(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("format") == "time" and node.get("type") == "string":
        kept = {k: v for k, v in node.items() if k not in {"format", "type"}}
        return {**WALL_CLOCK_TIME, **kept}
    return {key: _wall_clock_times(value) for key, value in node.items()}


def schemas_of(*models: type[BaseModel]) -> dict[str, Spec]:
    """Component schemas of `models`, their nested definitions (enums…) hoisted beside them."""
    found: dict[str, Spec] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
    fixed = _wall_clock_times(found)
    assert isinstance(fixed, dict)
    return fixed


PLATFORM_PATHS: Spec = {
    "/api/audit-events": {
        "get": operation(
            "The clinic's audit trail, newest first (admin)",
            tag="audit",
            ok={"type": "array", "items": {"type": "object"}},
            errors=(400, 401, 403),
            params=[
                {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 500}},
                {"name": "before_id", "in": "query", "schema": {"type": "integer"}},
            ],
        )
    },
    "/api/openapi.json": {
        "get": operation(
            "This description", tag="meta", ok={"type": "object"}, errors=(), public=True
        )
    },
}

PLATFORM_SCHEMAS = {"Error": ERROR_SCHEMA}


def build_spec(fragments: list[tuple[Spec, dict[str, Spec]]]) -> Spec:
    """Merge (paths, schemas) fragments of every package into one document."""
    paths: Spec = {}
    schemas: dict[str, Spec] = {}
    for frag_paths, frag_schemas in fragments:
        paths.update(frag_paths)
        for name, schema in frag_schemas.items():
            if schemas.setdefault(name, schema) != schema:
                # The last fragment would win, and the description would depend on setup order.
                raise ValueError(f"two different OpenAPI schemas are named {name!r}")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "OpenConsult API",
            "version": "0.1.0",
            "description": (
                'Errors answer {"error": {"code", "message", "fields"}}. Authenticate with '
                "the session cookie (unsafe methods then need the X-CSRF-Token header) or with "
                "`Authorization: Bearer <token>` from /api/auth/login."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "oc_session"},
            },
        },
        "security": [{"bearer": []}, {"cookie": []}],
    }

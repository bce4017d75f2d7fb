"""The OpenAPI 3 description of /api, assembled from each package's fragment."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.accounts.schemas import ClinicPublic, LoginIn, UserCreate, UserPublic

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


def schemas_of(*models: type[BaseModel]) -> dict[str, Spec]:
    """Component schemas of `models`, their nested definitions (enums…) hoisted beside them."""
    found: dict[str, Spec] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
    return found


USER_ID = path_param("user_id", "A user of the caller's clinic")

CORE_PATHS: Spec = {
    "/api/auth/login": {
        "post": operation(
            "Sign in; returns a Bearer token and sets the session cookie",
            tag="auth",
            body=ref("LoginIn"),
            ok={
                "type": "object",
                "properties": {
                    "token": {"type": "string"},
                    "token_type": {"type": "string"},
                    "expires_at": {"type": "string", "format": "date-time"},
                    "csrf_token": {"type": "string"},
                    "user": ref("UserPublic"),
                },
            },
            errors=(400, 401, 413, 423, 429),
            public=True,
        )
    },
    "/api/auth/logout": {
        "post": operation("Sign out; the session is revoked", tag="auth", status="204")
    },
    "/api/me": {
        "get": operation(
            "The signed-in user and their clinic",
            tag="auth",
            ok={
                "type": "object",
                "properties": {
                    "user": ref("UserPublic"),
                    "clinic": ref("ClinicPublic"),
                    "csrf_token": {"type": "string"},
                    "session_expires_at": {"type": "string", "format": "date-time"},
                },
            },
            errors=(401,),
        )
    },
    "/api/users": {
        "get": operation(
            "Users of the caller's clinic (admin, scheduler)",
            tag="users",
            ok={"type": "array", "items": ref("UserPublic")},
        ),
        "post": operation(
            "Create a user in the caller's clinic (admin)",
            tag="users",
            body=ref("UserCreate"),
            ok=ref("UserPublic"),
            status="201",
            errors=(400, 401, 403, 409, 413),
        ),
    },
    "/api/users/{user_id}": {
        "get": operation(
            "One user of the caller's clinic (admin, scheduler); other clinics' users are 404",
            tag="users",
            ok=ref("UserPublic"),
            errors=(401, 403, 404),
            params=[USER_ID],
        )
    },
    "/api/users/{user_id}/unlock": {
        "post": operation(
            "Unlock a user locked by failed sign-ins (admin)",
            tag="users",
            ok=ref("UserPublic"),
            errors=(401, 403, 404),
            params=[USER_ID],
        )
    },
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

CORE_SCHEMAS = {"Error": ERROR_SCHEMA} | schemas_of(LoginIn, UserCreate, UserPublic, ClinicPublic)


def build_spec(fragments: list[tuple[Spec, dict[str, Spec]]]) -> Spec:
    """Merge (paths, schemas) fragments of every package into one document."""
    paths: Spec = {}
    schemas: dict[str, Spec] = {}
    for frag_paths, frag_schemas in fragments:
        paths.update(frag_paths)
        schemas.update(frag_schemas)
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

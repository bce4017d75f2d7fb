"""The OpenAPI fragment of accounts: signing in and out, the signed-in user, users."""

from __future__ import annotations

from app.accounts.schemas import ClinicPublic, ClinicUpdate, LoginIn, UserCreate, UserPublic
from app.web.openapi import Spec, operation, path_param, ref, schemas_of

USER_ID = path_param("user_id", "A user of the caller's clinic")

PATHS: Spec = {
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
    "/api/clinic": {
        "patch": operation(
            "Set the clinic's phone number, shown to patients (admin)",
            tag="auth",
            body=ref("ClinicUpdate"),
            ok=ref("ClinicPublic"),
            errors=(400, 401, 403, 413),
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
}

SCHEMAS = schemas_of(LoginIn, UserCreate, UserPublic, ClinicPublic, ClinicUpdate)

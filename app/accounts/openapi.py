"""The OpenAPI fragment of accounts: signing in and out, the signed-in user, users."""

from __future__ import annotations

from app.accounts.schemas import (
    ClinicPublic,
    ClinicSecurity,
    ClinicUpdate,
    LoginIn,
    MfaCode,
    MfaStart,
    PasswordChange,
    UserCreate,
    UserPublic,
)
from app.web.openapi import Spec, operation, path_param, ref, schemas_of

USER_ID = path_param("user_id", "A user of the caller's clinic")

SESSION: Spec = {
    "type": "object",
    "required": ["token", "token_type", "expires_at", "csrf_token", "user"],
    "properties": {
        "token": {"type": "string"},
        "token_type": {"type": "string"},
        "expires_at": {"type": "string", "format": "date-time"},
        "csrf_token": {"type": "string"},
        "user": ref("UserPublic"),
    },
}
# The password was right and a second factor is due: `mfa` says which step, `mfa_token` (not a
# session) goes with it to /api/auth/mfa (verify) or /api/auth/mfa/enrol… (enrol).
SECOND_STEP: Spec = {
    "type": "object",
    "required": ["mfa", "mfa_token"],
    "properties": {
        "mfa": {"type": "string", "enum": ["verify", "enrol"]},
        "mfa_token": {"type": "string"},
    },
}
RECOVERY_CODES: Spec = {"type": "array", "items": {"type": "string"}}

PATHS: Spec = {
    "/api/auth/login": {
        "post": operation(
            "Sign in; returns a Bearer token and sets the session cookie",
            tag="auth",
            body=ref("LoginIn"),
            ok={"oneOf": [SESSION, SECOND_STEP]},
            errors=(400, 401, 409, 413, 429),
            public=True,
        )
    },
    "/api/auth/mfa": {
        "post": operation(
            "Second factor: a TOTP or recovery code with the mfa_token; returns the session",
            tag="auth",
            body=ref("MfaCode"),
            ok=SESSION,
            errors=(400, 401, 413, 423, 429),
            public=True,
        )
    },
    "/api/auth/mfa/enrol": {
        "post": operation(
            "Start setting up TOTP (with an mfa_token of the enrol step, or signed in): the "
            "secret, its otpauth URI and a QR code as SVG",
            tag="auth",
            body=ref("MfaStart"),
            ok={
                "type": "object",
                "required": ["secret", "otpauth_uri", "qr_svg"],
                "properties": {
                    "secret": {"type": "string"},
                    "otpauth_uri": {"type": "string"},
                    "qr_svg": {"type": "string"},
                },
            },
            errors=(400, 401, 403, 409, 413, 429),
            public=True,
        )
    },
    "/api/auth/mfa/enrol/confirm": {
        "post": operation(
            "Confirm TOTP with a first code; returns recovery codes (and the session when "
            "signing in)",
            tag="auth",
            body=ref("MfaCode"),
            ok={
                "type": "object",
                "required": ["recovery_codes"],
                "properties": {**SESSION["properties"], "recovery_codes": RECOVERY_CODES},
            },
            errors=(400, 401, 403, 404, 409, 413, 429),
            public=True,
        )
    },
    "/api/me/password": {
        "post": operation(
            "Change one's password; every other session ends, this one continues with the "
            "returned token",
            tag="auth",
            body=ref("PasswordChange"),
            ok=SESSION,
            errors=(400, 401, 403, 413, 423, 429),
        )
    },
    "/api/clinic/security": {
        "put": operation(
            "Require MFA of all staff of the caller's clinic, or not (admin; admins always)",
            tag="users",
            body=ref("ClinicSecurity"),
            ok=ref("ClinicPublic"),
            errors=(400, 401, 403, 413),
        )
    },
    "/api/users/{user_id}/mfa/reset": {
        "post": operation(
            "Forget a user's second factor and end their sessions (admin)",
            tag="users",
            ok=ref("UserPublic"),
            errors=(401, 403, 404),
            params=[USER_ID],
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

SCHEMAS = schemas_of(
    LoginIn,
    UserCreate,
    UserPublic,
    ClinicPublic,
    ClinicUpdate,
    MfaCode,
    MfaStart,
    PasswordChange,
    ClinicSecurity,
)

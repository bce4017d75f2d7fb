"""A staff member's own security (password change, setting up MFA by choice) and the admin's
side of it (the clinic's "require MFA" rule, resetting someone's MFA)."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from app.accounts import mfa, service
from app.accounts.mfa_routes import confirmed, enrolment_context
from app.accounts.routes import clinic_user, session_body
from app.accounts.schemas import ClinicPublic, ClinicSecurity, MfaCode, PasswordChange, UserPublic
from app.core.auth import issue_session_token, publish_ended_epochs
from app.core.errors import DomainError
from app.core.models import Role, User
from app.web.api import model_response, parse_model, read_json
from app.web.audited import record
from app.web.identity import Staff, authorize, client_addr, set_session_cookie, staff_actor
from app.web.keys import DATABASE, DENYLIST, RATE_LIMITER, SETTINGS

routes = web.RouteTableDef()


async def _security_context(request: web.Request, staff: Staff) -> dict[str, Any]:
    async with request.app[DATABASE].session() as session:
        factor = await mfa.enrolled(session, staff.id)
        clinic = await service.get_clinic(session, staff.clinic_id)
        remaining = await mfa.remaining_recovery_codes(session, staff.id) if factor else 0
    return {
        "staff": staff,
        "mfa_enabled": factor is not None,
        "mfa_required": mfa.mfa_required(staff.user, clinic),
        "recovery_left": remaining,
        "changed": "changed" in request.query,
        "error": None,
        "field": None,
    }


async def _sessions_ended(request: web.Request, user: User, old_epoch: int) -> None:
    """The user's sessions before their current epoch have ended: their open sockets too."""
    await publish_ended_epochs(
        request.app[DENYLIST],
        request.app[SETTINGS],
        user.id,
        old_epoch=old_epoch,
        new_epoch=user.session_epoch,
    )


@routes.get("/account/security")
async def security_page(request: web.Request) -> web.StreamResponse:
    staff = await authorize(request)
    context = await _security_context(request, staff)
    return aiohttp_jinja2.render_template("accounts/security.html", request, context)


async def _change_password(
    request: web.Request, staff: Staff, change: PasswordChange
) -> tuple[User, str, Any]:
    """New password; all the user's sessions end, this one continues under a new token."""
    await service.check_address_rate(
        request.app[RATE_LIMITER], request.app[SETTINGS], "password-addr", client_addr(request)
    )
    async with request.app[DATABASE].session() as session:
        user = await service.change_password(
            session,
            settings=request.app[SETTINGS],
            user_id=staff.id,
            current_password=change.current_password,
            new_password=change.new_password,
        )
    await _sessions_ended(request, user, staff.user.session_epoch)
    token, claims = issue_session_token(
        request.app[SETTINGS],
        user_id=user.id,
        clinic_id=user.clinic_id,
        role=user.role,
        epoch=user.session_epoch,
    )
    await record(
        request,
        staff_actor(request, staff),
        "auth.password_change",
        object_type="staff_user",
        object_id=user.id,
    )
    return user, token, claims


@routes.post("/account/password")
async def password_form(request: web.Request) -> web.StreamResponse:
    staff = await authorize(request)
    form = await request.post()
    try:
        change = parse_model(
            PasswordChange,
            {
                "current_password": str(form.get("current_password", "")),
                "new_password": str(form.get("new_password", "")),
            },
        )
        _, token, claims = await _change_password(request, staff, change)
    except DomainError as exc:
        context = await _security_context(request, staff)
        context.update(error=exc.message, field=next(iter(exc.fields), None))
        return aiohttp_jinja2.render_template(
            "accounts/security.html", request, context, status=exc.status
        )
    response = web.HTTPSeeOther("/account/security?changed=1")
    set_session_cookie(response, request, token, claims)
    raise response


@routes.post("/api/me/password")
async def api_password(request: web.Request) -> web.Response:
    staff = await authorize(request)
    change = await read_json(request, PasswordChange)
    user, token, claims = await _change_password(request, staff, change)
    response = web.json_response(session_body(request, user, token, claims))
    if staff.via_cookie:
        set_session_cookie(response, request, token, claims)
    return response


@routes.get("/account/mfa")
async def mfa_page(request: web.Request) -> web.StreamResponse:
    staff = await authorize(request)
    context = await enrolment_context(request, staff.user)
    return aiohttp_jinja2.render_template("accounts/enrol.html", request, context)


@routes.post("/account/mfa")
async def mfa_form(request: web.Request) -> web.StreamResponse:
    staff = await authorize(request)
    form = await request.post()
    try:
        code = parse_model(MfaCode, {"code": str(form.get("code", ""))}).code
        codes = await confirmed(request, staff.user, code)
    except DomainError as exc:
        context = await enrolment_context(request, staff.user)
        context["error"] = exc.message
        return aiohttp_jinja2.render_template(
            "accounts/enrol.html", request, context, status=exc.status
        )
    return aiohttp_jinja2.render_template(
        "accounts/recovery_codes.html",
        request,
        {"codes": codes, "next": "/account/security", "staff": staff},
    )


@routes.put("/api/clinic/security")
async def clinic_security(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.ADMIN)
    body = await read_json(request, ClinicSecurity)
    async with request.app[DATABASE].session() as session:
        clinic, ended = await service.set_require_mfa(
            session, clinic_id=staff.clinic_id, required=body.require_mfa
        )
    for user in ended:
        await _sessions_ended(request, user, user.session_epoch - 1)
    await record(
        request,
        staff_actor(request, staff),
        "clinic.require_mfa",
        object_type="clinic",
        object_id=clinic.id,
        detail="on" if clinic.require_mfa else "off",
    )
    return model_response(ClinicPublic.model_validate(clinic, from_attributes=True))


@routes.post("/api/users/{user_id}/mfa/reset")
async def reset_mfa(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.ADMIN)
    user = await clinic_user(request, staff)
    async with request.app[DATABASE].session() as session:
        old_epoch = user.session_epoch
        await mfa.reset(session, user=user)
        user = await service.get_clinic_user(session, clinic_id=staff.clinic_id, user_id=user.id)
    await _sessions_ended(request, user, old_epoch)
    await record(
        request,
        staff_actor(request, staff),
        "user.mfa_reset",
        object_type="staff_user",
        object_id=user.id,
    )
    return model_response(UserPublic.model_validate(user, from_attributes=True))

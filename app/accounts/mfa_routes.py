"""The second factor at sign-in, and setting it up (at sign-in when required, or by choice).

Browsers carry the half-signed-in state in a cookie (`pending.PENDING_COOKIE`); API clients send
the `mfa_token` the password step gave them. Either way a session is issued only here, after a
good code.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from app.accounts import mfa, pending, service
from app.accounts.mfa import Stage
from app.accounts.routes import issue_session, safe_next, session_body
from app.accounts.schemas import MfaCode, MfaStart
from app.core import audit
from app.core.errors import DomainError, NotAuthenticated
from app.core.models import User
from app.web.api import parse_model, read_json
from app.web.audited import record
from app.web.identity import Actor, authorize, client_addr, set_session_cookie
from app.web.keys import DATABASE, RATE_LIMITER, SETTINGS

routes = web.RouteTableDef()


def _actor(request: web.Request, user: User) -> Actor:
    return Actor("staff", user.id, user.role.value, user.clinic_id, client_addr(request))


async def _verified(request: web.Request, token: str | None, code: str) -> tuple[User, str]:
    """The half-signed-in user, once their code is right; wrong codes count toward the lock."""
    settings = request.app[SETTINGS]
    await service.check_address_rate(
        request.app[RATE_LIMITER], settings, "mfa-addr", client_addr(request)
    )
    async with request.app[DATABASE].session() as session:
        user = await pending.pending_user(session, settings, token, Stage.VERIFY)
        try:
            if service.is_locked(user):
                raise service.locked_error(user, settings)
            factor = await mfa.enrolled(session, user.id)
            if factor is None:  # reset by an admin meanwhile
                raise NotAuthenticated(pending.EXPIRED)
            try:
                how = await mfa.check_code(session, mfa=factor, code=code)
            except (mfa.WrongCode, mfa.CodeReused):
                if await service.count_failure(session, user=user, settings=settings):
                    raise service.locked_error(user, settings) from None
                raise
        except DomainError as exc:
            await record(
                request,
                _actor(request, user),
                "auth.mfa",
                outcome=audit.FAILURE,
                object_type="staff_user",
                object_id=user.id,
                detail=exc.code,
            )
            raise
    return user, how


async def _enrolment_user(request: web.Request, token: str | None) -> tuple[User, bool]:
    """Who is setting up MFA: a half-signed-in user who must, or a signed-in one who chooses to.
    The flag says whether a session is still to be issued."""
    if token is not None or pending.PENDING_COOKIE in request.cookies:
        async with request.app[DATABASE].session() as session:
            user = await pending.pending_user(
                session, request.app[SETTINGS], pending.presented(request, token), Stage.ENROL
            )
        return user, True
    staff = await authorize(request)
    return staff.user, False


async def _enrolment(request: web.Request, user: User) -> dict[str, Any]:
    async with request.app[DATABASE].session() as session:
        factor = await mfa.begin_enrolment(session, user)
        clinic = await service.get_clinic(session, user.clinic_id)
    uri = mfa.provisioning_uri(factor, user, clinic.name)
    return {"secret": factor.secret, "otpauth_uri": uri, "qr_svg": mfa.qr_svg(uri)}


async def enrolment_context(
    request: web.Request, user: User, *, action: str = "/account/mfa"
) -> dict[str, Any]:
    """What the enrolment page shows: the QR code, the secret to type instead, the form."""
    return {
        **await _enrolment(request, user),
        "action": action,
        "error": None,
        "next": request.query.get("next", ""),
    }


async def confirmed(request: web.Request, user: User, code: str) -> list[str]:
    await service.check_address_rate(
        request.app[RATE_LIMITER], request.app[SETTINGS], "mfa-addr", client_addr(request)
    )
    async with request.app[DATABASE].session() as session:
        codes = await mfa.confirm_enrolment(session, user=user, code=code)
    await record(
        request,
        _actor(request, user),
        "auth.mfa_enrol",
        object_type="staff_user",
        object_id=user.id,
    )
    return codes


def _page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    context.setdefault("error", None)
    context.setdefault("next", request.query.get("next", ""))
    return aiohttp_jinja2.render_template(f"accounts/{template}", request, context, status=status)


def _restart() -> web.HTTPSeeOther:
    response = web.HTTPSeeOther("/login?expired=1")
    pending.clear_cookie(response)
    return response


# Pages -----------------------------------------------------------------------------------------


@routes.get("/login/mfa")
async def code_page(request: web.Request) -> web.StreamResponse:
    if pending.read(request.app[SETTINGS], request.cookies.get(pending.PENDING_COOKIE)) is None:
        raise _restart()
    return _page(request, "mfa.html")


@routes.post("/login/mfa")
async def code_form(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    next_path = str(form.get("next", ""))
    try:
        code = parse_model(MfaCode, {"code": str(form.get("code", ""))}).code
        user, how = await _verified(request, request.cookies.get(pending.PENDING_COOKIE), code)
        token, claims = await issue_session(request, user, how=f"password+{how}")
    except NotAuthenticated as exc:
        if exc.message == pending.EXPIRED:
            raise _restart() from None
        return _page(request, "mfa.html", exc.status, error=exc.message, next=next_path)
    except DomainError as exc:
        return _page(request, "mfa.html", exc.status, error=exc.message, next=next_path)
    response = web.HTTPSeeOther(safe_next(next_path, user.role))
    pending.clear_cookie(response)
    set_session_cookie(response, request, token, claims)
    raise response


@routes.get("/login/enrol")
async def enrol_page(request: web.Request) -> web.StreamResponse:
    try:
        user, _ = await _enrolment_user(request, None)
    except NotAuthenticated:
        raise _restart() from None
    context = await enrolment_context(request, user, action="/login/enrol")
    return aiohttp_jinja2.render_template("accounts/enrol.html", request, context)


@routes.post("/login/enrol")
async def enrol_form(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    next_path = str(form.get("next", ""))
    try:
        user, _ = await _enrolment_user(request, None)
    except NotAuthenticated:
        raise _restart() from None
    try:
        code = parse_model(MfaCode, {"code": str(form.get("code", ""))}).code
        codes = await confirmed(request, user, code)
    except DomainError as exc:
        context = await enrolment_context(request, user, action="/login/enrol")
        context.update(error=exc.message, next=next_path)
        return aiohttp_jinja2.render_template(
            "accounts/enrol.html", request, context, status=exc.status
        )
    token, claims = await issue_session(request, user, how="password+enrolment")
    response = _page(
        request, "recovery_codes.html", codes=codes, next=safe_next(next_path, user.role)
    )
    pending.clear_cookie(response)
    set_session_cookie(response, request, token, claims)
    return response


# API -------------------------------------------------------------------------------------------


@routes.post("/api/auth/mfa")
async def api_code(request: web.Request) -> web.Response:
    body = await read_json(request, MfaCode)
    user, how = await _verified(request, pending.presented(request, body.mfa_token), body.code)
    token, claims = await issue_session(request, user, how=f"password+{how}")
    response = web.json_response(session_body(request, user, token, claims))
    set_session_cookie(response, request, token, claims)
    return response


@routes.post("/api/auth/mfa/enrol")
async def api_enrol(request: web.Request) -> web.Response:
    body = await read_json(request, MfaStart)
    user, _ = await _enrolment_user(request, body.mfa_token)
    return web.json_response(await _enrolment(request, user))


@routes.post("/api/auth/mfa/enrol/confirm")
async def api_enrol_confirm(request: web.Request) -> web.Response:
    body = await read_json(request, MfaCode)
    user, signing_in = await _enrolment_user(request, body.mfa_token)
    codes = await confirmed(request, user, body.code)
    if not signing_in:
        return web.json_response({"recovery_codes": codes})
    token, claims = await issue_session(request, user, how="password+enrolment")
    response = web.json_response(
        {**session_body(request, user, token, claims), "recovery_codes": codes}
    )
    set_session_cookie(response, request, token, claims)
    return response

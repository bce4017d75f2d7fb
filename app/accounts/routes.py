"""Sign-in and sign-out (pages and JSON), the signed-in user, and the users of a clinic."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from app.accounts import mfa, pending, service
from app.accounts.mfa import Stage
from app.accounts.schemas import ClinicPublic, ClinicUpdate, LoginIn, UserCreate, UserPublic
from app.core import audit
from app.core.auth import SessionClaims, csrf_token_for, issue_session_token, session_expiry
from app.core.errors import DomainError, NotFound
from app.core.models import Role, User
from app.web.api import model_response, parse_model, path_uuid, read_json
from app.web.audited import record, refused
from app.web.csrf import csrf_token
from app.web.identity import (
    SESSION_COOKIE,
    Actor,
    Staff,
    anonymous_actor,
    authorize,
    client_addr,
    optional_staff,
    set_session_cookie,
    staff_actor,
)
from app.web.keys import DATABASE, DENYLIST, RATE_LIMITER, SETTINGS

routes = web.RouteTableDef()

LANDING = {Role.ADMIN: "/admin", Role.SCHEDULER: "/scheduler", Role.PROVIDER: "/provider"}


def landing_for(role: Role) -> str:
    return LANDING[role]


# A path of this site and nothing a browser could read as another site: browsers drop tabs and
# newlines inside a URL, trim control characters and read a backslash as a slash, so
# `/<TAB>/evil.example` or `/\evil.example` is `//evil.example`, another host, to them.
_SAME_SITE_PATH = re.compile(r"/(?![/\\])[^\x00-\x20\x7f\\]*")


def safe_next(target: str | None, role: Role) -> str:
    """Only a path on this site: an open redirect would turn a login link into phishing."""
    if target and _SAME_SITE_PATH.fullmatch(target):
        return target
    return landing_for(role)


async def check_password(request: web.Request, login: LoginIn) -> User:
    """The user these credentials open; every refusal is audited with its real reason."""
    try:
        async with request.app[DATABASE].session() as session:
            return await service.authenticate(
                session,
                settings=request.app[SETTINGS],
                limiter=request.app[RATE_LIMITER],
                email=str(login.email),
                password=login.password,
                client_addr=client_addr(request),
                clinic_id=login.clinic_id,
            )
    except DomainError as exc:
        await record(
            request,
            anonymous_actor(request),
            "auth.login",
            outcome=audit.FAILURE,
            object_type="staff_user",
            detail=f"{getattr(exc, 'why', exc.code)}: {service.normalize_email(str(login.email))}",
        )
        raise


async def issue_session(
    request: web.Request, user: User, *, how: str = "password"
) -> tuple[str, SessionClaims]:
    """Every factor is in: a session token, failures forgotten, the sign-in audited."""
    async with request.app[DATABASE].session() as session:
        await service.clear_failures(session, user)
    token, claims = issue_session_token(
        request.app[SETTINGS],
        user_id=user.id,
        clinic_id=user.clinic_id,
        role=user.role,
        epoch=user.session_epoch,
    )
    signed_in = Actor("staff", user.id, user.role.value, user.clinic_id, client_addr(request))
    await record(
        request, signed_in, "auth.login", object_type="staff_user", object_id=user.id, detail=how
    )
    return token, claims


async def second_step(request: web.Request, user: User) -> Stage:
    async with request.app[DATABASE].session() as session:
        return await mfa.stage_of(session, user)


def session_body(
    request: web.Request, user: User, token: str, claims: SessionClaims
) -> dict[str, Any]:
    return {
        "token": token,
        "token_type": "Bearer",
        "expires_at": datetime.fromtimestamp(claims.expires_at, UTC).isoformat(),
        "csrf_token": csrf_token_for(request.app[SETTINGS], claims.jti),
        "user": UserPublic.model_validate(user, from_attributes=True).model_dump(mode="json"),
    }


def public_user(user: User, mfa_enabled: bool = False) -> UserPublic:
    public = UserPublic.model_validate(user, from_attributes=True)
    return public.model_copy(update={"mfa_enabled": mfa_enabled})


def _login_context(request: web.Request, **values: object) -> dict[str, object]:
    context: dict[str, object] = {
        "max_failures": request.app[SETTINGS].login_max_failures,
        "next": "",
        "signed_out": False,
        "email": "",
        "error": None,
        "clinics": [],
    }
    context.update(values)
    return context


async def _sign_out(request: web.Request, staff: Staff) -> None:
    settings = request.app[SETTINGS]
    await request.app[DENYLIST].revoke(staff.claims.jti, session_expiry(staff.claims, settings))
    await record(
        request,
        staff_actor(request, staff),
        "auth.logout",
        object_type="staff_user",
        object_id=staff.id,
    )


@routes.get("/login", name="login")
async def login_page(request: web.Request) -> web.StreamResponse:
    staff = await optional_staff(request)
    if staff is not None:
        raise web.HTTPSeeOther(landing_for(staff.role))
    context = _login_context(
        request,
        next=request.query.get("next", ""),
        signed_out="signed_out" in request.query,
        error=pending.EXPIRED if "expired" in request.query else None,
    )
    return aiohttp_jinja2.render_template("accounts/login.html", request, context)


@routes.post("/login")
async def login_form(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    next_path = str(form.get("next", ""))
    email = str(form.get("email", ""))
    fields: dict[str, object] = {"email": email, "password": str(form.get("password", ""))}
    if form.get("clinic_id"):
        fields["clinic_id"] = str(form.get("clinic_id"))
    try:
        login = parse_model(LoginIn, fields)
        user = await check_password(request, login)
        stage = await second_step(request, user)
        if stage is Stage.NONE:
            token, claims = await issue_session(request, user)
    except DomainError as exc:
        context = _login_context(
            request,
            next=next_path,
            error=exc.message,
            email=email,
            clinics=exc.detail.get("clinics", []),
        )
        return aiohttp_jinja2.render_template(
            "accounts/login.html", request, context, status=exc.status
        )
    if stage is Stage.NONE:
        response = web.HTTPSeeOther(safe_next(next_path, user.role))
        set_session_cookie(response, request, token, claims)
    else:
        step = "/login/mfa" if stage is Stage.VERIFY else "/login/enrol"
        response = web.HTTPSeeOther(f"{step}?{urlencode({'next': next_path})}")
        pending.set_cookie(
            response, request.app[SETTINGS], pending.issue(request.app[SETTINGS], user, stage)
        )
    raise response


@routes.post("/logout")
async def logout_form(request: web.Request) -> web.StreamResponse:
    staff = await optional_staff(request)
    if staff is not None:
        await _sign_out(request, staff)
    response = web.HTTPSeeOther("/login?signed_out=1")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


@routes.post("/api/auth/login")
async def api_login(request: web.Request) -> web.Response:
    login = await read_json(request, LoginIn)
    user = await check_password(request, login)
    stage = await second_step(request, user)
    if stage is not Stage.NONE:
        # Not a session: only the second-factor step (`/api/auth/mfa…`) reads this token.
        return web.json_response(
            {"mfa": stage.value, "mfa_token": pending.issue(request.app[SETTINGS], user, stage)}
        )
    token, claims = await issue_session(request, user)
    response = web.json_response(session_body(request, user, token, claims))
    set_session_cookie(response, request, token, claims)
    return response


@routes.post("/api/auth/logout")
async def api_logout(request: web.Request) -> web.Response:
    staff = await authorize(request)
    await _sign_out(request, staff)
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    staff = await authorize(request)
    async with request.app[DATABASE].session() as session:
        clinic = await service.get_clinic(session, staff.clinic_id)
    return web.json_response(
        {
            "user": UserPublic.model_validate(staff.user, from_attributes=True).model_dump(
                mode="json"
            ),
            "clinic": ClinicPublic.model_validate(clinic, from_attributes=True).model_dump(
                mode="json"
            ),
            "csrf_token": csrf_token(request, staff),
            "session_expires_at": datetime.fromtimestamp(staff.claims.expires_at, UTC).isoformat(),
        }
    )


@routes.patch("/api/clinic")
async def update_clinic(request: web.Request) -> web.Response:
    """An admin sets the clinic's phone number, shown on every patient page."""
    staff = await authorize(request, Role.ADMIN)
    clinic_in = await read_json(request, ClinicUpdate)
    async with request.app[DATABASE].session() as session:
        clinic = await service.get_clinic(session, staff.clinic_id)
        clinic = await service.set_clinic_phone(session, clinic, clinic_in.phone)
    await record(
        request,
        staff_actor(request, staff),
        "clinic.update",
        object_type="clinic",
        object_id=clinic.id,
        detail="phone",
    )
    return model_response(ClinicPublic.model_validate(clinic, from_attributes=True))


@routes.get("/api/users")
async def list_users(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.ADMIN, Role.SCHEDULER)
    async with request.app[DATABASE].session() as session:
        users = await service.list_clinic_users(session, clinic_id=staff.clinic_id)
        with_mfa = await mfa.enrolled_user_ids(session, [u.id for u in users])
    return model_response([public_user(u, u.id in with_mfa) for u in users])


@routes.post("/api/users")
async def create_user(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.ADMIN)
    user_in = await read_json(request, UserCreate)
    async with request.app[DATABASE].session() as session:
        user = await service.create_user(session, clinic_id=staff.clinic_id, user_in=user_in)
    await record(
        request,
        staff_actor(request, staff),
        "user.create",
        object_type="staff_user",
        object_id=user.id,
    )
    return model_response(UserPublic.model_validate(user, from_attributes=True), status=201)


async def clinic_user(request: web.Request, staff: Staff) -> User:
    user_id = path_uuid(request, "user_id")
    try:
        async with request.app[DATABASE].session() as session:
            return await service.get_clinic_user(
                session, clinic_id=staff.clinic_id, user_id=user_id
            )
    except NotFound as exc:
        actor = staff_actor(request, staff)
        raise await refused(
            request, actor, exc, "user.read", object_type="staff_user", object_id=user_id
        ) from None


@routes.get("/api/users/{user_id}")
async def get_user(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.ADMIN, Role.SCHEDULER)
    user = await clinic_user(request, staff)
    async with request.app[DATABASE].session() as session:
        enrolled = await mfa.enrolled(session, user.id) is not None
    return model_response(public_user(user, enrolled))


@routes.post("/api/users/{user_id}/unlock")
async def unlock_user(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.ADMIN)
    user = await clinic_user(request, staff)
    async with request.app[DATABASE].session() as session:
        user = await service.unlock_user(session, user=user)
    await record(
        request,
        staff_actor(request, staff),
        "user.unlock",
        object_type="staff_user",
        object_id=user.id,
    )
    return model_response(UserPublic.model_validate(user, from_attributes=True))

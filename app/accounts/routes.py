"""Sign-in and sign-out (pages and JSON), the signed-in user, and the users of a clinic."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import aiohttp_jinja2
from aiohttp import web

from app.accounts import service
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


async def _sign_in(request: web.Request, login: LoginIn) -> tuple[User, str, SessionClaims]:
    """Check credentials, audit the outcome, and issue a session token."""
    db = request.app[DATABASE]
    settings = request.app[SETTINGS]
    try:
        async with db.session() as session:
            user = await service.authenticate(
                session,
                settings=settings,
                limiter=request.app[RATE_LIMITER],
                email=str(login.email),
                password=login.password,
                client_addr=client_addr(request),
            )
    except DomainError as exc:
        await record(
            request,
            anonymous_actor(request),
            "auth.login",
            outcome=audit.FAILURE,
            object_type="staff_user",
            detail=f"{exc.code}: {service.normalize_email(str(login.email))}",
        )
        raise
    token, claims = issue_session_token(
        settings, user_id=user.id, clinic_id=user.clinic_id, role=user.role
    )
    signed_in = Actor("staff", user.id, user.role.value, user.clinic_id, client_addr(request))
    await record(request, signed_in, "auth.login", object_type="staff_user", object_id=user.id)
    return user, token, claims


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
    context = {
        "next": request.query.get("next", ""),
        "signed_out": "signed_out" in request.query,
        "email": "",
    }
    return aiohttp_jinja2.render_template("accounts/login.html", request, context)


@routes.post("/login")
async def login_form(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    next_path = str(form.get("next", ""))
    email = str(form.get("email", ""))
    try:
        login = parse_model(LoginIn, {"email": email, "password": str(form.get("password", ""))})
        user, token, claims = await _sign_in(request, login)
    except DomainError as exc:
        context = {"next": next_path, "error": exc.message, "email": email, "signed_out": False}
        return aiohttp_jinja2.render_template(
            "accounts/login.html", request, context, status=exc.status
        )
    response = web.HTTPSeeOther(safe_next(next_path, user.role))
    set_session_cookie(response, request, token, claims)
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
    user, token, claims = await _sign_in(request, login)
    response = web.json_response(
        {
            "token": token,
            "token_type": "Bearer",
            "expires_at": datetime.fromtimestamp(claims.expires_at, UTC).isoformat(),
            "csrf_token": csrf_token_for(request.app[SETTINGS], claims.jti),
            "user": UserPublic.model_validate(user, from_attributes=True).model_dump(mode="json"),
        }
    )
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
    return model_response([UserPublic.model_validate(u, from_attributes=True) for u in users])


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


async def _clinic_user(request: web.Request, staff: Staff) -> User:
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
    user = await _clinic_user(request, staff)
    return model_response(UserPublic.model_validate(user, from_attributes=True))


@routes.post("/api/users/{user_id}/unlock")
async def unlock_user(request: web.Request) -> web.Response:
    staff = await authorize(request, Role.ADMIN)
    user = await _clinic_user(request, staff)
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

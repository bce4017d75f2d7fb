"""Who is asking: staff, patient and guest sessions, role checks, and the one Actor type.

Staff sign in (cookie or Bearer token). Patients and guests never do: a confirmed join link or a
named guest link gives them a session cookie, which signaling issues (it needs the appointment)
and every domain reads here.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Literal

from aiohttp import web

from app.core import audit, tokens
from app.core.auth import SessionClaims, decode_session_token, session_is_current
from app.core.config import Settings
from app.core.errors import DomainError, Forbidden, NotAuthenticated
from app.core.models import Role, User
from app.web.access_log import request_path
from app.web.keys import DATABASE, DENYLIST, SETTINGS

SESSION_COOKIE = "oc_session"
PATIENT_COOKIE = "oc_patient"
GUEST_COOKIE = "oc_guest"
PATIENT_AUDIENCE = "openconsult:patient"
GUEST_SESSION_AUDIENCE = "openconsult:guest"


@dataclass(frozen=True)
class Staff:
    """A signed-in staff member, as the request sees them."""

    user: User
    claims: SessionClaims
    via_cookie: bool

    @property
    def id(self) -> uuid.UUID:
        return self.user.id

    @property
    def clinic_id(self) -> uuid.UUID:
        return self.user.clinic_id

    @property
    def role(self) -> Role:
        return self.user.role


ActorKind = Literal["staff", "patient", "guest", "anonymous"]

_STAFF: web.RequestKey[Staff | None] = web.RequestKey("staff")
_STAFF_ERROR: web.RequestKey[NotAuthenticated] = web.RequestKey("staff_error")


def client_addr(request: web.Request) -> str | None:
    """The client's address; behind trusted proxies, the last hop they did not add."""
    proxies = request.app[SETTINGS].trusted_proxies
    remote = request.remote
    if not proxies or not _is_trusted(remote, proxies):
        return remote
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, proxies):
            return hop
    return hops[0] if hops else remote


def _is_trusted(address: str | None, proxies: list[IPv4Network | IPv6Network]) -> bool:
    try:
        ip = ip_address(address or "")
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def actor_of(request: web.Request, staff: Staff | None = None) -> audit.Actor:
    staff = staff or request.get(_STAFF)
    if staff is None:
        return audit.Actor(id=None, role=None, clinic_id=None, client_addr=client_addr(request))
    return audit.Actor(
        id=str(staff.id),
        role=staff.role.value,
        clinic_id=str(staff.clinic_id),
        client_addr=client_addr(request),
    )


def _presented_token(request: web.Request) -> tuple[str | None, bool]:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), False
    return request.cookies.get(SESSION_COOKIE), True


async def _load_staff(request: web.Request) -> Staff:
    token, via_cookie = _presented_token(request)
    if not token:
        raise NotAuthenticated("Please sign in.")
    settings = request.app[SETTINGS]
    claims = decode_session_token(settings, token)
    if await request.app[DENYLIST].is_revoked(claims.jti):
        raise NotAuthenticated("This session was signed out; please sign in again.")
    async with request.app[DATABASE].session() as session:
        user = await session.get(User, claims.user_id)
    if user is None or not user.is_active or user.clinic_id != claims.clinic_id:
        raise NotAuthenticated("This account can no longer sign in.")
    if not session_is_current(claims, user.session_epoch):
        raise NotAuthenticated("This session was ended; please sign in again.")
    return Staff(user=user, claims=claims, via_cookie=via_cookie)


async def optional_staff(request: web.Request) -> Staff | None:
    """The signed-in staff member, or None; the answer is kept for the rest of the request."""
    if _STAFF not in request:
        try:
            request[_STAFF] = await _load_staff(request)
        except NotAuthenticated as exc:
            request[_STAFF] = None
            request[_STAFF_ERROR] = exc
    staff: Staff | None = request[_STAFF]
    return staff


async def refuse(request: web.Request, error: DomainError, *, action: str) -> DomainError:
    """Audit a refusal and hand the error back for raising."""
    await audit.record(
        request.app[DATABASE],
        action=action,
        outcome=audit.DENIED,
        actor=actor_of(request),
        detail=f"{request.method} {request_path(request)}: {error.code}",
    )
    return error


async def authorize(request: web.Request, *roles: Role) -> Staff:
    """The signed-in staff member if their role is one of `roles` (any role when none given)."""
    staff = await optional_staff(request)
    if staff is None:
        error = request.get(_STAFF_ERROR) or NotAuthenticated("Please sign in.")
        raise await refuse(request, error, action="auth.refused")
    if roles and staff.role not in roles:
        raise await refuse(
            request,
            Forbidden("Your role does not allow this."),
            action="auth.refused",
        )
    return staff


def set_session_cookie(
    response: web.StreamResponse, request: web.Request, token: str, claims: SessionClaims
) -> None:
    """The staff session cookie, kept by the browser exactly as long as its token is valid
    (the idle lifetime; each renewal sends a new cookie with the new token)."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        secure=request.app[SETTINGS].secure_cookies,
        path="/",
        max_age=max(0, claims.expires_at - int(time.time())),
    )


@dataclass(frozen=True)
class PatientClaims:
    """A patient's session: their identity confirmed for one appointment, at one version of it."""

    appointment_id: uuid.UUID
    version: int


@dataclass(frozen=True)
class GuestClaims:
    """A guest's link or session: one guest of one visit."""

    guest_id: uuid.UUID
    visit_id: uuid.UUID


def read_patient_token(settings: Settings, token: str | None) -> PatientClaims | None:
    return tokens.verify(
        settings.secret,
        token,
        audience=PATIENT_AUDIENCE,
        required=("sub", "ver", "exp"),
        build=lambda c: PatientClaims(uuid.UUID(str(c["sub"])), int(c["ver"])),
    )


def read_guest_token(settings: Settings, token: str | None, *, audience: str) -> GuestClaims | None:
    """The guest a token of `audience` names (a session, or the link that leads to one)."""
    return tokens.verify(
        settings.secret,
        token,
        audience=audience,
        required=("sub", "vis", "exp"),
        build=lambda c: GuestClaims(uuid.UUID(str(c["sub"])), uuid.UUID(str(c["vis"]))),
    )


def read_guest_session(settings: Settings, token: str | None) -> GuestClaims | None:
    return read_guest_token(settings, token, audience=GUEST_SESSION_AUDIENCE)


def patient_session(request: web.Request) -> PatientClaims | None:
    """The patient session this request carries, if any."""
    return read_patient_token(request.app[SETTINGS], request.cookies.get(PATIENT_COOKIE))


def guest_session(request: web.Request) -> GuestClaims | None:
    """The guest session this request carries, if any."""
    return read_guest_session(request.app[SETTINGS], request.cookies.get(GUEST_COOKIE))


def set_visitor_cookie(
    response: web.StreamResponse, settings: Settings, cookie: str, token: str
) -> None:
    """A patient's or guest's session cookie (PATIENT_COOKIE or GUEST_COOKIE): one day, strict."""
    response.set_cookie(
        cookie,
        token,
        httponly=True,
        samesite="Strict",
        secure=settings.secure_cookies,
        path="/",
        max_age=24 * 3600,
    )


@dataclass(frozen=True)
class Actor:
    """Whoever is acting, whichever way they came in: one type for every domain.

    Staff sign in; a patient is known by a confirmed join link; a guest by a guest link; an
    anonymous actor is known by address only. Services check ownership against this.
    """

    kind: ActorKind
    id: uuid.UUID | None
    role: str | None
    clinic_id: uuid.UUID | None
    client_addr: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    def has_role(self, *roles: Role) -> bool:
        return self.is_staff and self.role in {r.value for r in roles}

    def for_audit(self) -> audit.Actor:
        """The actor as the audit trail records it."""
        return audit.Actor(
            id=None if self.id is None else str(self.id),
            role=self.role,
            clinic_id=None if self.clinic_id is None else str(self.clinic_id),
            client_addr=self.client_addr,
        )


def staff_actor(request: web.Request, staff: Staff) -> Actor:
    return Actor("staff", staff.id, staff.role.value, staff.clinic_id, client_addr(request))


def patient_actor(request: web.Request, patient_id: uuid.UUID, clinic_id: uuid.UUID) -> Actor:
    return Actor("patient", patient_id, "patient", clinic_id, client_addr(request))


def guest_actor(request: web.Request, guest_id: uuid.UUID, clinic_id: uuid.UUID) -> Actor:
    return Actor("guest", guest_id, "guest", clinic_id, client_addr(request))


def anonymous_actor(request: web.Request) -> Actor:
    return Actor("anonymous", None, None, None, client_addr(request))

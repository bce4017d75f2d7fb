"""Who is asking: staff sessions from cookie or Bearer token, CSRF, and role checks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address
from urllib.parse import urlsplit

from aiohttp import web

from app.core import audit
from app.core.auth import SessionClaims, csrf_token_for, csrf_token_matches, decode_session_token
from app.core.errors import CsrfFailed, DomainError, Forbidden, NotAuthenticated
from app.core.models import Role, User
from app.keys import DATABASE, DENYLIST, SETTINGS

SESSION_COOKIE = "oc_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Signing in starts a session, so there is no session token to check; the Origin check applies.
CSRF_EXEMPT_PATHS = frozenset({"/login", "/api/auth/login"})


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
        detail=f"{request.method} {request.path}: {error.code}",
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


def csrf_token(request: web.Request, staff: Staff) -> str:
    return csrf_token_for(request.app[SETTINGS], staff.claims.jti)


def _same_origin(request: web.Request) -> bool:
    """Browsers say where a request comes from in Sec-Fetch-Site, which no page script can set.

    Under `Referrer-Policy: no-referrer` Chromium sends `Origin: null` even for same-origin
    form posts, so a null Origin counts only with Sec-Fetch-Site: same-origin. Clients that
    send neither header (API clients, curl) are not browsers riding on a cookie.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin != "null" and urlsplit(origin).netloc == request.host


async def check_csrf(request: web.Request) -> None:
    """Unsafe requests riding on the session cookie must carry the session's CSRF token."""
    if request.method not in UNSAFE_METHODS:
        return
    if not _same_origin(request):
        raise await refuse(
            request, CsrfFailed("Cross-site request refused."), action="auth.csrf_refused"
        )
    if request.path in CSRF_EXEMPT_PATHS:
        return
    staff = await optional_staff(request)
    if staff is None or not staff.via_cookie:
        return
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.content_type == "application/x-www-form-urlencoded":
        presented = str((await request.post()).get(CSRF_FIELD, "")) or None
    if not csrf_token_matches(request.app[SETTINGS], staff.claims.jti, presented):
        raise await refuse(
            request,
            CsrfFailed("Missing or wrong CSRF token; reload the page and try again."),
            action="auth.csrf_refused",
        )


def set_session_cookie(response: web.StreamResponse, request: web.Request, token: str) -> None:
    settings = request.app[SETTINGS]
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        secure=settings.secure_cookies,
        path="/",
        max_age=settings.session_max_hours * 3600,
    )

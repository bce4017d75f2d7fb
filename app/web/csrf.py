"""Cross-site request forgery: same-origin checks and the session's CSRF token."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from app.core.auth import csrf_token_for, csrf_token_matches
from app.core.errors import CsrfFailed
from app.web.identity import Staff, optional_staff, refuse
from app.web.keys import SETTINGS

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Signing in starts a session, so there is no session token to check; the Origin check applies.
# The second-factor steps of signing in belong to it (their state is a SameSite=Strict cookie).
CSRF_EXEMPT_PATHS = frozenset(
    {"/login", "/api/auth/login", "/login/mfa", "/login/enrol", "/api/auth/mfa"}
)


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

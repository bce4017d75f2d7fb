"""Errors become JSON or an error page in one place; every response gets the security headers."""

from __future__ import annotations

import logging
import time

import aiohttp_jinja2
from aiohttp import web, web_response
from aiohttp.typedefs import Handler

from app.core.auth import issue_session_token
from app.core.errors import DomainError, NotAuthenticated, TooManyRequests
from app.web.access_log import request_path
from app.web.csrf import check_csrf
from app.web.identity import SESSION_COOKIE, optional_staff, set_session_cookie
from app.web.keys import SETTINGS

log = logging.getLogger(__name__)

JSON_PREFIXES = ("/api/", "/fhir/")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob: mediastream:; connect-src 'self'; font-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": (
        "camera=(self), microphone=(self), display-capture=(self), geolocation=(), "
        "payment=(), usb=(), interest-cohort=()"
    ),
    "Cross-Origin-Opener-Policy": "same-origin",
}

SERVER_NAME = "OpenConsult"
HSTS = "max-age=31536000; includeSubDomains"

_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}

_HTTP_MESSAGES = {
    404: "There is nothing at this address.",
    405: "This address does not accept that method.",
    413: "The request body is too large.",
}


def wants_json(request: web.Request) -> bool:
    return request.path.startswith(JSON_PREFIXES) or request.path == "/api"


def error_response(
    request: web.Request,
    *,
    status: int,
    code: str,
    message: str,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    detail: dict[str, object] | None = None,
) -> web.StreamResponse:
    if wants_json(request):
        body: dict[str, object] = {"code": code, "message": message}
        if fields:
            body["fields"] = fields
        if detail:
            body["detail"] = detail
        return web.json_response({"error": body}, status=status, headers=headers)
    if status == 401:
        raise web.HTTPSeeOther(
            f"/login?next={request.path_qs}" if request.method == "GET" else "/login"
        )
    response = aiohttp_jinja2.render_template(
        "error.html",
        request,
        {"status": status, "code": code, "message": message, "fields": fields or {}},
        status=status,
    )
    if headers:
        response.headers.update(headers)
    return response


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        headers = {}
        if isinstance(exc, TooManyRequests):
            headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, NotAuthenticated) and wants_json(request):
            headers["WWW-Authenticate"] = 'Bearer realm="openconsult"'
        return error_response(
            request,
            status=exc.status,
            code=exc.code,
            message=exc.message,
            fields=exc.fields,
            headers=headers,
            detail=exc.detail,
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = _HTTP_MESSAGES.get(exc.status) or exc.reason
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(
            request,
            status=exc.status,
            code=_HTTP_CODES.get(exc.status, "http_error"),
            message=message,
            headers=allow,
        )
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request_path(request))
        return error_response(
            request,
            status=500,
            code="internal_error",
            message="Something went wrong on our side; it has been logged.",
        )


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CSRF before the handler; afterwards slide a cookie session's idle lifetime forward."""
    await check_csrf(request)
    response = await handler(request)
    staff = await optional_staff(request) if SESSION_COOKIE in request.cookies else None
    if staff is not None and staff.via_cookie and not response.prepared:
        settings = request.app[SETTINGS]
        remaining = staff.claims.expires_at - time.time()
        if remaining < settings.session_idle_minutes * 60 / 2:
            token, claims = issue_session_token(
                settings,
                user_id=staff.id,
                clinic_id=staff.clinic_id,
                role=staff.role,
                jti=staff.claims.jti,
                auth_time=staff.claims.auth_time,
                epoch=staff.claims.epoch,
            )
            set_session_cookie(response, request, token, claims)
    return response


def name_the_server() -> None:
    """Answers aiohttp writes itself carry our name too, not its version and Python's.

    A request aiohttp cannot parse (a garbage request line, a broken header) is answered 400 by
    its protocol handler before any middleware or `on_response_prepare` runs, with the default
    `Server` of `aiohttp.web_response`, a module constant read at each response and offering no
    setting. Setting it is the one line that covers those answers (tests/test_server_banner.py
    sends them over a raw socket, so a change in aiohttp shows there).
    """
    setattr(web_response, "SERVER_SOFTWARE", SERVER_NAME)  # noqa: B010 (not exported: typed so)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    # aiohttp would name itself and Python with their versions, a map for whoever looks for a
    # known flaw; the header is set here so that aiohttp leaves it alone.
    response.headers["Server"] = SERVER_NAME
    if request.app[SETTINGS].env == "production":
        # Production is served over HTTPS (secure cookies): browsers keep to it from then on.
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    if not request.path.startswith("/static/"):
        # Pages and answers may carry health data: no browser or proxy keeps a copy.
        response.headers.setdefault("Cache-Control", "no-store")

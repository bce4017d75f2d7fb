"""Who is connecting: Socket.IO connections authenticate like HTTP requests do."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from socketio.exceptions import ConnectionRefusedError as Refused

from app.core.models import Role
from app.web.identity import Staff, optional_staff


def refused(code: str, message: str, **extra: Any) -> Refused:
    """A connection refusal whose code and message (and `extra` fields) reach the browser
    (`connect_error` data)."""
    return Refused(message, {"code": code, "message": message, **extra})


def request_of(environ: dict[str, Any]) -> web.Request:
    """The aiohttp request that opened the Socket.IO connection."""
    request: web.Request = environ["aiohttp.request"]
    return request


async def staff_from_environ(environ: dict[str, Any], *roles: Role) -> Staff:
    """The signed-in staff member (session cookie or Bearer header); refuse the connection else."""
    staff = await optional_staff(request_of(environ))
    if staff is None:
        raise refused("not_authenticated", "Please sign in.")
    if roles and staff.role not in roles:
        raise refused("forbidden", "Your role does not allow this.")
    return staff

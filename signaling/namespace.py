"""A Socket.IO namespace base that validates, rate-limits and never crashes on bad input."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import socketio
from aiohttp import web

from app.core.auth import SessionClaims, epoch_key
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import DomainError
from app.web.keys import DATABASE, DENYLIST, SETTINGS
from signaling.auth import request_of

log = logging.getLogger(__name__)

LIFECYCLE_EVENTS = frozenset({"connect", "disconnect"})
LOG_LIMITED_EVERY = 60.0  # seconds between two "rate limited" log lines of one socket


def error_ack(
    code: str,
    message: str,
    fields: dict[str, str] | None = None,
    detail: dict[str, object] | None = None,
) -> dict[str, Any]:
    """What an event handler answers when it refuses: the HTTP API's error shape (with the
    error's machine-readable detail, e.g. where a visit runs)."""
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    if detail:
        body.update(detail)
    return {"error": body}


@dataclass
class TokenBucket:
    """`rate` events a second on average, bursts up to `burst`."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    updated: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass(frozen=True)
class StaffSocket:
    """The staff session a socket was opened with: it ends the socket when the session ends.

    It never outlives the session's absolute lifetime, nor its sign-out or the end of its user's
    session epoch (on any process). Idle
    time is not counted here: a provider who talks and writes the note over HTTP for longer than
    the idle limit keeps the session alive, and must not lose the visit's socket for it.
    """

    jti: str
    ends_at: float
    # The user's session epoch the session began in: a password change, an MFA reset or the
    # clinic requiring MFA ends it (published through the deny-list on every process).
    user_id: uuid.UUID
    epoch: int

    @property
    def expired(self) -> bool:
        return time.time() >= self.ends_at


class GuardedNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """Handlers named `on_<event>` get here only for known events, within the client's rate.

    Unknown events, malformed payloads (DomainError from `app.web.api.parse_model`) and crashes are
    answered with an error acknowledgement and logged; the namespace keeps serving everyone.
    A socket opened with a staff session (`remember_session`) is refused and closed at its next
    event once that session is signed out, ended with its epoch, or expired.
    """

    events_per_second: float = 10.0
    burst: float = 20.0

    def __init__(self, namespace: str, app: web.Application) -> None:
        super().__init__(namespace)
        self.app = app
        # Per connection, kept in this process (a socket lives in one process).
        self._buckets: dict[str, TokenBucket] = {}
        self._limited: dict[str, float] = {}  # when each socket's refusal was last logged
        self._sessions: dict[str, StaffSocket] = {}
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def settings(self) -> Settings:
        return self.app[SETTINGS]

    @property
    def db(self) -> Database:
        return self.app[DATABASE]

    def request(self, sid: str) -> web.Request:
        """The HTTP request that opened this connection (its cookies, its app)."""
        return request_of(self.server.get_environ(sid, self.namespace))

    def remember_session(self, sid: str, claims: SessionClaims) -> None:
        """Tie the connection to the staff session that opened it (call from `on_connect`)."""
        self._sessions[sid] = StaffSocket(
            jti=claims.jti,
            ends_at=claims.auth_time + self.settings.session_max_hours * 3600,
            user_id=claims.user_id,
            epoch=claims.epoch,
        )

    async def _session_ended(self, sid: str) -> bool:
        """Whether the connection's staff session is over (signed out, ended with its epoch, or
        past its lifetime): one deny-list lookup per event."""
        staff = self._sessions.get(sid)
        if staff is None:
            return False
        return staff.expired or await self.app[DENYLIST].any_revoked(
            [staff.jti, epoch_key(staff.user_id, staff.epoch)]
        )

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in LIFECYCLE_EVENTS:
            if event == "disconnect" and args:
                self._buckets.pop(args[0], None)
                self._limited.pop(args[0], None)
                self._sessions.pop(args[0], None)
            return await super().trigger_event(event, *args)
        sid = args[0] if args else "?"
        bucket = self._buckets.setdefault(sid, TokenBucket(self.events_per_second, self.burst))
        if not bucket.take():
            # Logged once a minute per socket, not once per refused event: a flood must not
            # flood the log too.
            now = time.monotonic()
            if now - self._limited.get(sid, -LOG_LIMITED_EVERY) >= LOG_LIMITED_EVERY:
                self._limited[sid] = now
                log.warning("rate limited %s on %s: %s", sid, self.namespace, event)
            return error_ack("rate_limited", "Too many messages; slow down.")
        if not callable(getattr(self, f"on_{event}", None)):
            log.warning("unknown event %r from %s on %s", event, sid, self.namespace)
            return error_ack("unknown_event", f"Unknown event {event!r}.")
        if await self._session_ended(sid):
            # The acknowledgement is queued before this task yields; the disconnect follows it.
            closing = asyncio.create_task(self.disconnect(sid))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
            return error_ack("not_authenticated", "This session has ended; please sign in again.")
        try:
            return await super().trigger_event(event, *args)
        except DomainError as exc:
            return error_ack(exc.code, exc.message, exc.fields, exc.detail)
        except TypeError:
            log.warning("wrong arguments for %r from %s on %s", event, sid, self.namespace)
            return error_ack("invalid_payload", "This event takes one JSON object.")
        except Exception:
            log.exception("event %r from %s on %s failed", event, sid, self.namespace)
            return error_ack("internal_error", "Something went wrong on our side.")

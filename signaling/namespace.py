"""A Socket.IO namespace base that validates, rate-limits and never crashes on bad input."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import socketio
from aiohttp import web

from app.core.config import Settings
from app.core.db import Database
from app.core.errors import DomainError
from app.web.keys import DATABASE, SETTINGS
from signaling.auth import request_of

log = logging.getLogger(__name__)

LIFECYCLE_EVENTS = frozenset({"connect", "disconnect"})


def error_ack(code: str, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    """What an event handler answers when it refuses: the HTTP API's error shape."""
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
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


class GuardedNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """Handlers named `on_<event>` get here only for known events, within the client's rate.

    Unknown events, malformed payloads (DomainError from `app.web.api.parse_model`) and crashes are
    answered with an error acknowledgement and logged; the namespace keeps serving everyone.
    """

    events_per_second: float = 10.0
    burst: float = 20.0

    def __init__(self, namespace: str, app: web.Application) -> None:
        super().__init__(namespace)
        self.app = app
        # Per connection, kept in this process (a socket lives in one process).
        self._buckets: dict[str, TokenBucket] = {}

    @property
    def settings(self) -> Settings:
        return self.app[SETTINGS]

    @property
    def db(self) -> Database:
        return self.app[DATABASE]

    def request(self, sid: str) -> web.Request:
        """The HTTP request that opened this connection (its cookies, its app)."""
        return request_of(self.server.get_environ(sid, self.namespace))

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in LIFECYCLE_EVENTS:
            if event == "disconnect" and args:
                self._buckets.pop(args[0], None)
            return await super().trigger_event(event, *args)
        sid = args[0] if args else "?"
        bucket = self._buckets.setdefault(sid, TokenBucket(self.events_per_second, self.burst))
        if not bucket.take():
            log.warning("rate limited %s on %s: %s", sid, self.namespace, event)
            return error_ack("rate_limited", "Too many messages; slow down.")
        if not callable(getattr(self, f"on_{event}", None)):
            log.warning("unknown event %r from %s on %s", event, sid, self.namespace)
            return error_ack("unknown_event", f"Unknown event {event!r}.")
        try:
            return await super().trigger_event(event, *args)
        except DomainError as exc:
            return error_ack(exc.code, exc.message, exc.fields)
        except TypeError:
            log.warning("wrong arguments for %r from %s on %s", event, sid, self.namespace)
            return error_ack("invalid_payload", "This event takes one JSON object.")
        except Exception:
            log.exception("event %r from %s on %s failed", event, sid, self.namespace)
            return error_ack("internal_error", "Something went wrong on our side.")

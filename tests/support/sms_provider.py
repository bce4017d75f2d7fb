"""A stand-in for a Twilio-compatible SMS provider on loopback: it records every request,
answers with scripted statuses on demand (500, 429, 400…), and honours the idempotency header
as Twilio does (a repeat of an accepted message's token gets that message back, not a new text).

`delivered` are the texts the stand-in accepted (what the patient's phone would show);
`requests` are all requests it saw, repeats and refusals included.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from dataclasses import dataclass, field

from aiohttp import web

ACCOUNT = "ACtest0000000000000000000000000000"
TOKEN = "stand-in-token-3f9a1c"
SENDER = "+15005550006"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"


@dataclass
class Seen:
    path: str
    auth: tuple[str, str] | None
    key: str | None
    form: dict[str, str]


@dataclass
class SmsProvider:
    """Script it with `answer(status, ...)` (used in order, then 201) or `hang_next()`."""

    requests: list[Seen] = field(default_factory=list)
    delivered: list[dict[str, str]] = field(default_factory=list)
    scripted: list[tuple[int, dict[str, object]]] = field(default_factory=list)
    hang: int = 0
    by_key: dict[str, str] = field(default_factory=dict)
    sids: itertools.count = field(default_factory=lambda: itertools.count(1))
    url: str = ""
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def answer(self, status: int, body: dict[str, object] | None = None) -> None:
        self.scripted.append((status, body or {"code": 20500, "message": "Internal error"}))

    def hang_next(self) -> None:
        """Accept the next text, then answer only after `release()` (the sender crashes
        waiting)."""
        self.hang += 1

    def release(self) -> None:
        self.released.set()

    def texts_to(self, number: str) -> list[dict[str, str]]:
        return [d for d in self.delivered if d["To"] == number]

    async def handle(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        auth = None
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            auth = (user, password)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        self.requests.append(Seen(request.path, auth, key, form))
        if auth != (request.match_info["account"], TOKEN):
            return web.json_response({"code": 20003, "message": "Authenticate"}, status=401)
        if self.scripted:
            status, body = self.scripted.pop(0)
            if status >= 300:
                return web.json_response(body, status=status)
        if key is not None and key in self.by_key:  # a repeat: the same message, no new text
            return web.json_response({"sid": self.by_key[key], "status": "queued"}, status=201)
        sid = f"SM{next(self.sids):032d}"
        if key is not None:
            self.by_key[key] = sid
        self.delivered.append(form | {"sid": sid})
        if self.hang:
            self.hang -= 1
            await self.released.wait()
        return web.json_response({"sid": sid, "status": "queued", **form}, status=201)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", self.handle)
        return app

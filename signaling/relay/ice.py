"""ICE servers: the relay's own list, and what browsers get, with short-lived TURN credentials.

TURN credentials follow the TURN REST scheme coturn implements with `use-auth-secret`:
username = "<unix expiry>:<id>", credential = base64(HMAC-SHA1(secret, username)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import TypedDict

from aiortc import RTCIceServer

from app.core.config import Settings


class BrowserIceServer(TypedDict, total=False):
    """One entry of `RTCConfiguration.iceServers` as a browser takes it."""

    urls: list[str]
    username: str
    credential: str


def turn_credentials(secret: str, user_id: str, *, ttl_seconds: int, now: float) -> tuple[str, str]:
    """A TURN username and password valid for `ttl_seconds` from `now`."""
    if ":" in user_id:
        raise ValueError("a TURN user id must not contain ':'")
    username = f"{int(now) + ttl_seconds}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def browser_ice_servers(
    settings: Settings, user_id: str, *, now: float | None = None
) -> list[BrowserIceServer]:
    """The ICE servers for one participant's browser; TURN entries carry fresh credentials."""
    servers: list[BrowserIceServer] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    if settings.turn_urls and settings.turn_secret is not None:
        username, credential = turn_credentials(
            settings.turn_secret.get_secret_value(),
            user_id,
            ttl_seconds=settings.turn_ttl_seconds,
            now=time.time() if now is None else now,
        )
        servers.append(
            {"urls": list(settings.turn_urls), "username": username, "credential": credential}
        )
    return servers


def relay_ice_servers(settings: Settings) -> list[RTCIceServer]:
    """The relay's own ICE servers: always an explicit list (aiortc's default is public STUN)."""
    if not settings.stun_urls:
        return []
    return [RTCIceServer(urls=list(settings.stun_urls))]

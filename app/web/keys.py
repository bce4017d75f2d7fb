"""Typed keys for what the application object carries."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from app.core.auth import RateLimiter, SessionDenylist
from app.core.config import Settings
from app.core.db import Database

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
REDIS: web.AppKey[Redis | None] = web.AppKey("redis")
DENYLIST = web.AppKey("denylist", SessionDenylist)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
OpenApiFragment = tuple[dict[str, Any], dict[str, dict[str, Any]]]
OPENAPI_FRAGMENTS = web.AppKey("openapi_fragments", list[OpenApiFragment])

"""The data layer every domain uses: database, Redis, session deny list and rate limiter, and
the audit chain's published checkpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import Redis

from app.core import checkpoints
from app.core.auth import DatabaseDenylist, MemoryRateLimiter, RedisDenylist, RedisRateLimiter
from app.core.db import Database
from app.web.events import deliver_committed_events
from app.web.jobs import Job, run_periodically
from app.web.keys import DATABASE, DENYLIST, RATE_LIMITER, REDIS, SETTINGS

DENYLIST_PRUNE_SECONDS = 3600.0


def setup_data(app: web.Application) -> None:
    """Open the database (and Redis when configured) on startup; close them on cleanup."""
    app.cleanup_ctx.append(_data_layer)
    run_periodically(app, "denylist-prune", lambda app: DENYLIST_PRUNE_SECONDS, _prune_denylist)
    run_periodically(
        app,
        "audit-checkpoint",
        lambda app: app[SETTINGS].audit_checkpoint_seconds,
        _publish_checkpoints,
        first_run_now=True,
    )


async def _data_layer(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    db = Database.from_settings(settings)
    app[DATABASE] = db
    redis: Redis | None = None
    if settings.redis_url:
        redis = Redis.from_url(settings.redis_url)
        app[DENYLIST] = RedisDenylist(redis, settings.redis_key_prefix)
        app[RATE_LIMITER] = RedisRateLimiter(redis, settings.redis_key_prefix)
    else:
        app[DENYLIST] = DatabaseDenylist(db)
        app[RATE_LIMITER] = MemoryRateLimiter()
    app[REDIS] = redis
    deliver_committed_events(app)
    yield
    if redis is not None:
        await redis.aclose()
    await db.dispose()


def _prune_denylist(app: web.Application) -> Job | None:
    """Revocations in the database outlive their sessions; Redis expires its own."""
    denylist = app[DENYLIST]
    return denylist.prune if isinstance(denylist, DatabaseDenylist) else None


def _publish_checkpoints(app: web.Application) -> Job | None:
    """Publish the audit chain's head outside the database whenever it moved."""
    settings = app[SETTINGS]
    if not settings.background_tasks:
        return None
    db = app[DATABASE]
    last: list[int | None] = [None]

    async def publish() -> None:
        checkpoint = await checkpoints.publish(db, settings.checkpoint_path, unless_head=last[0])
        if checkpoint is not None:
            last[0] = checkpoint.event_id

    return publish

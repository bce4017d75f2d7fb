"""Presence: online, away for a grace period after a reload or network loss, then gone."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from redis.asyncio import Redis

from signaling.queue.presence import MemoryPresence, Presence, RedisPresence

# Redis-backed presence runs in the suite's Redis pass (REDIS_URL set), as the app does.
REDIS_URL = os.environ.get("REDIS_URL")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="REDIS_URL not set: embedded-mode run")


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
async def store(request):
    if request.param == "memory":
        yield MemoryPresence(grace_seconds=0.5)
        return
    redis = Redis.from_url(REDIS_URL)
    prefix = f"octest:{uuid.uuid4().hex}:"
    yield RedisPresence(redis, prefix, grace_seconds=0.5, beat_seconds=0.2)
    keys = [k async for k in redis.scan_iter(f"{prefix}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


async def test_online_away_then_gone(store):
    assert (await store.state("appt-1")).presence is Presence.UNKNOWN
    await store.connected("appt-1", "sid-a")
    assert (await store.state("appt-1")).presence is Presence.ONLINE
    await store.disconnected("appt-1", "sid-a")
    state = await store.state("appt-1")
    assert state.presence is Presence.AWAY and state.away_since is not None
    await asyncio.sleep(0.7)
    assert (await store.state("appt-1")).presence is Presence.GONE


async def test_a_reload_within_the_grace_period_is_seamless(store):
    await store.connected("appt-2", "old-tab")
    await store.disconnected("appt-2", "old-tab")
    await store.connected("appt-2", "reloaded-tab")
    await asyncio.sleep(0.7)
    await store.heartbeat("appt-2", "reloaded-tab")
    assert (await store.state("appt-2")).presence is Presence.ONLINE


async def test_two_tabs_stay_online_until_both_close(store):
    await store.connected("appt-3", "tab-1")
    await store.connected("appt-3", "tab-2")
    await store.disconnected("appt-3", "tab-1")
    assert (await store.state("appt-3")).presence is Presence.ONLINE
    await store.disconnected("appt-3", "tab-2")
    assert (await store.state("appt-3")).presence is Presence.AWAY


@needs_redis
async def test_connections_of_a_dead_process_go_away_in_redis():
    redis = Redis.from_url(REDIS_URL)
    prefix = f"octest:{uuid.uuid4().hex}:"
    store = RedisPresence(redis, prefix, grace_seconds=5, beat_seconds=0.1)
    try:
        await store.connected("appt-4", "sid-of-crashed-process")
        assert (await store.state("appt-4")).presence is Presence.ONLINE
        await asyncio.sleep(0.4)  # no heartbeat: the process is gone
        state = await store.state("appt-4")
        assert state.presence is Presence.AWAY
    finally:
        await redis.delete(f"{prefix}presence:appt-4:sids", f"{prefix}presence:appt-4:away")
        await redis.aclose()


async def test_a_whole_queue_is_read_at_once(store):
    """The staff queue reads every patient's presence together: the same answers as one by one."""
    await store.connected("appt-5", "sid-5")
    await store.connected("appt-6", "sid-6")
    await store.disconnected("appt-6", "sid-6")
    keys = ["appt-5", "appt-6", "appt-never-seen"]
    together = [s.presence for s in await store.states(keys)]
    assert together == [(await store.state(k)).presence for k in keys]
    assert together == [Presence.ONLINE, Presence.AWAY, Presence.UNKNOWN]
    assert await store.states([]) == []

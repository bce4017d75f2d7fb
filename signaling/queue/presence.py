"""Whether a waiting patient's browser is connected, and for how long it has been away.

In memory for one process; in Redis when several processes share the waiting rooms. A page
reload or a short network loss shows as "away" and keeps the patient's place for a grace period.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.asyncio import Redis


class Presence(enum.StrEnum):
    ONLINE = "online"
    AWAY = "away"  # disconnected less than the grace period ago: keeps their place
    GONE = "gone"  # away for longer than the grace period
    UNKNOWN = "unknown"  # never connected


@dataclass(frozen=True)
class PresenceState:
    presence: Presence
    away_since: float | None = None


class PresenceStore(Protocol):
    async def connected(self, key: str, sid: str) -> None: ...
    async def disconnected(self, key: str, sid: str) -> None: ...
    async def heartbeat(self, key: str, sid: str) -> None: ...
    async def state(self, key: str) -> PresenceState: ...
    async def states(self, keys: list[str]) -> list[PresenceState]:
        """The states of many keys at once (a queue of a thousand patients: one round trip)."""
        ...


def _classify(alive: bool, away_since: float | None, grace: float, now: float) -> PresenceState:
    if alive:
        return PresenceState(Presence.ONLINE)
    if away_since is None:
        return PresenceState(Presence.UNKNOWN)
    presence = Presence.AWAY if now - away_since <= grace else Presence.GONE
    return PresenceState(presence, away_since)


@dataclass
class MemoryPresence:
    """One process: connections are known exactly, no heartbeat needed."""

    grace_seconds: float
    _sids: dict[str, set[str]] = field(default_factory=dict)
    _away_since: dict[str, float] = field(default_factory=dict)

    async def connected(self, key: str, sid: str) -> None:
        self._sids.setdefault(key, set()).add(sid)
        self._away_since.pop(key, None)

    async def disconnected(self, key: str, sid: str) -> None:
        sids = self._sids.get(key, set())
        sids.discard(sid)
        if not sids:
            self._sids.pop(key, None)
            self._away_since[key] = time.time()

    async def heartbeat(self, key: str, sid: str) -> None:
        return None

    async def state(self, key: str) -> PresenceState:
        return _classify(
            key in self._sids, self._away_since.get(key), self.grace_seconds, time.time()
        )

    async def states(self, keys: list[str]) -> list[PresenceState]:
        now = time.time()
        return [
            _classify(key in self._sids, self._away_since.get(key), self.grace_seconds, now)
            for key in keys
        ]


class RedisPresence:
    """Several processes: each connection is a member of a sorted set scored by its last beat.

    A process that dies stops beating, so its connections count as away from their last beat
    instead of staying online forever.
    """

    def __init__(self, redis: Redis, prefix: str, *, grace_seconds: float, beat_seconds: float):
        self.redis = redis
        self.prefix = prefix + "presence:"
        self.grace_seconds = grace_seconds
        self.stale_after = beat_seconds * 3

    def _keys(self, key: str) -> tuple[str, str]:
        return f"{self.prefix}{key}:sids", f"{self.prefix}{key}:away"

    async def connected(self, key: str, sid: str) -> None:
        sids, away = self._keys(key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(sids, {sid: time.time()})
            pipe.delete(away)
            pipe.expire(sids, int(self.grace_seconds + self.stale_after) + 3600)
            await pipe.execute()

    async def heartbeat(self, key: str, sid: str) -> None:
        sids, _ = self._keys(key)
        await self.redis.zadd(sids, {sid: time.time()}, xx=True)

    async def disconnected(self, key: str, sid: str) -> None:
        sids, away = self._keys(key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(sids, sid)
            pipe.zcard(sids)
            _, remaining = await pipe.execute()
        if not remaining:
            await self.redis.set(away, str(time.time()), ex=int(self.grace_seconds) + 3600)

    async def state(self, key: str) -> PresenceState:
        return (await self.states([key]))[0]

    async def states(self, keys: list[str]) -> list[PresenceState]:
        if not keys:
            return []
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                sids, away = self._keys(key)
                pipe.zrangebyscore(sids, now - self.stale_after, "+inf", start=0, num=1)
                pipe.zrange(sids, -1, -1, withscores=True)
                pipe.get(away)
            answers = await pipe.execute()
        return [
            self._state(answers[i], answers[i + 1], answers[i + 2], now)
            for i in range(0, len(answers), 3)
        ]

    def _state(self, fresh: Any, newest: Any, away_raw: Any, now: float) -> PresenceState:
        if fresh:
            return PresenceState(Presence.ONLINE)
        away_since = float(away_raw) if away_raw is not None else None
        if newest:  # connections whose process stopped beating: away since their last beat
            away_since = max(away_since or 0.0, float(newest[0][1]))
        return _classify(False, away_since, self.grace_seconds, now)

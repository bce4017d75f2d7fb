"""This process as a node among many: the registry in Redis, visit placement, and the drain.

With REDIS_URL, every serving process writes its entry (state, live visits and participants, CPU,
internal URL) to one Redis hash every `BEAT_SECONDS`; an entry older than `STALE_SECONDS` no
longer counts (LiveKit's rule). A visit is placed on the least-loaded serving node at its first
join: the owner is recorded under a lease (`LEASE_SECONDS`, renewed by the owner's beat) with a
fencing epoch, incremented at each (re)placement, so a frozen node that wakes up after losing
the lease finds its epoch stale and its renewals refused.

Without Redis there is one implicit node: this process, which owns every visit.

SIGTERM (or `python -m app drain --node ID`) drains the node: /readyz answers 503, nothing new
is placed on it, and the process exits once its live visits have ended or after
OPENCONSULT_DRAIN_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.config import Settings
from app.core.errors import TryAgain
from app.web.jobs import Job, run_periodically
from app.web.keys import REDIS, SETTINGS

log = logging.getLogger(__name__)

BEAT_SECONDS = 2.0
STALE_SECONDS = 5.0
LEASE_SECONDS = 10.0
PLACING_LOCK_MS = 2000
PLACING_WAIT_SECONDS = 3.0
# A warm connection's node takes the visit it enters unless it carries this many more
# participants than the least-loaded node (its connection then moves with no new negotiation).
WARM_SLACK_PARTICIPANTS = 4
SERVING = "serving"
DRAINING = "draining"


@dataclass(frozen=True)
class NodeLoad:
    """What runs on a node now: visits with someone in them, and people connected."""

    visits: frozenset[str] = frozenset()
    participants: int = 0


@dataclass(frozen=True)
class NodeInfo:
    """One node's entry in the registry."""

    id: str
    state: str
    url: str
    visits: int
    participants: int
    cpu: float
    at: float  # wall-clock time of the entry
    visit_ids: tuple[str, ...] = ()  # the live visits themselves (placement counts them once)
    media: str = ""  # where participants send this node's media (see Node.media)

    def fresh(self, now: float) -> bool:
        return now - self.at < STALE_SECONDS

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "state": self.state,
            "url": self.url,
            "visits": self.visits,
            "participants": self.participants,
            "cpu": self.cpu,
            "media": self.media,
            "age_seconds": round(max(0.0, time.time() - self.at), 3),
        }


@dataclass(frozen=True)
class Placement:
    """Which node owns a visit, and the fencing epoch of that placement."""

    node_id: str
    url: str
    epoch: int

    def public(self) -> dict[str, object]:
        return {"node": self.node_id, "url": self.url, "epoch": self.epoch}


def _load_nothing() -> NodeLoad:
    return NodeLoad()


@dataclass
class Node:
    """This process as a node. `load` is set by whoever runs visits here (the signaling)."""

    id: str
    url: str
    # The media address participants reach: "UDP <addresses>:<port or range>", the addresses
    # announced (OPENCONSULT_RTC_ANNOUNCED_IPS) or "*" (the interfaces'), the port "*" when
    # every connection takes a random one.
    media: str = ""
    draining: bool = False
    load: Callable[[], NodeLoad] = _load_nothing
    # Visits this node was placed on: visit id -> (epoch, when placed, monotonic).
    owned: dict[str, tuple[int, float]] = field(default_factory=dict)
    on_lost: list[Callable[[str], object]] = field(default_factory=list)
    drain_task: asyncio.Task[None] | None = None
    _cpu_mark: tuple[float, float] = field(
        default_factory=lambda: (time.monotonic(), time.process_time())
    )

    @property
    def state(self) -> str:
        return DRAINING if self.draining else SERVING

    def cpu(self) -> float:
        """This process's share of one core since the last call (0..n cores)."""
        wall, used = time.monotonic(), time.process_time()
        last_wall, last_used = self._cpu_mark
        self._cpu_mark = (wall, used)
        return round((used - last_used) / max(wall - last_wall, 1e-6), 3)

    @classmethod
    def from_settings(cls, settings: Settings) -> Node:
        addresses = ",".join(settings.rtc_announced_ips) or "*"
        ports = str(settings.rtc_udp_port or settings.rtc_udp_ports or "*")
        return cls(
            id=settings.node_id or uuid.uuid4().hex[:12],
            url=(settings.node_url or f"http://{settings.host}:{settings.port}").rstrip("/"),
            media=f"UDP {addresses}:{ports}",
        )


NODE = web.AppKey("node", Node)


class NodeRegistry:
    """The nodes and the visit -> node leases in Redis."""

    # Claim a visit unless someone else holds a lease on it now. ARGV: the value seen before
    # (empty: none), node id, lease in ms, node URL. A new epoch for every placement.
    _PLACE = """
    local current = redis.call('GET', KEYS[1])
    if current and current ~= ARGV[1] then return current end
    local epoch = redis.call('INCR', KEYS[2])
    redis.call('EXPIRE', KEYS[2], 604800)
    local value = ARGV[2] .. '|' .. epoch .. '|' .. ARGV[4]
    redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
    return value
    """
    # Renew the owner's lease if it is still this node at this epoch; a lease that lapsed (a
    # Redis outage longer than the lease) comes back only if nobody placed the visit since.
    # ARGV: node id, epoch, lease in ms, node URL. 1: still ours; 0: lost.
    _RENEW = """
    local mine = ARGV[1] .. '|' .. ARGV[2] .. '|'
    local current = redis.call('GET', KEYS[1])
    if current then
      if string.sub(current, 1, #mine) == mine then
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        return 1
      end
      return 0
    end
    local epoch = redis.call('GET', KEYS[2])
    if epoch and tonumber(epoch) ~= tonumber(ARGV[2]) then return 0 end
    redis.call('SET', KEYS[2], ARGV[2], 'EX', 604800)
    redis.call('SET', KEYS[1], mine .. ARGV[4], 'PX', ARGV[3])
    return 1
    """

    # Release the placing lock only if this holder still has it.
    _RELEASE = """
    if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
    return 0
    """

    def __init__(
        self, redis: Redis, prefix: str, probe: Callable[[str], Awaitable[bool]] | None = None
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.probe = probe or reachable  # whether an owner's internal URL answers
        self._place = redis.register_script(self._PLACE)
        self._renew = redis.register_script(self._RENEW)
        self._release = redis.register_script(self._RELEASE)

    @property
    def nodes_key(self) -> str:
        return f"{self.prefix}nodes"

    def _owner_key(self, visit_id: str) -> str:
        return f"{self.prefix}visit-node:{visit_id}"

    def _epoch_key(self, visit_id: str) -> str:
        return f"{self.prefix}visit-epoch:{visit_id}"

    def drain_request_key(self, node_id: str) -> str:
        return f"{self.prefix}node-drain:{node_id}"

    async def register(self, node: Node) -> None:
        load = node.load()
        entry = {
            "id": node.id,
            "state": node.state,
            "url": node.url,
            "visits": len(load.visits),
            "participants": load.participants,
            "cpu": node.cpu(),
            "at": time.time(),
            "visit_ids": sorted(load.visits),
            "media": node.media,
        }
        await self.redis.hset(self.nodes_key, node.id, json.dumps(entry))

    async def deregister(self, node: Node) -> None:
        await self.redis.hdel(self.nodes_key, node.id)

    async def nodes(self) -> list[NodeInfo]:
        """Every node with a fresh entry; entries stale for a minute are removed."""
        now = time.time()
        raw = await self.redis.hgetall(self.nodes_key)
        found, gone = [], []
        for key, value in raw.items():
            try:
                fields = json.loads(value)
                fields["visit_ids"] = tuple(fields.get("visit_ids", ()))
                info = NodeInfo(**fields)
            except (ValueError, TypeError, AttributeError):
                gone.append(key)
                continue
            if info.fresh(now):
                found.append(info)
            elif now - info.at > 60:
                gone.append(key)
        if gone:
            await self.redis.hdel(self.nodes_key, *gone)
        return sorted(found, key=lambda n: n.id)

    async def drain_requested(self, node_id: str) -> bool:
        return bool(await self.redis.exists(self.drain_request_key(node_id)))

    async def request_drain(self, node_id: str) -> None:
        await self.redis.set(self.drain_request_key(node_id), "1", ex=86400)

    async def owner(self, visit_id: str) -> Placement | None:
        value = await self.redis.get(self._owner_key(visit_id))
        return _placement(value) if value is not None else None

    def _placed_key(self, node_id: str) -> str:
        return f"{self.prefix}node-placed:{node_id}"

    async def place(self, visit_id: str, node: Node, *, prefer_asker: bool = False) -> Placement:
        """The visit's owner: the current one while its lease holds, its node is fresh and
        answers a connection, else the least-loaded serving node, claimed atomically (one
        winner among racers). A dead owner (kill -9) is seen at once by the probe, not after
        its entry goes stale. `prefer_asker`: the asking node (it holds a warm connection for
        the visit) unless it is busier than the least loaded by WARM_SLACK_PARTICIPANTS."""
        seen = await self.redis.get(self._owner_key(visit_id))
        nodes = await self.nodes()
        alive = {n.id for n in nodes}
        dead: set[str] = set()
        current = _placement(seen) if seen is not None else None
        if current is not None:
            if current.node_id in alive and (
                current.node_id == node.id or await self.probe(current.url)
            ):
                return self._noted(visit_id, current, node)
            dead.add(current.node_id)
            log.warning(
                "visit %s: its node %s is gone; placing it again", visit_id, current.node_id
            )
        serving = [n for n in nodes if n.state == SERVING and n.id not in dead]
        if not serving:
            raise TryAgain("No video node can take this visit right now; try again shortly.")
        # One placement at a time across the cluster: two visits placed at the same moment
        # would otherwise both read the same loads and land on the same node.
        async with self._placing():
            load = await self._load(serving)
            chosen = min(serving, key=lambda n: (*load[n.id], n.cpu, n.id))
            asker = next((n for n in serving if n.id == node.id), None)
            if (
                prefer_asker
                and asker is not None
                and load[asker.id][0] <= load[chosen.id][0] + WARM_SLACK_PARTICIPANTS
            ):
                chosen = asker
            value = await self._place(
                keys=[self._owner_key(visit_id), self._epoch_key(visit_id)],
                args=[seen or b"", chosen.id, int(LEASE_SECONDS * 1000), chosen.url],
            )
            placement = _placement(value)
            if current is None or placement.epoch != current.epoch:
                # A visit counts on its node from its placement, before anyone's media flows.
                await self.redis.zadd(self._placed_key(placement.node_id), {visit_id: time.time()})
        return self._noted(visit_id, placement, node)

    @contextlib.asynccontextmanager
    async def _placing(self) -> AsyncIterator[None]:
        """A short cluster-wide lock (Redis SET NX PX with a token, released only by its
        holder). A holder that dies loses it after PLACING_LOCK_MS; a waiter gives up after
        PLACING_WAIT_SECONDS and places anyway (spread is a preference, never a reason to
        refuse a visit)."""
        key, token = f"{self.prefix}placing", uuid.uuid4().hex
        deadline = time.monotonic() + PLACING_WAIT_SECONDS
        held = False
        while not (held := bool(await self.redis.set(key, token, nx=True, px=PLACING_LOCK_MS))):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        try:
            yield
        finally:
            if held:
                await self._release(keys=[key], args=[token])

    async def _load(self, nodes: list[NodeInfo]) -> dict[str, tuple[int, int]]:
        """Per node: its participants plus two for each visit placed there in the last lease
        that has nobody in it yet (a patient and a provider are on their way), and its visits
        (live or just placed)."""
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for n in nodes:
            pipe.zremrangebyscore(self._placed_key(n.id), "-inf", now - LEASE_SECONDS)
            pipe.zrange(self._placed_key(n.id), 0, -1)
        answers = await pipe.execute()
        load = {}
        for n, placed in zip(nodes, answers[1::2], strict=True):
            pending = {v.decode() if isinstance(v, bytes) else v for v in placed}
            pending -= set(n.visit_ids)
            load[n.id] = (n.participants + 2 * len(pending), n.visits + len(pending))
        return load

    @staticmethod
    def _noted(visit_id: str, placement: Placement, node: Node) -> Placement:
        """This node keeps (and renews) the lease of a visit placed on it, by whichever node."""
        if placement.node_id == node.id:
            held = node.owned.get(visit_id)
            if held is None or held[0] != placement.epoch:
                node.owned[visit_id] = (placement.epoch, time.monotonic())
        return placement

    async def renew(self, node: Node, live: Collection[str]) -> list[str]:
        """Renew the leases of the visits this node owns; the ids of those it lost. A visit
        placed here but never started is let go after one lease."""
        lost = []
        now = time.monotonic()
        for visit_id, (epoch, placed_at) in list(node.owned.items()):
            if visit_id not in live and now - placed_at > LEASE_SECONDS:
                del node.owned[visit_id]
                continue
            kept = await self._renew(
                keys=[self._owner_key(visit_id), self._epoch_key(visit_id)],
                args=[node.id, epoch, int(LEASE_SECONDS * 1000), node.url],
            )
            if not kept:
                del node.owned[visit_id]
                lost.append(visit_id)
        return lost


PROBE_SECONDS = 1.0


async def reachable(url: str) -> bool:
    """Whether a node's internal address accepts a connection within PROBE_SECONDS: a killed
    process refuses at once, long before its registry entry goes stale."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, port), PROBE_SECONDS
        )
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _placement(value: bytes | str) -> Placement:
    text = value.decode() if isinstance(value, bytes) else value
    node_id, epoch, url = text.split("|", 2)
    return Placement(node_id, url, int(epoch))


REGISTRY: web.AppKey[NodeRegistry | None] = web.AppKey("node_registry")


async def place_visit(
    app: web.Application, visit_id: uuid.UUID, *, prefer_here: bool = False
) -> Placement:
    """The node that owns the visit, placing it now if nobody does; this node when alone.
    `prefer_here`: this node holds a warm connection for the visit (see NodeRegistry.place).

    Redis out: a visit live here stays here; any other gets TryAgain (503 `try_again`)."""
    node = app[NODE]
    registry = app[REGISTRY]
    key = str(visit_id)
    if registry is None:
        return Placement(node.id, node.url, 0)
    try:
        return await registry.place(key, node, prefer_asker=prefer_here)
    except (RedisError, OSError) as exc:
        if key in node.load().visits:  # live here: it goes on here, Redis or not
            epoch = node.owned[key][0] if key in node.owned else 0
            return Placement(node.id, node.url, epoch)
        log.warning("cannot place visit %s: Redis unreachable (%s)", key, type(exc).__name__)
        raise TryAgain(
            "The video service is briefly unavailable; try joining again in a few seconds."
        ) from None


def setup_nodes(app: web.Application) -> None:
    """This process's node; with Redis its registry entry and leases, renewed every beat."""
    app[NODE] = Node.from_settings(app[SETTINGS])

    async def registry_lifetime(app: web.Application) -> AsyncIterator[None]:
        redis = app[REDIS]
        registry = NodeRegistry(redis, app[SETTINGS].redis_key_prefix) if redis else None
        app[REGISTRY] = registry
        if registry is not None:
            with contextlib.suppress(RedisError, OSError):
                await registry.register(app[NODE])
        yield
        if registry is not None:
            with contextlib.suppress(RedisError, OSError):
                await registry.deregister(app[NODE])

    app.cleanup_ctx.append(registry_lifetime)
    run_periodically(app, "node-beat", lambda app: BEAT_SECONDS, _beat, first_run_now=True)


def _beat(app: web.Application) -> Job | None:
    registry = app[REGISTRY]
    if registry is None:
        return None
    node = app[NODE]

    out = [False]  # whether the last beat found Redis unreachable (said once per outage)

    async def beat() -> None:
        try:
            if not node.draining and await registry.drain_requested(node.id):
                start_drain(app)
            await registry.register(node)
            lost_visits = await registry.renew(node, node.load().visits)
        except (RedisError, OSError) as exc:
            if not out[0]:
                log.warning("node %s: Redis unreachable (%s); live visits go on", node.id, exc)
            out[0] = True
            return
        if out[0]:
            log.warning("node %s: Redis is back", node.id)
            out[0] = False
        for visit_id in lost_visits:
            log.warning("visit %s was placed on another node: this node lets it go", visit_id)
            for lost in node.on_lost:
                result = lost(visit_id)
                if asyncio.iscoroutine(result):
                    await result

    return beat


def start_drain(app: web.Application) -> None:
    """Stop taking new visits; exit once the live ones end or the drain timeout passes."""
    node = app[NODE]
    if node.draining:
        return
    node.draining = True
    log.warning("node %s draining: no new visits; live ones go on", node.id)
    node.drain_task = asyncio.get_running_loop().create_task(_drain(app), name="node-drain")


async def _drain(app: web.Application) -> None:
    node = app[NODE]
    registry = app[REGISTRY]
    if registry is not None:
        with contextlib.suppress(RedisError, OSError):
            await registry.register(node)  # placement sees "draining" now, not at the next beat
    deadline = time.monotonic() + app[SETTINGS].drain_timeout_seconds
    # The load is read, not signalled: visits end in the signaling, which knows no drain.
    while node.load().visits and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    left = len(node.load().visits)
    if left:
        log.warning("node %s drain timeout: exiting with %d visits still live", node.id, left)
    else:
        log.warning("node %s drained: no live visit left; exiting", node.id)
    # aiohttp's own SIGINT handler shuts the server down cleanly; run_app then returns (exit 0).
    os.kill(os.getpid(), signal.SIGINT)


def drain_on_sigterm(app: web.Application) -> None:
    """For `serve`: SIGTERM drains instead of stopping at once (installed after aiohttp's)."""

    async def install(app: web.Application) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, start_drain, app)

    app.on_startup.append(install)

"""Visits on many nodes: the registry, placement with a lease and an epoch, the drain, and a
Redis outage. Real Redis (a redis-server of the test's own) and real server processes."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
import uuid
from collections.abc import Iterator

import aiohttp
import pytest
import socketio
from redis.asyncio import Redis

from app.core.errors import TryAgain
from app.main import create_app
from app.web.nodes import LEASE_SECONDS, NODE, Node, NodeLoad, NodeRegistry
from tests.signaling.conftest import WaitingFactory, check_in, staff_headers
from tests.signaling.test_two_processes import BaseClient
from tests.support.servers import (
    Server,
    app_server,
    free_port,
    redis_server,
    started_app_server,
)
from tests.support.waiting import wait_for

PREFIX = "octest:nodes:"


@pytest.fixture
def own_redis() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
def cluster_env(process_env: dict[str, str]) -> dict[str, str]:
    """The servers' environment with one key prefix of this test's own (with or without the
    suite's REDIS_URL)."""
    return dict(process_env, OPENCONSULT_REDIS_KEY_PREFIX=f"octest:{uuid.uuid4().hex}:")


def node_env(cluster_env: dict[str, str], redis_url: str, name: str, **extra: str):
    env = dict(cluster_env, REDIS_URL=redis_url, OPENCONSULT_NODE_ID=name)
    env.update(extra)
    return env


async def entries(env: dict[str, str]) -> dict[str, dict]:
    """The registry's entries, as the servers started with `env` see them."""
    redis = Redis.from_url(env["REDIS_URL"])
    try:
        raw = await redis.hgetall(env["OPENCONSULT_REDIS_KEY_PREFIX"] + "nodes")
    finally:
        await redis.aclose()
    return {k.decode(): json.loads(v) for k, v in raw.items()}


# The registry itself, against a real Redis.


async def answers(url: str) -> bool:
    """The registry's nodes here are names, not processes: every one answers the probe."""
    return True


async def test_placement_picks_the_least_loaded_serving_node_once(own_redis):
    redis = Redis.from_url(own_redis)
    registry = NodeRegistry(redis, PREFIX, probe=answers)
    try:
        busy = Node("busy", "http://busy", load=lambda: NodeLoad(frozenset({"x", "y"}), 6))
        idle = Node("idle", "http://idle")
        draining = Node("draining", "http://draining", draining=True)
        for node in (busy, idle, draining):
            await registry.register(node)
        assert {n.id for n in await registry.nodes()} == {"busy", "idle", "draining"}

        # Ten first joins at once: one placement, on the idle node, one epoch.
        placements = await asyncio.gather(*(registry.place("v1", busy) for _ in range(10)))
        assert {(p.node_id, p.url, p.epoch) for p in placements} == {("idle", "http://idle", 1)}
        assert (await registry.owner("v1")) == placements[0]

        # The draining node never gets a visit, even when it is the least loaded.
        await registry.register(Node("idle", "http://idle", load=lambda: NodeLoad(frozenset(), 9)))
        assert (await registry.place("v2", busy)).node_id == "busy"
    finally:
        await redis.aclose()


async def test_a_warm_connection_s_node_takes_the_visit_unless_it_is_much_busier(own_redis):
    """A waiting page's warm connection moves into the visit as is only on its own node: that
    node takes the visit it enters while it is not much busier than the least loaded."""
    redis = Redis.from_url(own_redis)
    registry = NodeRegistry(redis, PREFIX, probe=answers)
    try:
        warm = Node("warm", "http://warm", load=lambda: NodeLoad(frozenset({"x"}), 2))
        idle = Node("idle", "http://idle")
        for node in (warm, idle):
            await registry.register(node)
        # Without the preference the idle node gets it; with it, the warm connection's node.
        assert (await registry.place("cold", warm)).node_id == "idle"
        assert (await registry.place("entered", warm, prefer_asker=True)).node_id == "warm"
        # Placed once: the other side's warm connection elsewhere finds it there.
        assert (await registry.place("entered", idle, prefer_asker=True)).node_id == "warm"

        # Much busier (three visits more than the least loaded): spread wins.
        busy = Node(
            "warm", "http://warm", load=lambda: NodeLoad(frozenset({"x", "y", "z", "w"}), 8)
        )
        await registry.register(busy)
        assert (await registry.place("later", busy, prefer_asker=True)).node_id == "idle"
        # A draining node never takes one, warm connection or not.
        await registry.register(Node("warm", "http://warm", draining=True))
        assert (await registry.place("drained", warm, prefer_asker=True)).node_id == "idle"
    finally:
        await redis.aclose()


async def test_each_node_s_entry_says_where_its_media_go(own_redis, settings_factory):
    """An operator (and the placement) reads from the registry where a node takes media: its
    announced address and its one UDP port, or a range, or "*" for what is left to aioice."""
    redis = Redis.from_url(own_redis)
    registry = NodeRegistry(redis, PREFIX, probe=answers)
    try:
        nodes = {
            "single": settings_factory(
                node_id="single", rtc_announced_ips="203.0.113.10", rtc_udp_port=10000
            ),
            "ranged": settings_factory(node_id="ranged", rtc_udp_ports="40000-40099"),
            "laptop": settings_factory(node_id="laptop"),
        }
        for settings in nodes.values():
            await registry.register(Node.from_settings(settings))
        media = {n.id: n.public()["media"] for n in await registry.nodes()}
        assert media == {
            "single": "UDP 203.0.113.10:10000",
            "ranged": "UDP *:40000-40099",
            "laptop": "UDP *:*",
        }
    finally:
        await redis.aclose()


async def test_a_stale_owner_loses_its_visit_and_its_late_renewal_is_refused(own_redis):
    redis = Redis.from_url(own_redis)
    registry = NodeRegistry(redis, PREFIX, probe=answers)
    try:
        frozen = Node("frozen", "http://frozen")
        other = Node("other", "http://other", load=lambda: NodeLoad(frozenset(), 3))
        await registry.register(frozen)
        await registry.register(other)
        first = await registry.place("v", frozen)
        assert (first.node_id, first.epoch) == ("frozen", 1)
        assert frozen.owned["v"][0] == 1

        # The frozen node's entry goes stale (no beat for 5 s) and its lease lapses.
        raw = json.loads(await redis.hget(registry.nodes_key, "frozen"))
        raw["at"] -= 6
        await redis.hset(registry.nodes_key, "frozen", json.dumps(raw))
        await redis.delete(f"{PREFIX}visit-node:v")
        again = await registry.place("v", other)
        assert (again.node_id, again.epoch) == ("other", 2)

        # It wakes up: its renewal at epoch 1 is refused, the visit stays with "other".
        assert await registry.renew(frozen, {"v"}) == ["v"]
        assert "v" not in frozen.owned
        assert (await registry.owner("v")) == again
        assert await registry.renew(other, {"v"}) == []
    finally:
        await redis.aclose()


async def test_an_owner_takes_back_its_lapsed_lease_when_nobody_placed_the_visit(own_redis):
    redis = Redis.from_url(own_redis)
    registry = NodeRegistry(redis, PREFIX, probe=answers)
    try:
        node = Node("n", "http://n")
        await registry.register(node)
        placed = await registry.place("v", node)
        await redis.delete(f"{PREFIX}visit-node:v")  # e.g. Redis out longer than the lease
        assert await registry.renew(node, {"v"}) == []
        assert (await registry.owner("v")) == placed
        ttl = await redis.pttl(f"{PREFIX}visit-node:v")
        assert 0 < ttl <= LEASE_SECONDS * 1000
    finally:
        await redis.aclose()


async def test_a_visit_counts_on_its_node_from_its_placement(own_redis):
    redis = Redis.from_url(own_redis)
    registry = NodeRegistry(redis, PREFIX, probe=answers)
    try:
        nodes = [Node(name, f"http://{name}") for name in ("n1", "n2", "n3")]
        for node in nodes:
            await registry.register(node)
        # Nobody has joined any of them yet, and the entries are not refreshed in between.
        placed = [(await registry.place(f"v{i}", nodes[0])).node_id for i in range(9)]
        assert {name: placed.count(name) for name in ("n1", "n2", "n3")} == {
            "n1": 3,
            "n2": 3,
            "n3": 3,
        }
    finally:
        await redis.aclose()


async def test_visits_placed_at_the_same_moment_still_spread(own_redis):
    """Nine visits placed at once, from three nodes' registries (three Redis connections),
    each reading the loads before the others have placed: they still spread 3/3/3."""
    clients = [Redis.from_url(own_redis) for _ in range(3)]
    registries = [NodeRegistry(redis, PREFIX, probe=answers) for redis in clients]
    try:
        nodes = [Node(name, f"http://{name}") for name in ("n1", "n2", "n3")]
        for node, registry in zip(nodes, registries, strict=True):
            await registry.register(node)
        placements = await asyncio.gather(
            *(registries[i % 3].place(f"v{i}", nodes[i % 3]) for i in range(9))
        )
        placed = [p.node_id for p in placements]
        assert {name: placed.count(name) for name in ("n1", "n2", "n3")} == {
            "n1": 3,
            "n2": 3,
            "n3": 3,
        }
    finally:
        for redis in clients:
            await redis.aclose()


async def test_an_owner_that_refuses_connections_is_replaced_before_its_entry_goes_stale(
    own_redis,
):
    redis = Redis.from_url(own_redis)
    dead_port = free_port()  # nothing listens there: a killed node's address
    registry = NodeRegistry(redis, PREFIX)
    try:
        killed = Node("killed", f"http://127.0.0.1:{dead_port}")
        asking = Node("asking", "http://asking", load=lambda: NodeLoad(frozenset(), 1))
        await registry.register(killed)
        await registry.register(asking)
        first = await registry.place("v", asking)
        assert (first.node_id, first.epoch) == ("killed", 1)
        # Its entry is still fresh, but its address refuses: the visit moves at once.
        assert "killed" in {n.id for n in await registry.nodes()}
        again = await registry.place("v", asking)
        assert (again.node_id, again.epoch) == ("asking", 2)
        assert (await registry.place("v", asking)) == again
    finally:
        await redis.aclose()


async def test_no_serving_node_means_try_again(own_redis):
    redis = Redis.from_url(own_redis)
    registry = NodeRegistry(redis, PREFIX, probe=answers)
    try:
        node = Node("d", "http://d", draining=True)
        await registry.register(node)
        with pytest.raises(TryAgain):
            await registry.place("v", node)
    finally:
        await redis.aclose()


# Real processes.


async def admitted_visit(
    base: str, waiting: WaitingFactory, http: aiohttp.ClientSession, sockets
) -> tuple[str, dict[str, str]]:
    """A checked-in patient (cookie in `http`) admitted by their provider; visit id, provider
    headers."""
    v = await waiting.visitable()
    await check_in(BaseClient(base, http), v.token)
    headers = await staff_headers(base, v.provider)
    clinic = await sockets(base + "/", "/clinic", headers)
    admitted = await clinic.call("admit", {"appointment_id": str(v.appointment.id)})
    await clinic.client.disconnect()
    return admitted["visit_id"], headers


async def status_of(http: aiohttp.ClientSession, url: str) -> tuple[int, dict]:
    try:
        async with http.get(url) as resp:
            return resp.status, await resp.json()
    except aiohttp.ClientError:
        return 0, {}


async def both_registered(env: dict[str, str], names: set[str]) -> bool:
    now = time.time()
    found = await entries(env)
    return all(n in found and now - found[n]["at"] < 5 for n in names)


@pytest.mark.multiprocess
async def test_nodes_register_and_a_visit_has_one_owner_whoever_asks(
    cluster_env, own_redis, waiting: WaitingFactory, sockets
):
    env_a = node_env(cluster_env, own_redis, "node-a")
    with (
        app_server(env_a, health="/readyz") as a,
        app_server(node_env(cluster_env, own_redis, "node-b"), health="/readyz") as b,
    ):
        await wait_for(lambda: both_registered(env_a, {"node-a", "node-b"}), 10, "entries")
        found = await entries(env_a)
        assert found["node-a"]["state"] == "serving"
        assert found["node-a"]["url"] == a.url and found["node-b"]["url"] == b.url
        assert {"visits", "participants", "cpu"} <= set(found["node-a"])

        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            visit_id, headers = await admitted_visit(a.url, waiting, http, sockets)
            # The patient asks through A, the provider through B: one owner, one epoch.
            async with http.post(f"{a.url}/api/visits/{visit_id}/placement") as resp:
                assert resp.status == 200, await resp.text()
                by_patient = await resp.json()
            async with aiohttp.ClientSession() as staff_http:
                async with staff_http.post(
                    f"{b.url}/api/visits/{visit_id}/placement", headers=headers
                ) as resp:
                    assert resp.status == 200
                    by_provider = await resp.json()
                # Not an attendee: no answer about the visit.
                async with staff_http.post(f"{b.url}/api/visits/{visit_id}/placement") as resp:
                    assert resp.status == 404
            assert by_patient == by_provider
            assert by_patient["node"] in {"node-a", "node-b"} and by_patient["epoch"] == 1
            owner, other = (a, b) if by_patient["node"] == "node-a" else (b, a)
            assert by_patient["socket_path"] == f"/node/{by_patient['node']}/socket.io"

            # The owner serves Socket.IO at its node path too (a proxy forwards /node/<id>/…
            # there unchanged); another node does not, so a wrong route fails loudly.
            client = socketio.AsyncClient(reconnection=False)
            joined = asyncio.get_running_loop().create_future()
            client.on("joined", lambda data: joined.set_result(data), namespace="/visit")
            await asyncio.wait_for(
                client.connect(
                    owner.url,
                    headers=headers,
                    auth={"visit_id": visit_id},
                    namespaces=["/visit"],
                    transports=["websocket"],
                    wait_timeout=10,
                    socketio_path=by_patient["socket_path"].lstrip("/"),
                ),
                10,
            )
            try:
                assert (await asyncio.wait_for(joined, 10))["role"] == "provider"
            finally:
                await client.disconnect()
            polling = f"{by_patient['socket_path']}/?EIO=4&transport=polling"
            async with http.get(other.url + polling) as resp:
                assert resp.status == 404


def server_process(server: Server):
    assert server.process is not None
    return server.process


@pytest.mark.multiprocess
async def test_sigterm_drains_live_visits_go_on_new_ones_go_elsewhere_then_exit_0(
    cluster_env, own_redis, waiting: WaitingFactory, sockets
):
    env_a = node_env(cluster_env, own_redis, "node-a", OPENCONSULT_DRAIN_TIMEOUT_SECONDS="60")
    with app_server(env_a, health="/readyz") as a:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            # The visit starts while node-a is alone: it runs there (its owner).
            visit_id, headers = await admitted_visit(a.url, waiting, http, sockets)
            provider = await sockets(a.url + "/", "/visit", headers, {"visit_id": visit_id})
            await provider.wait_for("joined")
            await wait_for(
                lambda: _entry_has(env_a, "node-a", lambda e: e["visits"] == 1),
                10,
                "node-a to report its live visit",
            )
            # Started off the event loop: the provider's socket must keep answering its pings
            # while node-b starts (tens of seconds on a loaded machine).
            node_b = node_env(cluster_env, own_redis, "node-b")
            async with started_app_server(node_b, health="/readyz") as b:
                await wait_for(lambda: both_registered(env_a, {"node-b"}), 10, "entries")
                await _sigterm_drains(a, b, http, waiting, sockets, provider)
        assert "node-a" not in await entries(env_a)


async def _sigterm_drains(a: Server, b: Server, http, waiting, sockets, provider) -> None:
    """SIGTERM node-a, the owner of the provider's live visit; node-b serves."""

    server_process(a).send_signal(signal.SIGTERM)
    status, body = await wait_for(
        lambda: _draining(http, a.url), 10, "node-a's /readyz to say draining"
    )
    assert status == 503 and body["checks"]["node"] == "draining"
    assert (await status_of(http, f"{a.url}/healthz"))[0] == 200
    # The live visit goes on: chat still works on the draining node.
    assert (await provider.call("chat", {"text": "still here"}))["ok"]

    # A new visit asked for through the draining node is placed on the other one.
    other_jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=other_jar) as other:
        new_visit, _ = await admitted_visit(b.url, waiting, other, sockets)
        async with other.post(f"{a.url}/api/visits/{new_visit}/placement") as resp:
            assert resp.status == 200
            assert (await resp.json())["node"] == "node-b"

    # The visit ends: the node exits on its own, with 0, long before the timeout.
    assert (await provider.call("end", {}))["ok"]
    await provider.client.disconnect()
    code = await asyncio.to_thread(server_process(a).wait, 30)
    assert code == 0
    assert "node node-a drained: no live visit left; exiting" in a.log.read_text()


@pytest.mark.multiprocess
async def test_a_drain_ends_at_its_timeout_with_a_visit_still_live(
    cluster_env, own_redis, waiting: WaitingFactory, sockets
):
    env_a = node_env(cluster_env, own_redis, "node-a", OPENCONSULT_DRAIN_TIMEOUT_SECONDS="2")
    with app_server(env_a, health="/readyz") as a:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            visit_id, headers = await admitted_visit(a.url, waiting, http, sockets)
            provider = await sockets(a.url + "/", "/visit", headers, {"visit_id": visit_id})
            await provider.wait_for("joined")
            await wait_for(
                lambda: _entry_has(env_a, "node-a", lambda e: e["visits"] == 1), 10, "load"
            )
            server_process(a).send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(server_process(a).wait, 30)
        assert code == 0
        assert "node node-a drain timeout: exiting with 1 visits still live" in a.log.read_text()


@pytest.mark.multiprocess
async def test_drain_command_drains_the_named_node(cluster_env, own_redis):
    env = node_env(cluster_env, own_redis, "node-a")
    with app_server(env, health="/readyz") as a:
        await wait_for(lambda: both_registered(env, {"node-a"}), 10, "entry")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app", "drain", "--node", "node-a", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        assert "node-a" in out.decode()
        # No live visit: it drains and exits at once.
        code = await asyncio.to_thread(server_process(a).wait, 30)
        assert code == 0


@pytest.mark.multiprocess
async def test_redis_outage_healthz_stays_up_joins_say_try_again_then_work(
    cluster_env, waiting: WaitingFactory, sockets
):
    port = free_port()
    with redis_server(port) as redis_url:
        env = node_env(cluster_env, redis_url, "node-a")
        with app_server(env, health="/readyz") as a:
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as http:
                visit_id, _ = await admitted_visit(a.url, waiting, http, sockets)
                # Stop the test's own Redis, later start a fresh one on the same port.
                outage = redis_server(port)
                await _stop_redis(port)
                status, body = await wait_for(
                    lambda: _not_ready(http, a.url), 10, "/readyz to see Redis gone"
                )
                assert status == 503 and body["checks"]["redis"].startswith("unreachable")
                assert (await status_of(http, f"{a.url}/healthz"))[0] == 200
                async with http.post(f"{a.url}/api/visits/{visit_id}/placement") as resp:
                    assert resp.status == 503
                    error = (await resp.json())["error"]
                    assert error["code"] == "try_again" and "try" in error["message"].lower()
                with outage:
                    # Back without restarting the app: the node registers again, joins work.
                    await wait_for(lambda: _placed(http, a.url, visit_id), 20, "placement")
                    status, _ = await status_of(http, f"{a.url}/readyz")
                    assert status == 200


async def _stop_redis(port: int) -> None:
    redis = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        await redis.shutdown(nosave=True)
    except Exception:
        pass  # the connection drops as the server exits
    finally:
        await redis.aclose()


async def _entry_has(env: dict[str, str], name: str, check) -> bool:
    found = await entries(env)
    return name in found and check(found[name])


async def _draining(http: aiohttp.ClientSession, base: str):
    status, body = await status_of(http, f"{base}/readyz")
    return (status, body) if body.get("status") == "draining" else None


async def _not_ready(http: aiohttp.ClientSession, base: str):
    status, body = await status_of(http, f"{base}/readyz")
    return (status, body) if status == 503 else None


async def _placed(http: aiohttp.ClientSession, base: str, visit_id: str) -> bool:
    async with http.post(f"{base}/api/visits/{visit_id}/placement") as resp:
        return resp.status == 200 and (await resp.json())["node"] == "node-a"


# Embedded mode: no Redis, one implicit node.


async def test_without_redis_this_process_owns_every_visit(
    aiohttp_server, settings_factory, waiting: WaitingFactory, sockets
):
    app = create_app(settings_factory(REDIS_URL=None, background_tasks=False))
    server = await aiohttp_server(app, host="127.0.0.1")
    base = str(server.make_url("")).rstrip("/")
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        visit_id, _ = await admitted_visit(base, waiting, http, sockets)
        async with http.post(f"{base}/api/visits/{visit_id}/placement") as resp:
            assert resp.status == 200
            assert await resp.json() == {
                "node": app[NODE].id,
                "url": app[NODE].url,
                "epoch": 0,
                "socket_path": f"/node/{app[NODE].id}/socket.io",
            }
        status, body = await status_of(http, f"{base}/readyz")
        assert status == 200 and body["checks"] == {"database": "ok", "node": "ok"}


@pytest.mark.multiprocess
async def test_when_the_owner_dies_the_visit_is_placed_again_on_a_live_node(
    cluster_env, own_redis, waiting: WaitingFactory, sockets
):
    env_a = node_env(cluster_env, own_redis, "node-a")
    with (
        app_server(env_a, health="/readyz") as a,
        app_server(node_env(cluster_env, own_redis, "node-b"), health="/readyz") as b,
    ):
        await wait_for(lambda: both_registered(env_a, {"node-a", "node-b"}), 10, "entries")
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            visit_id, _ = await admitted_visit(a.url, waiting, http, sockets)
            async with http.post(f"{a.url}/api/visits/{visit_id}/placement") as resp:
                first = await resp.json()
            owner, other = (a, b) if first["node"] == "node-a" else (b, a)

            server_process(owner).send_signal(signal.SIGKILL)
            second = await wait_for(
                lambda: _placed_elsewhere(http, other.url, visit_id, first["node"]),
                15,
                "the visit to be placed on the live node",
            )
        assert second["epoch"] == first["epoch"] + 1 and second["url"] == other.url


async def _placed_elsewhere(http: aiohttp.ClientSession, base: str, visit_id: str, dead: str):
    async with http.post(f"{base}/api/visits/{visit_id}/placement") as resp:
        if resp.status != 200:
            return None
        body = await resp.json()
        return body if body["node"] != dead else None

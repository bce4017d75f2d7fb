"""Three real app nodes on PostgreSQL + Redis behind a real nginx (deploy/nginx.conf, rendered
for loopback): visits spread over the nodes, each visit's sockets reach its owner through the
proxy's node path, and a socket that reaches another node is told where the visit runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import socketio

from tests.signaling.conftest import WaitingFactory
from tests.signaling.test_nodes import admitted_visit, both_registered
from tests.support import nginx
from tests.support.waiting import wait_for

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.skipif(
        not (os.environ.get("REDIS_URL") and os.environ.get("DATABASE_URL")),
        reason="needs REDIS_URL and DATABASE_URL (the at-scale pass of the suite)",
    ),
    pytest.mark.skipif(nginx.executable() is None, reason="nginx is not installed"),
]


@pytest.fixture
def cluster(process_env: dict[str, str]) -> Iterator[nginx.Cluster]:
    with nginx.node_cluster(process_env) as cluster:
        yield cluster


async def visit_socket(
    url: str, path: str, headers: dict[str, str], visit_id: str
) -> tuple[socketio.AsyncClient, Any]:
    """A /visit socket at `path` through nginx; (client, the joined event's data or the
    connect_error's data)."""
    client = socketio.AsyncClient(reconnection=False)
    answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def settle(kind: str):
        def handler(data: Any = None) -> None:
            if not answer.done():
                answer.set_result((kind, data))

        return handler

    client.on("joined", settle("joined"), namespace="/visit")
    client.on("connect_error", settle("refused"), namespace="/visit")
    # A refusal raises; its data came through connect_error.
    with contextlib.suppress(socketio.exceptions.ConnectionError):
        await asyncio.wait_for(
            client.connect(
                url,
                headers=headers,
                auth={"visit_id": visit_id},
                namespaces=["/visit"],
                transports=["websocket"],
                wait_timeout=10,
                socketio_path=path.strip("/"),
            ),
            10,
        )
    return client, await asyncio.wait_for(answer, 10)


async def test_visits_spread_over_the_nodes_and_sockets_reach_the_owner_through_nginx(
    cluster: nginx.Cluster, process_env, waiting: WaitingFactory, sockets
):
    await wait_for(
        lambda: both_registered(process_env, set(cluster.nodes)), 15, "three fresh entries"
    )
    visits = []
    for _ in range(9):
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            visits.append(await admitted_visit(cluster.url, waiting, http, sockets))

    # Nine visits placed in a row: each counts on its node at once, so they spread 3/3/3.
    placements = {}
    async with aiohttp.ClientSession() as http:
        for visit_id, headers in visits:
            async with http.post(
                f"{cluster.url}/api/visits/{visit_id}/placement", headers=headers
            ) as resp:
                assert resp.status == 200, await resp.text()
                placements[visit_id] = await resp.json()
    assert Counter(p["node"] for p in placements.values()) == {n: 3 for n in cluster.nodes}

    visit_id, headers = visits[0]
    owner = placements[visit_id]
    assert owner["socket_path"] == f"/node/{owner['node']}/socket.io"
    # The visit page carries where its socket goes.
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{cluster.url}/visit/{visit_id}", headers=headers) as resp,
    ):
        assert resp.status == 200
        page = await resp.text()
    assert re.search(rf'data-socket-path="{re.escape(owner["socket_path"])}"', page)

    # Through nginx's node path the provider's socket reaches the owner and joins.
    client, (kind, data) = await visit_socket(cluster.url, owner["socket_path"], headers, visit_id)
    try:
        assert kind == "joined" and data["role"] == "provider"
    finally:
        await client.disconnect()

    # Another node's path: refused with wrong_node, naming the owner and its path.
    other = next(n for n in cluster.nodes if n != owner["node"])
    client, (kind, data) = await visit_socket(
        cluster.url, f"/node/{other}/socket.io", headers, visit_id
    )
    await client.disconnect()
    assert kind == "refused"
    refusal = data["data"]  # the browser reads it as `error.data`
    assert refusal["code"] == "wrong_node"
    assert (refusal["node"], refusal["socket_path"]) == (owner["node"], owner["socket_path"])

"""Video visits on three real app nodes (PostgreSQL + Redis) behind a real nginx, in real
Chromium: a patient and a provider on different nodes, the owner killed, drained, and Redis out.

The nginx is deploy/nginx.conf rendered for loopback (tests/support/nginx.py). Each test uses
one browser with two contexts (the patient's and the provider's).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from redis.asyncio import Redis

from tests.e2e.test_visit import remote, sees_and_hears
from tests.e2e.test_waiting_room import check_in, sign_in
from tests.signaling import conftest as signaling_fixtures
from tests.signaling.conftest import Visitable, WaitingFactory
from tests.signaling.test_nodes import admitted_visit, both_registered
from tests.support import nginx
from tests.support.servers import free_port, redis_server
from tests.support.waiting import wait_for

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.skipif(
        not (os.environ.get("REDIS_URL") and os.environ.get("DATABASE_URL")),
        reason="needs REDIS_URL and DATABASE_URL (the at-scale pass of the suite)",
    ),
    pytest.mark.skipif(nginx.executable() is None, reason="nginx is not installed"),
]

sockets = signaling_fixtures.sockets  # Socket.IO test clients (admitting a visit)

DRAIN_SECONDS = 15
NODE_SETTINGS = {
    "OPENCONSULT_RTC_LOOPBACK": "true",  # ICE over loopback, as the in-process e2e tests
    "OPENCONSULT_DRAIN_TIMEOUT_SECONDS": str(DRAIN_SECONDS),
}

# Every text the status line shows, kept by the page (a "Reconnecting…" may last a moment).
STATUS_LOG = """
() => {
  window.statusLog = [];
  const line = document.getElementById("visit-status");
  new MutationObserver(() => window.statusLog.push(line.textContent))
    .observe(line, { childList: true, characterData: true, subtree: true });
}
"""


@pytest.fixture
def settings(settings_factory):
    return settings_factory(background_tasks=False, rtc_loopback=True)


@pytest.fixture
def waiting(db, factory, settings) -> WaitingFactory:
    return WaitingFactory(db, factory, settings)


@pytest.fixture
def cluster(process_env: dict[str, str]) -> Iterator[nginx.Cluster]:
    with nginx.node_cluster(process_env, **NODE_SETTINGS) as cluster:
        yield cluster


async def new_context(browser: Browser, base: str) -> BrowserContext:
    ctx = await browser.new_context(base_url=base)
    ctx.set_default_timeout(20_000)
    return ctx


async def in_visit(
    patient_ctx: BrowserContext, provider_ctx: BrowserContext, v: Visitable
) -> tuple[Page, Page]:
    """The patient checked in and admitted (warm connections and all); both pages on the visit,
    seeing and hearing each other."""
    provider = await provider_ctx.new_page()
    await sign_in(provider, v.provider, "/provider/queue")
    patient = await patient_ctx.new_page()
    await check_in(patient, v.token)
    name = f"{v.patient.given_name} {v.patient.family_name}"
    await provider.get_by_role("button", name=f"Admit {name}").click()
    await provider.wait_for_url("**/visit/*", timeout=20_000)
    await patient.wait_for_url("**/visit/*", timeout=20_000)
    await sees_and_hears(provider, "the patient", limit=30)
    await sees_and_hears(patient, "the provider", limit=30)
    for page in (patient, provider):
        await page.evaluate(STATUS_LOG)
    return patient, provider


def visit_of(page: Page) -> str:
    return page.url.rstrip("/").rsplit("/", 1)[-1]


async def owner_of(env: dict[str, str], visit_id: str) -> str | None:
    """The node the registry names as the visit's owner (None: unplaced, or Redis out)."""
    redis = Redis.from_url(env["REDIS_URL"])
    try:
        value = await redis.get(f"{env['OPENCONSULT_REDIS_KEY_PREFIX']}visit-node:{visit_id}")
    finally:
        await redis.aclose()
    return value.decode().split("|", 1)[0] if value else None


async def on_node(page: Page, node_id: str, limit: float = 30) -> None:
    """The page's visit socket goes to `node_id`, and picture and sound come through it."""
    await wait_for(
        lambda: _socket_on(page, node_id), limit, f"the page's socket to move to {node_id}"
    )
    await sees_and_hears(page, f"the other side via {node_id}", limit=limit)


async def _socket_on(page: Page, node_id: str) -> bool:
    return (await remote(page)).get("socketPath") == f"/node/{node_id}/socket.io/"


async def status_log(page: Page) -> list[str]:
    log: list[str] = await page.evaluate("() => window.statusLog || []")
    return log


async def test_patient_through_node_1_provider_through_node_2_see_and_hear_each_other(
    browser: Browser, cluster: nginx.Cluster, process_env, waiting: WaitingFactory
):
    await wait_for(lambda: both_registered(process_env, set(cluster.nodes)), 15, "entries")
    urls = {i: s.url for i, s in cluster.nodes.items()}
    with ExitStack() as stack:
        # Two more proxies from the same config: pages and API pinned to one node each.
        via_1 = stack.enter_context(nginx.nginx_proxy(urls, pages_via=["app1"]))
        via_2 = stack.enter_context(nginx.nginx_proxy(urls, pages_via=["app2"]))
        patient_ctx = await new_context(browser, via_1.url)
        provider_ctx = await new_context(browser, via_2.url)
        try:
            v = await waiting.visitable()
            patient, provider = await in_visit(patient_ctx, provider_ctx, v)
            owner = await owner_of(process_env, visit_of(patient))
            assert owner in cluster.nodes
            # Both sockets reached the owner, whichever node served their pages: through the
            # owner's own path, or (a warm connection that moved into the visit as is, on the
            # node it waited on, which then took the visit) the one its page came through.
            for page, via in ((patient, "app1"), (provider, "app2")):
                path = (await remote(page))["socketPath"]
                assert path == f"/node/{owner}/socket.io/" or (
                    path == "/socket.io" and via == owner
                ), (path, via, owner)
            name = f"{v.patient.given_name} {v.patient.family_name}"
            await expect(provider.locator("#visit-status")).to_contain_text(
                f"You can see and hear {name}"
            )
            # Chat crosses too.
            await patient.get_by_label("Chat message").fill("hello across nodes")
            await patient.get_by_label("Chat message").press("Enter")
            await expect(provider.locator("#chat-log")).to_contain_text("hello across nodes")
        finally:
            await patient_ctx.close()
            await provider_ctx.close()


@pytest.fixture
async def pages(
    browser: Browser, cluster: nginx.Cluster
) -> AsyncIterator[tuple[BrowserContext, BrowserContext]]:
    patient_ctx = await new_context(browser, cluster.url)
    provider_ctx = await new_context(browser, cluster.url)
    yield patient_ctx, provider_ctx
    await patient_ctx.close()
    await provider_ctx.close()


async def test_owner_killed_both_pages_get_video_back_and_chat_survives(
    pages, cluster: nginx.Cluster, process_env, waiting: WaitingFactory
):
    await wait_for(lambda: both_registered(process_env, set(cluster.nodes)), 15, "entries")
    v = await waiting.visitable()
    patient, provider = await in_visit(*pages, v)
    visit_id = visit_of(patient)
    owner = await owner_of(process_env, visit_id)
    assert owner in cluster.nodes
    await patient.get_by_label("Chat message").fill("before the failover")
    await patient.get_by_label("Chat message").press("Enter")
    await expect(provider.locator("#chat-log")).to_contain_text("before the failover")

    killed = time.monotonic()
    process = cluster.nodes[owner].process
    assert process is not None
    process.send_signal(signal.SIGKILL)
    new_owner = await wait_for(
        lambda: _moved(process_env, visit_id, owner), 30, "the visit to be placed again"
    )
    await asyncio.gather(on_node(patient, new_owner), on_node(provider, new_owner))
    elapsed = time.monotonic() - killed
    print(f"\nfailover: kill -9 of {owner} -> video on both pages via {new_owner}: {elapsed:.2f} s")

    for page in (patient, provider):
        assert any("Reconnecting" in text for text in await status_log(page))
    # The chat so far came back from the database with the new node's welcome.
    await expect(provider.locator("#chat-log")).to_contain_text("before the failover")
    await provider.get_by_label("Chat message").fill("after the failover")
    await provider.get_by_label("Chat message").press("Enter")
    await expect(patient.locator("#chat-log")).to_contain_text("after the failover")


async def _moved(env: dict[str, str], visit_id: str, dead: str) -> str | None:
    owner = await owner_of(env, visit_id)
    return owner if owner not in (None, dead) else None


async def test_owner_drained_the_visit_goes_on_new_visits_go_elsewhere_then_it_exits(
    pages, cluster: nginx.Cluster, process_env, waiting: WaitingFactory, sockets
):
    await wait_for(lambda: both_registered(process_env, set(cluster.nodes)), 15, "entries")
    v = await waiting.visitable()
    patient, provider = await in_visit(*pages, v)
    owner = await owner_of(process_env, visit_of(patient))
    assert owner in cluster.nodes
    process = cluster.nodes[owner].process
    assert process is not None

    process.send_signal(signal.SIGTERM)
    async with aiohttp.ClientSession() as http:
        await wait_for(
            lambda: _readyz_is(http, cluster.nodes[owner].url, 503), 10, f"{owner} draining"
        )
    # The live visit goes on where it is: picture and sound keep coming.
    await sees_and_hears(provider, "the patient on the draining node")
    await sees_and_hears(patient, "the provider on the draining node")
    assert process.poll() is None

    # A new visit, asked for through the proxy (any node), is placed elsewhere.
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        new_visit, headers = await admitted_visit(cluster.url, waiting, http, sockets)
        async with http.post(
            f"{cluster.url}/api/visits/{new_visit}/placement", headers=headers
        ) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["node"] != owner

    # The drain timeout passes with the visit still live: the node exits, cleanly.
    code = await asyncio.to_thread(process.wait, DRAIN_SECONDS + 15)
    assert code == 0
    # The pages move on to a node that serves.
    new_owner = await wait_for(
        lambda: _moved(process_env, visit_of(patient), owner), 30, "the visit placed again"
    )
    await asyncio.gather(on_node(patient, new_owner), on_node(provider, new_owner))


async def _readyz_is(http: aiohttp.ClientSession, base: str, status: int) -> bool:
    try:
        async with http.get(f"{base}/readyz") as resp:
            return resp.status == status
    except aiohttp.ClientError:
        return False


@pytest.fixture
def own_redis_port() -> int:
    return free_port()


async def test_redis_out_for_ten_seconds_the_visit_keeps_video_joins_say_try_again(
    browser: Browser, process_env, own_redis_port: int, waiting: WaitingFactory, sockets
):
    port = own_redis_port
    with ExitStack() as stack:
        redis_url = stack.enter_context(redis_server(port))
        env = dict(process_env, REDIS_URL=redis_url)
        cluster = stack.enter_context(nginx.node_cluster(env, **NODE_SETTINGS))
        await wait_for(lambda: both_registered(env, set(cluster.nodes)), 15, "entries")
        patient_ctx = await new_context(browser, cluster.url)
        provider_ctx = await new_context(browser, cluster.url)
        later_ctx = await new_context(browser, cluster.url)
        try:
            v = await waiting.visitable()
            patient, provider = await in_visit(patient_ctx, provider_ctx, v)
            # A second visit, admitted before the outage but not joined yet; its patient's
            # browser has their check-in cookie.
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as http:
                later_visit, later_headers = await admitted_visit(
                    cluster.url, waiting, http, sockets
                )
            await later_ctx.add_cookies(
                [{"name": c.key, "value": c.value, "url": cluster.url} for c in jar]
            )

            await _stop_redis(port)
            stopped = time.monotonic()
            # Joining the second visit now: its page says to try again, in words.
            joining = await later_ctx.new_page()
            await joining.goto(f"/visit/{later_visit}")
            await expect(joining.locator("#visit-status")).to_contain_text(
                "try joining again", timeout=20_000
            )
            # The live visit keeps its picture and sound all through the outage.
            while time.monotonic() - stopped < 10:
                await sees_and_hears(provider, "the patient while Redis is out")
                await sees_and_hears(patient, "the provider while Redis is out")

            # Redis back on the same port, nothing restarted: the waiting page joins by
            # itself, and a new visit is placed.
            with redis_server(port):
                await expect(joining.locator("#visit-status")).to_contain_text(
                    "Connected", timeout=30_000
                )
                async with aiohttp.ClientSession() as http:
                    await wait_for(
                        lambda: _placed(http, cluster.url, later_visit, later_headers),
                        30,
                        "placement after the outage",
                    )
                await sees_and_hears(provider, "the patient after the outage")
        finally:
            for ctx in (patient_ctx, provider_ctx, later_ctx):
                await ctx.close()


async def _placed(
    http: aiohttp.ClientSession, base: str, visit_id: str, headers: dict[str, str]
) -> Any:
    async with http.post(f"{base}/api/visits/{visit_id}/placement", headers=headers) as resp:
        return await resp.json() if resp.status == 200 else None


async def _stop_redis(port: int) -> None:
    redis = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        await redis.shutdown(nosave=True)
    except Exception:
        pass  # the connection drops as the server exits
    finally:
        await redis.aclose()

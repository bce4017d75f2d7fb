"""The video visit across real networks: two Chromiums behind a NAT, the app node behind a 1:1
NAT of its own (tests/support/netns.py draws it), with coturn where UDP is blocked.

The browsers run inside the client namespace (Playwright launches a wrapper that enters it);
the app node (`python -m app serve`) and coturn run in the server namespace. Pages load from the
server's public address over plain HTTP, which Chromium treats as secure for this one origin
(`--unsafely-treat-insecure-origin-as-secure`), so the camera may open as on an HTTPS site.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.conftest import TEST_SECRET
from tests.e2e.test_visit import sees_and_hears, wait_remote
from tests.e2e.test_waiting_room import check_in, sign_in
from tests.signaling.conftest import WaitingFactory
from tests.support import chromium, coturn, netns, servers

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.skipif(netns.unavailable() is not None, reason=str(netns.unavailable())),
    # What crosses the network does not depend on the database: these run once, in the
    # embedded pass (each takes a minute; the node here runs without Redis either way).
    pytest.mark.skipif(
        bool(os.environ.get("DATABASE_URL")),
        reason="network paths are tested once, in the SQLite pass of the suite",
    ),
]
needs_coturn = pytest.mark.skipif(
    coturn.executable() is None, reason="coturn is not installed (apt-get install -y coturn)"
)

MEDIA_PORT = 10000  # OPENCONSULT_RTC_UDP_PORT: the one UDP port of the relay's media
TURN_SECRET = "turn-secret-" + secrets.token_hex(16)
SEE_AND_HEAR_SECONDS = 45  # from the admit, for TURN over TCP on a loaded machine


@pytest.fixture
def settings(settings_factory):
    return settings_factory(background_tasks=False)


@pytest.fixture
def waiting(db, factory, settings) -> WaitingFactory:
    return WaitingFactory(db, factory, settings)


@pytest.fixture
def node_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """A server process's settings on this test's database, as the server namespace reaches
    it; no Redis (one node: the in-process Socket.IO manager)."""
    url = netns.reachable_database_url(database_url)
    if url is None:
        pytest.skip("the test database cannot be reached from a network namespace")
    return servers.server_env(url, tmp_path / "data", OPENCONSULT_SECRET_KEY=TEST_SECRET)


@pytest.fixture
def network() -> Iterator[netns.Network]:
    with netns.nat_network() as network:
        yield network


@pytest.fixture
def routed_network() -> Iterator[netns.Network]:
    with netns.nat_network(server_routed=True) as network:
        yield network


@pytest.fixture
def udp_blocked_network() -> Iterator[netns.Network]:
    with netns.nat_network(block_udp=True) as network:
        yield network


@asynccontextmanager
async def browser_in(
    network: netns.Network, origin: str, tmp_path: Path, home: Path | None = None
) -> AsyncIterator[Browser]:
    """Chromium inside the client namespace; `home` is its HOME (its NSS database)."""
    wrapper = netns.chromium_wrapper(tmp_path, network.client, chromium.executable())
    args = [*chromium.ARGS, f"--unsafely-treat-insecure-origin-as-secure={origin}"]
    env = dict(os.environ, HOME=str(home or tmp_path / "home"))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(wrapper), args=args, env=env, timeout=60_000
        )
        try:
            yield browser
        finally:
            await browser.close()


async def visit_through(browser: Browser, base: str, waiting: WaitingFactory) -> tuple[Page, Page]:
    """A patient checked in and admitted, both seeing and hearing each other (or it fails):
    test_visit's `in_visit`, with limits for TURN over TCP on a loaded machine."""
    v = await waiting.visitable()
    patient_ctx = await browser.new_context(base_url=base)
    provider_ctx = await browser.new_context(base_url=base)
    for ctx in (patient_ctx, provider_ctx):
        ctx.set_default_timeout(30_000)
    started = time.monotonic()
    provider = await provider_ctx.new_page()
    await sign_in(provider, v.provider, "/provider/queue")
    patient = await patient_ctx.new_page()
    await check_in(patient, v.token)
    checked_in = time.monotonic()
    name = f"{v.patient.given_name} {v.patient.family_name}"
    await provider.get_by_role("button", name=f"Admit {name}").click()
    await provider.wait_for_url("**/visit/*", timeout=30_000)
    await patient.wait_for_url("**/visit/*", timeout=30_000)
    await sees_and_hears(provider, "the patient", limit=SEE_AND_HEAR_SECONDS)
    await sees_and_hears(patient, "the provider", limit=SEE_AND_HEAR_SECONDS)
    print(
        f"checked in and signed in {checked_in - started:.1f} s, "
        f"admit to seeing and hearing {time.monotonic() - checked_in:.1f} s"
    )
    return patient, provider


async def route(page: Page) -> dict[str, Any]:
    """The selected ICE candidate pair of the page's connection to the relay."""
    seen = await wait_remote(page, lambda s: s.get("route"), 15, "a selected candidate pair")
    selected: dict[str, Any] = seen["route"]
    return selected


def relay_udp_ports(network: netns.Network, pid: int) -> set[int]:
    """The UDP ports the app node's process has open, as `ss` lists them."""
    listing = network.server.run("ss", "-u", "-a", "-n", "-p")
    ports = set()
    for line in listing.splitlines()[1:]:
        if f"pid={pid}," in line:
            local = line.split()[3]  # State Recv-Q Send-Q Local:Port Peer:Port Process
            ports.add(int(local.rsplit(":", 1)[1]))
    return ports


async def test_visit_through_nat_on_one_announced_media_port(
    network: netns.Network, node_env: dict[str, str], waiting: WaitingFactory, tmp_path: Path
):
    """Both browsers behind a masquerading router; the node behind a 1:1 NAT announces its
    public address and serves all media on one UDP port: that is all a firewall opens."""
    media, other = "media-port", "other-udp"
    netns.count_packets(network.server, "INPUT", media, "-p", "udp", "--dport", str(MEDIA_PORT))
    netns.count_packets(network.server, "INPUT", other, "-p", "udp")
    env = dict(
        node_env,
        OPENCONSULT_RTC_UDP_PORT=str(MEDIA_PORT),
        OPENCONSULT_RTC_ANNOUNCED_IPS=network.public_ip,
    )
    with netns.app_node(network, env) as node:
        async with browser_in(network, node.url, tmp_path) as browser:
            patient, provider = await visit_through(browser, node.url, waiting)
            for page in (patient, provider):
                selected = await route(page)
                # Straight to the relay's announced address, not through any TURN server.
                assert selected["localType"] != "relay", selected
                assert selected["remoteAddress"] == network.public_ip, selected
                assert selected["remotePort"] == MEDIA_PORT, selected
            assert relay_udp_ports(network, node.pid) == {MEDIA_PORT}
    # Every UDP packet that reached the node went to the media port (the accounting rules see
    # each packet once: the first rule returns what it matched).
    assert netns.counted(network.server, "INPUT", media) > 100
    assert netns.counted(network.server, "INPUT", other) == 0


async def test_visit_from_behind_nat_straight_to_the_relay(
    routed_network: netns.Network,
    node_env: dict[str, str],
    waiting: WaitingFactory,
    tmp_path: Path,
):
    """No STUN, no TURN: the browsers behind the masquerade reach the relay's own address over
    UDP, and the relay answers them at the router's address it sees (peer-reflexive)."""
    network = routed_network
    with netns.app_node(network, node_env) as node:
        async with browser_in(network, node.url, tmp_path) as browser:
            for page in await visit_through(browser, node.url, waiting):
                selected = await route(page)
                # "prflx" when the pair uses the address the NAT gave it, as the relay saw it.
                assert selected["localType"] in ("host", "prflx"), selected
                assert selected["protocol"] == "udp", selected
                assert selected["remoteAddress"] == network.server_ip, selected


@asynccontextmanager
async def turn_visit(
    network: netns.Network,
    node_env: dict[str, str],
    waiting: WaitingFactory,
    tmp_path: Path,
    *,
    turn_urls: str,
    tls: coturn.Certificates | None = None,
    **extra: str,
) -> AsyncIterator[tuple[Page, Page]]:
    """coturn and the node in the server namespace; a visit whose browsers know only TURN."""
    env = dict(
        node_env, OPENCONSULT_TURN_URLS=turn_urls, OPENCONSULT_TURN_SECRET=TURN_SECRET, **extra
    )
    home = tmp_path / "home"
    if tls is not None:
        coturn.browser_home_trusting(home, tls.ca)
    with (
        coturn.turn_server(
            network,
            tmp_path,
            secret=TURN_SECRET,
            allowed_peer=network.server_ip,
            tls=(tls.cert, tls.key) if tls else None,
        ),
        netns.app_node(network, env) as node,
    ):
        async with browser_in(network, node.url, tmp_path, home) as browser:
            yield await visit_through(browser, node.url, waiting)


def no_udp_left_the_client(network: netns.Network) -> None:
    """The client network's UDP drop rule saw packets (the browsers tried), and let none out."""
    listing = network.client.iptables("-L", "OUTPUT", "-n", "-v", "-x")
    dropped = [line for line in listing.splitlines() if " DROP " in line]
    assert dropped and int(dropped[0].split()[0]) > 0, listing


@needs_coturn
async def test_visit_through_turn_over_tcp_when_udp_is_blocked(
    udp_blocked_network: netns.Network,
    node_env: dict[str, str],
    waiting: WaitingFactory,
    tmp_path: Path,
):
    network = udp_blocked_network
    url = f"turn:{network.public_ip}:{coturn.TURN_PORT}?transport=tcp"
    async with turn_visit(network, node_env, waiting, tmp_path, turn_urls=url) as pages:
        for page in pages:
            selected = await route(page)
            assert selected["localType"] == "relay", selected
            assert selected["relayProtocol"] == "tcp", selected
    no_udp_left_the_client(network)


@needs_coturn
async def test_visit_through_turn_over_tls_trusted_like_a_real_browser(
    udp_blocked_network: netns.Network,
    node_env: dict[str, str],
    waiting: WaitingFactory,
    tmp_path: Path,
):
    """turns: on 5349 with a certificate from the clinic's own CA, which the browser trusts
    through its NSS database (no flag that skips certificate checks). Without the CA there
    the same visit never connects (tried by hand: the pages stay "connecting"), so the check
    is real; it is not a test of its own because only a timeout could show it."""
    network = udp_blocked_network
    tls = coturn.make_test_ca(tmp_path, network.public_ip)
    url = f"turns:{network.public_ip}:{coturn.TLS_PORT}?transport=tcp"
    async with turn_visit(network, node_env, waiting, tmp_path, turn_urls=url, tls=tls) as pages:
        for page in pages:
            selected = await route(page)
            assert selected["localType"] == "relay", selected
            assert selected["relayProtocol"] == "tls", selected
    no_udp_left_the_client(network)


@needs_coturn
async def test_relay_only_sends_media_through_turn_although_udp_works(
    routed_network: netns.Network,
    node_env: dict[str, str],
    waiting: WaitingFactory,
    tmp_path: Path,
):
    """The relay's own address is reachable over UDP here (a routed network): only the policy
    keeps the browsers on TURN."""
    network = routed_network
    url = f"turn:{network.public_ip}:{coturn.TURN_PORT}"  # UDP to coturn: nothing blocks it
    async with turn_visit(
        network, node_env, waiting, tmp_path, turn_urls=url, OPENCONSULT_RTC_RELAY_ONLY="true"
    ) as (patient, provider):
        for page in (patient, provider):
            selected = await route(page)
            assert selected["localType"] == "relay", selected
            assert selected["relayProtocol"] == "udp", selected
        policy = await patient.evaluate(
            """async () => {
              const id = location.pathname.split("/").pop();
              return (await (await fetch(`/api/visits/${id}/ice-servers`)).json());
            }"""
        )
        assert policy["ice_transport_policy"] == "relay"

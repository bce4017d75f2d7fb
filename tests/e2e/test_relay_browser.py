"""Headless Chromium participants through the real relay: picture and sound both ways."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page

from signaling.relay import MediaRelay
from tests.support.media_ports import media_ports
from tests.support.relay_harness import harness_app

pytestmark = pytest.mark.e2e


async def _open(browser: Browser, server: TestServer, room: str, who: str) -> Page:
    context = await browser.new_context()
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await page.goto(str(server.make_url(f"/relay/?room={room}&who={who}")))
    await page.wait_for_function(
        "window.harness && ['connected', 'error', 'failed'].includes(window.harness.state)",
        timeout=15_000,
    )
    state = await page.evaluate("[window.harness.state, window.harness.error]")
    assert state[0] == "connected", state
    return page


async def _remote(page: Page, remote: str) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate("(id) => window.harness.remote(id)", remote)
    return result


async def _wait_remote(
    page: Page, remote: str, check: Any, limit: float, what: str
) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while True:
        seen = await _remote(page, remote)
        if check(seen):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit}s waiting for {what}: {seen}")
        await asyncio.sleep(0.1)


@pytest.fixture
async def relay_server(aiohttp_server: Any) -> tuple[TestServer, MediaRelay]:
    relay = MediaRelay(ice_servers=[], media_ports=media_ports())
    server = await aiohttp_server(harness_app(relay), host="127.0.0.1")
    return server, relay


async def test_patient_and_provider_see_and_hear_each_other(
    browser: Browser, relay_server: tuple[TestServer, MediaRelay]
) -> None:
    server, relay = relay_server
    patient = await _open(browser, server, "visit-1", "patient")
    provider = await _open(browser, server, "visit-1", "provider")

    for page, remote in ((patient, "provider"), (provider, "patient")):
        first = await _wait_remote(
            page, remote, lambda s: s["videoWidth"] > 0 and s["framesDecoded"] > 0, 10, "video"
        )
        await asyncio.sleep(1.0)
        later = await _wait_remote(page, remote, lambda s: True, 1, "stats")
        assert later["framesDecoded"] > first["framesDecoded"] + 5, (first, later)
        assert later["audioBytes"] > first["audioBytes"], (first, later)
        print(f"{remote} -> page: {later}")

    # Chromium's VP8 and Opus went through the packet path: no frame assembled, no decode,
    # no encode on the relay.
    for who in ("patient", "provider"):
        participant = relay.participant("visit-1", who)
        assert participant is not None
        for published in participant.published.values():
            assert published.packet_tap.packets > 0 and not published.packet_tap.full_receive
            assert published.tap.frames_tapped == 0 and published.tap.frames_to_decoder == 0
        bound = [s for s in participant.all_slot_tracks() if s.source is not None]
        assert {s.kind for s in bound} == {"audio", "video"}
        assert all(s.path == "packet" and s.packets_forwarded > 0 for s in bound)
        assert all(s.frames_transcoded == 0 for s in bound)

    # The browsers read the relay's sender reports for what they receive, and estimate their
    # own sending bandwidth from the relay's feedback.
    for page, remote in ((patient, "provider"), (provider, "patient")):
        await _wait_remote(
            page,
            remote,
            lambda s: s["reportedSent"] > 0 and s["outgoingBitrate"] > 0,
            10,
            "sender reports and a bandwidth estimate",
        )

    await relay.end("visit-1")
    for page in (patient, provider):
        await page.wait_for_function(
            "['disconnected', 'failed', 'closed'].includes(window.harness.pc.connectionState)",
            timeout=15_000,
        )
        await page.context.close()


async def test_late_guest_gets_a_picture(
    browser: Browser, relay_server: tuple[TestServer, MediaRelay]
) -> None:
    server, _ = relay_server
    patient = await _open(browser, server, "visit-2", "patient")
    provider = await _open(browser, server, "visit-2", "provider")
    await _wait_remote(provider, "patient", lambda s: s["framesDecoded"] > 30, 10, "patient video")

    guest = await _open(browser, server, "visit-2", "interpreter")
    connected_at = await guest.evaluate("window.harness.connectedAt")
    # Waited for generously and the time printed: tests never assert a duration.
    await _wait_remote(guest, "patient", lambda s: s["framesDecoded"] > 0, 30, "guest's picture")
    elapsed_ms = await guest.evaluate("performance.now()") - connected_at
    print(f"guest first decoded frame within {elapsed_ms:.0f} ms of connecting")
    for page in (patient, provider, guest):
        await page.context.close()

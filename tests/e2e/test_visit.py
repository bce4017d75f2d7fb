"""The video visit in two real browsers through the real relay: admit, see and hear, reload, end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from signaling.relay.relay import MEDIA_RELAY
from signaling.server import SOCKET_SERVER
from tests.e2e.test_waiting_room import check_in, sign_in
from tests.signaling.conftest import Visitable, WaitingFactory
from tests.support.media_ports import mode as media_ports_mode


@pytest.fixture
def settings(settings_factory):
    return settings_factory(background_tasks=False, rtc_loopback=True)


@pytest.fixture
def waiting(db, factory, settings) -> WaitingFactory:
    return WaitingFactory(db, factory, settings)


@pytest.fixture
async def contexts(
    browser: Browser, live_server
) -> AsyncIterator[tuple[BrowserContext, BrowserContext]]:
    base = str(live_server.make_url("")).rstrip("/")
    patient = await browser.new_context(base_url=base)
    provider = await browser.new_context(base_url=base)
    for ctx in (patient, provider):
        ctx.set_default_timeout(15_000)
    yield patient, provider
    await patient.close()
    await provider.close()


async def remote(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate(
        "() => window.openconsultVisit ? window.openconsultVisit.remoteStats() : null"
    )
    return result or {}


async def wait_remote(page: Page, check: Any, limit: float, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while True:
        seen = await remote(page)
        if seen and check(seen):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit}s waiting for {what}: {seen}")
        await asyncio.sleep(0.2)


async def sees_and_hears(page: Page, who: str, limit: float = 20) -> None:
    """Picture (decoded frames keep coming) and sound (audio bytes keep coming) from the other."""
    first = await wait_remote(
        page,
        lambda s: s["videoWidth"] > 0 and s["framesDecoded"] > 0 and s["audioBytes"] > 0,
        limit,
        f"{who}'s picture and sound",
    )
    await wait_remote(
        page,
        lambda s: (
            s["framesDecoded"] > first["framesDecoded"] + 10
            and s["audioBytes"] > first["audioBytes"]
        ),
        10,
        f"{who}'s picture and sound to keep coming",
    )


async def in_visit(
    patient_ctx: BrowserContext, provider_ctx: BrowserContext, v: Visitable
) -> tuple[Page, Page]:
    """The patient checked in and admitted; both pages on the visit, seeing each other."""
    provider = await provider_ctx.new_page()
    await sign_in(provider, v.provider, "/provider/queue")
    patient = await patient_ctx.new_page()
    await check_in(patient, v.token)
    name = f"{v.patient.given_name} {v.patient.family_name}"
    await provider.get_by_role("button", name=f"Admit {name}").click()
    await provider.wait_for_url("**/visit/*", timeout=15_000)
    await patient.wait_for_url("**/visit/*", timeout=15_000)
    await sees_and_hears(provider, "the patient")
    await sees_and_hears(patient, "the provider")
    return patient, provider


async def test_admitted_patient_and_provider_see_and_hear_each_other_reload_and_end(
    contexts, waiting: WaitingFactory, live_server
):
    patient_ctx, provider_ctx = contexts
    v = await waiting.visitable()
    patient, provider = await in_visit(patient_ctx, provider_ctx, v)
    if media_ports_mode() == "port":
        # The production configuration: both browsers' media came through the one UDP port.
        shared = live_server.app[MEDIA_RELAY].media_ports.shared
        assert shared is not None
        assert len(shared.ufrags) >= 2 and len(shared.addresses) >= 2
    name = f"{v.patient.given_name} {v.patient.family_name}"
    for page in (patient, provider):
        await expect(page.get_by_role("heading", name="Visit in progress")).to_be_visible()
    await expect(provider.locator("#visit-status")).to_contain_text(f"You can see and hear {name}")

    # Chat both ways, kept with the visit.
    await patient.get_by_label("Chat message").fill("I can see you")
    await patient.get_by_label("Chat message").press("Enter")
    await expect(provider.locator("#chat-log")).to_contain_text("I can see you")

    # Mute is a labelled toggle.
    mute = patient.get_by_role("button", name="Mute microphone")
    await mute.click()
    await expect(patient.get_by_role("button", name="Unmute microphone")).to_have_attribute(
        "aria-pressed", "true"
    )
    await patient.get_by_role("button", name="Unmute microphone").click()

    # "Leave" is not the end: the other side is told they are waiting, and rejoining works.
    await provider.get_by_role("button", name="Leave").click()
    await expect(provider.locator("#visit-status")).to_contain_text("You left the visit")
    await expect(patient.locator("#visit-status")).to_contain_text("Waiting for")
    await expect(provider.get_by_role("button", name="Rejoin the visit")).to_be_focused()
    await provider.keyboard.press("Enter")
    await sees_and_hears(patient, "the provider after rejoining", limit=10)
    await sees_and_hears(provider, "the patient after rejoining", limit=10)

    # The patient reloads: a new peer connection and offer bring the picture back.
    await patient.reload()
    await expect(patient.get_by_role("heading", name="Visit in progress")).to_be_visible()
    started = time.monotonic()
    await sees_and_hears(patient, "the provider after the reload", limit=30)
    await sees_and_hears(provider, "the patient after the reload", limit=30)
    print(f"picture back both ways {time.monotonic() - started:.2f} s after the reload")
    await expect(patient.locator("#chat-log")).to_contain_text("I can see you")

    # Only the provider can end; it ends for both.
    await expect(patient.get_by_role("button", name="End visit")).to_have_count(0)
    provider.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await provider.get_by_role("button", name="End visit").click()
    await expect(patient.locator("#visit-status")).to_contain_text("The visit has ended")
    await expect(patient.get_by_role("heading", name="Visit ended")).to_be_visible()
    await expect(provider.locator("#visit-status")).to_contain_text("The visit has ended")
    gone = await remote(patient)
    assert gone["connection"] == "none"

    await patient.reload()
    await expect(patient.get_by_role("heading", name="Visit ended")).to_be_visible()


async def test_the_visit_recovers_after_dropped_connections(
    contexts, waiting: WaitingFactory, live_server
):
    patient_ctx, provider_ctx = contexts
    v = await waiting.visitable()
    provider = await provider_ctx.new_page()
    await sign_in(provider, v.provider, "/provider/queue")
    patient = await patient_ctx.new_page()
    await check_in(patient, v.token)
    name = f"{v.patient.given_name} {v.patient.family_name}"
    await provider.get_by_role("button", name=f"Admit {name}").click()
    await patient.wait_for_url("**/visit/*", timeout=15_000)
    visit_id = patient.url.rsplit("/", 1)[1]
    await sees_and_hears(patient, "the provider")

    # The signalling connection drops (server side): the page reconnects and offers again.
    sio = live_server.app[SOCKET_SERVER]
    attendees = sio.namespace_handlers["/visit"]._attendees
    patient_sid = next(sid for sid, who in attendees.items() if who.role == "patient")
    await sio.disconnect(patient_sid, namespace="/visit")
    await sees_and_hears(patient, "the provider after the socket dropped", limit=15)

    # The media connection drops (the relay closes it). Chromium notices through ICE consent
    # checks (~8 s here, it gets no DTLS close from aiortc); then a new peer connection comes.
    await live_server.app[MEDIA_RELAY].leave(visit_id, f"patient:{v.patient.id}")
    await wait_remote(patient, lambda s: s["connection"] != "connected", 20, "the drop noticed")
    await sees_and_hears(patient, "the provider after the peer connection dropped", limit=15)
    await sees_and_hears(provider, "the patient after the peer connection dropped", limit=15)

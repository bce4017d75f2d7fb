"""Instant admit: the waiting patient's page and the provider's queue page each hold a warm
connection to the relay (nothing received), and at the admit both become the visit without
loading a page; the time from the admit click to the first remote picture on both sides is
printed."""

from __future__ import annotations

from typing import Any

from playwright.async_api import BrowserContext, Page, expect

from tests.e2e.test_visit import (  # noqa: F401
    contexts,
    remote,
    sees_and_hears,
    settings,
    wait_remote,
    waiting,
)
from tests.e2e.test_waiting_room import check_in, sign_in
from tests.signaling.conftest import WaitingFactory

# When each page first shows a remote picture (epoch ms, this machine's clock for both pages).
FIRST_FRAME = """
window.firstRemoteFrameAt = null;
document.addEventListener("loadeddata", (event) => {
  const video = event.target;
  if (window.firstRemoteFrameAt === null && video.closest && video.closest("#remote-grid")) {
    window.firstRemoteFrameAt = performance.timeOrigin + performance.now();
  }
}, true);
"""

ADMIT = """(name) => {
  const button = [...document.querySelectorAll("button")].find((b) => b.textContent === name);
  const at = performance.timeOrigin + performance.now();
  button.click();
  return at;
}"""


async def first_frame_at(page: Page) -> float:
    await page.wait_for_function("() => window.firstRemoteFrameAt !== null", timeout=15_000)
    at: float = await page.evaluate("() => window.firstRemoteFrameAt")
    return at


# A page's performance marks (clinic_queue.js, queue/warm_visit.js, visit/app.js, peer.js,
# waiting_room.js) and its first remote picture, in ms after the admit click (epoch ms).
MARKS = """(clicked) => {
  const out = {};
  for (const mark of performance.getEntriesByType("mark")) {
    out[mark.name] = Math.round(performance.timeOrigin + mark.startTime - clicked);
  }
  if (window.firstRemoteFrameAt !== null) {
    out["first-remote-frame"] = Math.round(window.firstRemoteFrameAt - clicked);
  }
  return out;
}"""


async def marks(page: Page, clicked: float) -> dict[str, int]:
    """Where one side of the admit spent its time (ms after the click)."""
    found: dict[str, int] = await page.evaluate(MARKS, clicked)
    return found


async def admit_and_time(
    patient: Page, provider: Page, name: str, *, timeline: bool = False
) -> tuple[float, float]:
    """Click Admit; seconds from the click to each side's first remote picture (and with
    `timeline`, print each page's marks after the click)."""
    clicked: float = await provider.evaluate(ADMIT, f"Admit {name}")
    await provider.wait_for_url("**/visit/*")
    patient_at, provider_at = await first_frame_at(patient), await first_frame_at(provider)
    if timeline:
        print(f"provider page (ms after the click): {await marks(provider, clicked)}")
        print(f"patient page (ms after the click): {await marks(patient, clicked)}")
    return (patient_at - clicked) / 1000, (provider_at - clicked) / 1000


async def warm(page: Page) -> dict[str, Any]:
    """The waiting (or queue) page's connection to the relay is up."""
    return await wait_remote(
        page, lambda s: s["connection"] == "connected", 15, "the warm connection"
    )


async def test_the_waiting_page_is_warm_and_becomes_the_visit_at_the_admit(
    tmp_path,
    contexts: tuple[BrowserContext, BrowserContext],  # noqa: F811
    waiting: WaitingFactory,  # noqa: F811
):
    patient_ctx, provider_ctx = contexts
    for ctx in (patient_ctx, provider_ctx):
        await ctx.add_init_script(FIRST_FRAME)
    # The provider has allowed this site their camera and microphone before (the queue page
    # never asks; without the permission it opens the visit page, as the test below walks).
    await provider_ctx.grant_permissions(["camera", "microphone"])
    v = await waiting.visitable()
    provider = await provider_ctx.new_page()
    await sign_in(provider, v.provider, "/provider/queue")
    patient = await patient_ctx.new_page()
    await check_in(patient, v.token)

    # Waiting, both sides: ICE and DTLS done, nothing received, the visit out of sight.
    await warm(patient)
    await warm(provider)
    await expect(patient.get_by_role("heading", name="Visit in progress")).to_be_hidden()
    await expect(provider.get_by_role("heading", name="Visit in progress")).to_be_hidden()
    await expect(provider.get_by_role("heading", name="My clinic queue")).to_be_visible()
    for width in (1280, 390):
        await provider.set_viewport_size({"width": width, "height": 844})
        await provider.screenshot(path=tmp_path / f"queue-warm-{width}.png", full_page=True)
    await provider.set_viewport_size({"width": 1280, "height": 844})
    await provider.evaluate("() => { window.samePage = true; }")
    assert (await remote(provider))["inboundPackets"] == 0
    for width in (1280, 390):
        await patient.set_viewport_size({"width": width, "height": 844})
        await patient.screenshot(path=tmp_path / f"waiting-{width}.png", full_page=True)
    await patient.evaluate("() => { window.samePage = true; }")
    assert (await remote(patient))["inboundPackets"] == 0

    name = f"{v.patient.given_name} {v.patient.family_name}"
    to_patient, to_provider = await admit_and_time(patient, provider, name, timeline=True)
    print(
        f"admit click -> first remote frame: patient {to_patient:.3f} s, "
        f"provider {to_provider:.3f} s"
    )

    # Both pages became the visit (no load); a reload would open the visit page itself.
    visit_url = provider.url
    assert "/visit/" in visit_url
    for page in (patient, provider):
        await expect(page.get_by_role("heading", name="Visit in progress")).to_be_visible()
        assert await page.evaluate("() => window.samePage") is True
        assert page.url == visit_url
    await expect(provider.get_by_role("heading", name="My clinic queue")).to_be_hidden()
    # The visit page's own parts for the provider: the patient's record, the consult note.
    await expect(provider.get_by_role("link", name=name)).to_be_visible()
    await expect(provider.get_by_role("heading", name="Consult note")).to_be_visible()
    await sees_and_hears(patient, "the provider")
    await sees_and_hears(provider, "the patient")
    await expect(provider.locator("#visit-status")).to_contain_text(f"You can see and hear {name}")
    await expect(patient.locator("#visit-status")).to_contain_text("You can see and hear")
    for width in (1280, 390):
        for side, page in (("patient", patient), ("provider", provider)):
            await page.set_viewport_size({"width": width, "height": 844})
            await page.screenshot(path=tmp_path / f"warm-visit-{side}-{width}.png")
    await provider.set_viewport_size({"width": 1280, "height": 844})

    # A reload of the visit keeps working the usual way.
    await patient.reload()
    await expect(patient.get_by_role("heading", name="Visit in progress")).to_be_visible()
    await sees_and_hears(patient, "the provider after the reload")

    # The provider ends the visit where they are, and goes back to their queue.
    provider.once("dialog", lambda dialog: dialog.accept())
    await provider.get_by_role("button", name="End visit").click()
    await expect(provider.get_by_role("heading", name="Visit ended")).to_be_visible()
    await expect(patient.get_by_role("heading", name="Visit ended")).to_be_visible()
    await provider.get_by_role("link", name="Back to my queue").click()
    await expect(provider.get_by_role("heading", name="My clinic queue")).to_be_visible()
    row = provider.locator(f'tr[data-appointment="{v.appointment.id}"]')
    await expect(row).to_have_attribute("data-status", "done")


# A fresh browser: the site has not asked for the camera or microphone yet. (The test browser
# runs with --use-fake-ui-for-media-stream, which answers every query with "granted".)
NOT_ASKED_YET = """
const query = navigator.permissions.query.bind(navigator.permissions);
navigator.permissions.query = (descriptor) =>
  ["camera", "microphone"].includes(descriptor.name)
    ? Promise.resolve({ state: "prompt", name: descriptor.name })
    : query(descriptor);
"""


async def test_without_the_camera_allowed_the_queue_opens_the_visit_page_at_the_admit(
    contexts: tuple[BrowserContext, BrowserContext],  # noqa: F811
    waiting: WaitingFactory,  # noqa: F811
):
    patient_ctx, provider_ctx = contexts
    v = await waiting.visitable()
    await provider_ctx.add_init_script(NOT_ASKED_YET)
    provider = await provider_ctx.new_page()
    await sign_in(provider, v.provider, "/provider/queue")
    await provider.evaluate("() => { window.samePage = true; }")
    patient = await patient_ctx.new_page()
    await check_in(patient, v.token)
    await warm(patient)
    assert await provider.evaluate("() => window.openconsultVisit === undefined")

    name = f"{v.patient.given_name} {v.patient.family_name}"
    await provider.get_by_role("button", name=f"Admit {name}").click()
    await provider.wait_for_url("**/visit/*")
    await expect(provider.get_by_role("heading", name="Visit in progress")).to_be_visible()
    assert await provider.evaluate("() => window.samePage === undefined")  # a page load
    await sees_and_hears(provider, "the patient")
    await sees_and_hears(patient, "the provider")

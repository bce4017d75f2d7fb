"""The provider's day page sends a patient a new join link (the scheduler page's module): the
new short link shows to copy, and the link the patient had stops working."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Dialog, expect

from tests.e2e.test_waiting_room import contexts, settings, sign_in, waiting
from tests.signaling.conftest import WaitingFactory

__all__ = ["contexts", "settings", "waiting"]  # fixtures this module uses


async def test_the_provider_sends_a_new_link_from_the_day_page(
    contexts, waiting: WaitingFactory, tmp_path: Path
):
    patient_ctx, provider_ctx = contexts
    v = await waiting.visitable()
    name = f"{v.patient.given_name} {v.patient.family_name}"
    patient = await patient_ctx.new_page()
    await patient.goto(f"/join/{v.token}")
    await expect(patient.locator("#checkin-open")).to_be_visible()

    provider = await provider_ctx.new_page()
    await sign_in(provider, v.provider, "/provider")
    row = provider.locator("#week-table tbody tr", has_text=name)
    send = row.get_by_role("button", name=f"Send a new link to {name}")
    await expect(send).to_be_visible()
    for width, height in ((1280, 800), (390, 844)):
        await provider.set_viewport_size({"width": width, "height": height})
        await provider.screenshot(path=tmp_path / f"provider-day-{width}.png", full_page=True)
    await provider.set_viewport_size({"width": 1280, "height": 800})

    asked: list[str] = []

    async def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    provider.once("dialog", accept)
    await send.click()
    await expect(provider.locator("#provider-message")).to_contain_text(
        f"a new link to {name}; the old one no longer works"
    )
    panel = provider.locator("#link-panel")
    await expect(panel).to_be_visible()
    await expect(panel).to_contain_text(f"Join link for {name}")
    await expect(provider.get_by_role("button", name="Copy link")).to_be_focused()
    short = await provider.get_by_label("Join link", exact=True).input_value()
    assert "/j/" in short and "stops working" in asked[0]
    await provider.screenshot(path=tmp_path / "provider-day-new-link-1280.png", full_page=True)

    # The link the patient had no longer works; the new one does.
    await patient.reload()
    await expect(patient.locator("#join-status")).to_contain_text("no longer works")
    await patient.goto("/j/" + short.split("/j/", 1)[1])  # this test server, not the public URL
    await expect(patient.locator("#checkin-open")).to_be_visible()

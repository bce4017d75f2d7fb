"""The reason for the visit a waiting patient gave is still there after a reload, to change."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from tests.e2e.test_waiting_room import check_in, contexts, settings, sign_in, waiting
from tests.signaling.conftest import WaitingFactory

__all__ = ["contexts", "settings", "waiting"]  # fixtures this module uses


async def test_a_reload_shows_the_reason_given_and_it_can_be_changed(
    contexts, waiting: WaitingFactory, tmp_path: Path
):
    patient_ctx, provider_ctx = contexts
    v = await waiting.visitable()
    provider = await provider_ctx.new_page()
    await sign_in(provider, v.provider, "/provider/queue")
    row = provider.locator(f'tr[data-appointment="{v.appointment.id}"]')
    patient = await patient_ctx.new_page()
    await check_in(patient, v.token)
    reason = patient.get_by_label("What would you like to talk about today?", exact=False)
    await reason.fill("My knee hurts")
    await patient.get_by_role("button", name="Tell the clinic").click()
    await expect(patient.locator("#reason-status")).to_contain_text("My knee hurts")
    await expect(row).to_contain_text("Reason: My knee hurts")

    await patient.reload()
    await expect(patient.locator("#waiting-place")).to_contain_text("You are number 1 in line")
    await expect(reason).to_have_value("My knee hurts")
    await expect(patient.locator("#reason-status")).to_contain_text("Sent to the clinic")
    for width, height in ((1280, 800), (390, 844)):
        await patient.set_viewport_size({"width": width, "height": height})
        await patient.screenshot(path=tmp_path / f"waiting-reason-{width}.png", full_page=True)

    await reason.fill("My knee hurts, and my ankle since Monday")
    await patient.get_by_role("button", name="Update the reason").click()
    await expect(row).to_contain_text("Reason: My knee hurts, and my ankle since Monday")
    await expect(reason).to_have_value("My knee hurts, and my ankle since Monday")

"""Small things of the check-in a patient notices: no stale loading line, the consent box's own
message instead of the browser's bubble."""

from __future__ import annotations

import pytest
from playwright.async_api import BrowserContext, expect

from tests.signaling.conftest import WaitingFactory


@pytest.fixture
def settings(settings_factory):
    return settings_factory(background_tasks=False)


@pytest.fixture
def waiting(db, factory, settings) -> WaitingFactory:
    return WaitingFactory(db, factory, settings)


async def test_the_identity_step_no_longer_says_loading(
    context: BrowserContext, waiting: WaitingFactory
):
    v = await waiting.visitable()
    page = await context.new_page()
    await page.goto(f"/join/{v.token}")
    await expect(page.get_by_label("Your date of birth")).to_be_visible()
    await expect(page.locator("#join-status")).to_have_text("")
    await expect(page.get_by_text("Loading your check-in")).to_have_count(0)


@pytest.mark.parametrize("width", [1280, 390])
async def test_the_consent_box_says_what_is_missing_itself(
    context: BrowserContext, waiting: WaitingFactory, width: int
):
    v = await waiting.visitable()
    page = await context.new_page()
    await page.set_viewport_size({"width": width, "height": 900})
    await page.goto(f"/join/{v.token}")
    await page.get_by_label("Your date of birth").fill("1979-04-02")
    await page.get_by_role("button", name="Continue").click()
    await expect(page.locator("#consent-body")).to_contain_text("video instead of in person")
    box = page.get_by_label("I have read this and I agree.")
    await page.get_by_role("button", name="Continue").click()
    message = page.locator("#consent-error")
    await expect(message).to_have_text(
        "Please tick the box to agree; without consent the visit cannot take place."
    )
    await expect(box).to_be_focused()
    await expect(box).to_have_attribute("aria-invalid", "true")
    await expect(box).to_have_accessible_description(
        "Please tick the box to agree; without consent the visit cannot take place."
    )
    await page.screenshot(path=f"{_shots()}/consent-{width}.png", full_page=True)
    await box.check()
    await page.get_by_role("button", name="Continue").click()
    await expect(page.locator("#intake-title")).to_be_visible()
    await expect(message).to_have_text("")


def _shots() -> str:
    import os
    import tempfile

    return os.environ.get("OPENCONSULT_SCREENSHOTS") or tempfile.gettempdir()

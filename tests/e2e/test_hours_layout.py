"""The provider hours page at a laptop's and a phone's width: every field can be clicked and
stays inside its card, labels included."""

from __future__ import annotations

import os
import tempfile

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, expect

from app.core.models import Role
from tests.conftest import Factory
from tests.e2e.test_waiting_room import sign_in

# Every visible field and label of the page: the field must be the element at its own centre
# (nothing lies over it) and its box must lie inside the card that holds it.
LAYOUT_PROBLEMS = """
() => {
  const problems = [];
  const shown = "main input, main select, main textarea, main button, main label";
  for (const node of document.querySelectorAll(shown)) {
    if (node.type === "hidden" || !node.checkVisibility()) continue;
    node.scrollIntoView({ block: "center", inline: "center" });
    const box = node.getBoundingClientRect();
    const what = node.id || node.htmlFor || node.textContent.trim();
    const name = `${node.tagName.toLowerCase()}#${what}`;
    if (node.tagName !== "LABEL") {
      const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
      if (!hit || (hit !== node && !node.contains(hit))) {
        problems.push(`${name} is covered by ${hit ? hit.outerHTML.slice(0, 80) : "nothing"}`);
      }
    }
    const card = node.closest(".card");
    if (card) {
      const outer = card.getBoundingClientRect();
      if (box.left < outer.left - 0.5 || box.right > outer.right + 0.5 ||
          box.top < outer.top - 0.5 || box.bottom > outer.bottom + 0.5) {
        problems.push(`${name} sticks out of its card`);
      }
    }
    if (box.right > document.documentElement.clientWidth + 0.5) {
      problems.push(`${name} runs past the page's right edge`);
    }
  }
  return problems;
}
"""


@pytest.mark.parametrize("width", [1280, 390])
async def test_every_hours_field_is_reachable_and_inside_its_card(
    browser: Browser, live_server: TestServer, factory: Factory, width: int
):
    clinic = await factory.clinic()
    scheduler = await factory.staff(Role.SCHEDULER, clinic)
    await factory.staff(Role.PROVIDER, clinic)
    context = await browser.new_context(
        base_url=str(live_server.make_url("")).rstrip("/"),
        viewport={"width": width, "height": 900},
        timezone_id="Europe/Berlin",
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await sign_in(page, scheduler, "/scheduler")
    await page.goto("/scheduler/hours")
    await expect(page.get_by_label("Time zone")).to_have_value("Europe/Berlin")
    await page.get_by_role("button", name="Add hours").click()
    await expect(page.locator("#rules-table tbody tr")).to_have_count(1)
    await page.get_by_label("What").select_option("extra")

    problems = await page.evaluate(LAYOUT_PROBLEMS)
    await page.screenshot(path=os.path.join(_shots(), f"hours-{width}.png"), full_page=True)
    assert problems == [], problems
    # The time zone field takes a click and typing where it is drawn.
    await page.get_by_label("Time zone").click()
    await page.keyboard.press("Control+A")
    await page.keyboard.type("Europe/Oslo")
    await expect(page.get_by_label("Time zone")).to_have_value("Europe/Oslo")
    await context.close()


def _shots() -> str:
    """Where screenshots go for a person to look at (OPENCONSULT_SCREENSHOTS, else the temp dir)."""
    return os.environ.get("OPENCONSULT_SCREENSHOTS") or tempfile.gettempdir()

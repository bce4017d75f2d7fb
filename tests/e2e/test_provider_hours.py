"""A scheduler sets up a new provider's hours, a day off and a visit type, then books from them."""

from __future__ import annotations

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, expect

from app.core.models import Role
from tests.conftest import Factory
from tests.e2e.test_waiting_room import sign_in
from tests.scheduling.conftest import next_weekday


async def test_scheduler_sets_up_hours_and_the_slots_follow(
    browser: Browser, live_server: TestServer, factory: Factory
):
    clinic = await factory.clinic()
    scheduler = await factory.staff(Role.SCHEDULER, clinic)
    provider = await factory.staff(Role.PROVIDER, clinic)
    await factory.staff(Role.PROVIDER)  # another clinic's provider is never offered
    monday, tuesday = next_weekday(0), next_weekday(1)
    context = await browser.new_context(
        base_url=str(live_server.make_url("")).rstrip("/"), timezone_id="America/Chicago"
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    errors: list[str] = []
    # Script errors only: the browser also logs the 400 of the rejected save below.
    page.on("pageerror", lambda e: errors.append(str(e)))

    await sign_in(page, scheduler, "/scheduler")
    await page.get_by_role("link", name="Provider hours and visit types").click()
    await page.wait_for_url("**/scheduler/hours")
    await expect(page.locator("#provider option")).to_have_count(1)
    await expect(page.locator("#provider")).to_contain_text(provider.user.full_name)
    await expect(page.locator("#weekly-state")).to_contain_text("No hours set up yet")
    await expect(page.get_by_label("Time zone")).to_have_value("America/Chicago")

    # Two rows: Monday 09:00-10:00, then Tuesday (the next day is proposed) with a mistake.
    await page.get_by_role("button", name="Add hours").click()
    row = page.locator("#rules-table tbody tr").nth(0)
    await row.get_by_label("From").fill("09:00")
    await row.get_by_label("To").fill("10:00")
    await page.get_by_role("button", name="Add hours").click()
    second = page.locator("#rules-table tbody tr").nth(1)
    await expect(second.get_by_label("Day")).to_have_value("1")
    await second.get_by_label("From").fill("14:00")
    await second.get_by_label("To").fill("13:00")
    await page.get_by_role("button", name="Save weekly hours").click()
    await expect(page.get_by_role("alert")).to_contain_text("Tuesday To: must be after start")
    await expect(second.get_by_label("To")).to_have_attribute("aria-invalid", "true")
    await expect(second.get_by_label("To")).to_be_focused()

    await second.get_by_label("To").fill("15:00")
    await page.get_by_role("button", name="Save weekly hours").click()
    await expect(page.get_by_role("status")).to_have_text(
        f"Saved weekly hours for {provider.user.full_name}."
    )
    await expect(page.get_by_role("alert")).to_have_text("")

    # Tuesday is taken off; a visit type is added.
    await page.get_by_label("Date").fill(tuesday.isoformat())
    await page.get_by_label("What").select_option("off")
    await page.get_by_label("Note").fill("Conference")
    await page.get_by_role("button", name="Add", exact=True).click()
    await expect(page.get_by_role("status")).to_have_text(f"Added time off on {tuesday}.")
    await expect(page.locator("#exceptions-table")).to_contain_text("Conference")
    await page.get_by_label("Name", exact=True).fill("Follow-up")
    await page.get_by_label("Length (minutes)").fill("20")
    await page.get_by_role("button", name="Add visit type").click()
    await expect(page.locator("#types-table")).to_contain_text("Follow-up")

    # What was saved is what a reload shows.
    await page.reload()
    await expect(page.locator("#weekly-state")).to_have_text("Times are in America/Chicago.")
    await expect(page.locator("#rules-table tbody tr")).to_have_count(2)
    await expect(page.locator("#rules-table tbody tr").nth(1).get_by_label("To")).to_have_value(
        "15:00"
    )

    # The scheduler's calendar offers exactly those hours: 3 slots on Monday, none on Tuesday.
    await page.goto("/scheduler")
    await page.get_by_label("Visit type").select_option(label="Follow-up (20 min)")
    await page.get_by_label("Day").fill(monday.isoformat())
    await page.get_by_role("button", name="Show free slots").click()
    await expect(page.locator("button.slot")).to_have_text(["09:00 AM", "09:20 AM", "09:40 AM"])
    await page.get_by_label("Day").fill(tuesday.isoformat())
    await page.get_by_role("button", name="Show free slots").click()
    await expect(page.locator("#slots")).to_have_text("No free slots this day.")
    assert errors == []
    await context.close()


async def test_a_provider_cannot_open_the_hours_page(
    browser: Browser, live_server: TestServer, factory: Factory
):
    provider = await factory.staff(Role.PROVIDER)
    context = await browser.new_context(base_url=str(live_server.make_url("")).rstrip("/"))
    page = await context.new_page()
    await sign_in(page, provider, "/provider")
    response = await page.goto("/scheduler/hours")
    assert response is not None and response.status == 403
    await context.close()

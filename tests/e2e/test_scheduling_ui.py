"""The scheduler's page in a real browser: book, reschedule and cancel; the emails arrive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from icalendar import Calendar as ICalendar
from playwright.async_api import async_playwright, expect

from app.main import create_app
from app.web.keys import DATABASE
from scheduling.models import Appointment
from tests.conftest import Factory
from tests.scheduling.conftest import Inbox, SchedulingFactory, at, free_port, next_weekday
from tests.support import chromium

WAIT_MS = 15_000


@pytest.fixture
async def scheduling_server(settings_factory) -> AsyncIterator[tuple[str, web.Application, Inbox]]:
    """The app on a loopback port, sending its outbox to a real SMTP server on loopback."""
    inbox = Inbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = settings_factory(
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        public_url=base,
        background_tasks=True,
        outbox_poll_seconds=0.2,
    )
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield base, app, inbox
    await runner.cleanup()
    controller.stop()


async def wait_for_mail(inbox: Inbox, address: str, count: int) -> list:
    async with asyncio.timeout(15):
        while len(inbox.to(address)) < count:  # noqa: ASYNC110 (SMTP server thread)
            await asyncio.sleep(0.1)
    return inbox.to(address)


def _method(message) -> str:
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    return str(ICalendar.from_ical(part.get_content())["METHOD"])


@pytest.mark.e2e
async def test_scheduler_books_reschedules_and_cancels_in_the_browser(scheduling_server):
    base, app, inbox = scheduling_server
    db = app[DATABASE]
    sched = SchedulingFactory(db, Factory(db))
    cal = await sched.calendar(patient_email="maria.e2e@mail.example")
    monday = next_weekday(0)
    nine, ten = at(monday, 9), at(monday, 10)

    def slot(moment):
        return f'button.slot[data-start="{moment.isoformat().replace("+00:00", "Z")}"]'

    async with async_playwright() as pw:
        browser = await chromium.launch(pw)
        try:
            context = await browser.new_context(timezone_id="America/New_York", locale="en-US")
            page = await context.new_page()
            page.set_default_timeout(WAIT_MS)
            await page.goto(f"{base}/login")
            await page.fill("#email", cal.scheduler.user.email)
            await page.fill("#password", cal.scheduler.password)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/scheduler")
            await expect(page.locator("#viewer-zone")).to_have_text("America/New_York")
            await expect(page.locator("#provider option")).to_have_count(1)
            await page.fill("#day", monday.isoformat())
            await page.click("text=Show free slots")
            await expect(page.locator("button.slot")).to_have_count(6)

            # Clear error when no patient is chosen.
            await page.click(slot(nine))
            await expect(page.locator("#sched-error")).to_contain_text("Choose or create a patient")

            await page.fill("#patient-q", "lopez")
            await page.click("#patient-search button")
            await page.get_by_role("button", name="Choose Maria Lopez").click()
            await expect(page.locator("#chosen-patient")).to_contain_text("Maria Lopez")
            await page.click(slot(nine))
            await expect(page.locator("#sched-message")).to_contain_text("Booked Maria Lopez")
            await expect(page.locator("#sched-error")).to_have_text("")
            await expect(page.locator("button.slot")).to_have_count(5)
            row = page.locator("#day-table tbody tr[data-appointment]")
            await expect(row).to_have_count(1)
            await expect(row.locator(".status")).to_have_text("booked")
            [confirmation] = await wait_for_mail(inbox, "maria.e2e@mail.example", 1)
            assert _method(confirmation) == "REQUEST"
            first_link = next(
                line
                for line in confirmation.get_body(("plain",)).get_content().splitlines()
                if "/j/" in line
            )

            await page.get_by_role("button", name="Reschedule Maria Lopez").click()
            await expect(page.locator("#reschedule-banner")).to_be_visible()
            await page.click(slot(ten))
            await expect(page.locator("#sched-message")).to_contain_text("Moved Maria Lopez")
            await expect(page.locator(slot(nine))).to_have_count(1)
            await expect(page.locator(slot(ten))).to_have_count(0)
            mails = await wait_for_mail(inbox, "maria.e2e@mail.example", 2)
            assert mails[1]["Subject"].startswith("Your appointment was moved")

            await page.fill("#day-table input[name=reason]", "Patient is travelling")
            await page.get_by_role("button", name="Cancel Maria Lopez").click()
            await expect(page.locator("#sched-message")).to_contain_text("Cancelled Maria Lopez")
            await expect(row.locator(".status")).to_have_text("cancelled: Patient is travelling")
            await expect(page.locator("button.slot")).to_have_count(6)
            mails = await wait_for_mail(inbox, "maria.e2e@mail.example", 3)
            assert _method(mails[2]) == "CANCEL"

            # The first link now says why it fails and shows nothing about the patient.
            await page.goto(first_link)
            await expect(page.locator("#join-status")).to_contain_text("was cancelled")
            assert "Lopez" not in await page.content()
        finally:
            await browser.close()
    await asyncio.sleep(0.5)
    assert len(inbox.to("maria.e2e@mail.example")) == 3


@pytest.mark.e2e
async def test_provider_sees_their_day_and_week(scheduling_server):
    base, app, _inbox = scheduling_server
    db = app[DATABASE]
    sched = SchedulingFactory(db, Factory(db))
    cal = await sched.calendar()
    colleague = await sched.calendar()  # another clinic's appointment must not show
    now = datetime.now(UTC)
    starts = ((cal, now + timedelta(minutes=1)), (cal, now + timedelta(days=2)))
    for target, start in (*starts, (colleague, now + timedelta(days=2))):
        async with db.session() as session:
            session.add(
                Appointment(
                    clinic_id=target.clinic.id,
                    provider_id=target.provider.id,
                    patient_id=target.patient.id,
                    appointment_type_id=target.kind.id,
                    start_at=start,
                    end_at=start + timedelta(minutes=30),
                    busy_until=start + timedelta(minutes=30),
                )
            )
            await session.commit()
    async with async_playwright() as pw:
        browser = await chromium.launch(pw)
        try:
            context = await browser.new_context(timezone_id="America/New_York", locale="en-US")
            page = await context.new_page()
            page.set_default_timeout(WAIT_MS)
            await page.goto(f"{base}/login")
            await page.fill("#email", cal.provider.user.email)
            await page.fill("#password", cal.provider.password)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/provider")
            await expect(page.locator("#provider-zone")).to_have_text("America/New_York")
            await expect(page.locator("#week-table tbody tr")).to_have_count(2)
            await expect(page.locator("#today")).to_contain_text("Maria Lopez")
        finally:
            await browser.close()

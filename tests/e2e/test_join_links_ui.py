"""A newcomer's path in a real browser, with no SMTP server configured: book on the scheduler
page, see and copy the join link, read the email in the development mailbox, follow its short
link to the check-in page. And with a mail server that cannot be reached: the scheduler page
shows the failed email and its reason, and an admin retries it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta

import pytest
from aiohttp import web
from playwright.async_api import Page, async_playwright, expect
from sqlmodel import select

from app.core.db import Database
from app.core.models import Patient, Role
from app.main import create_app
from app.web.keys import DATABASE
from scheduling.models import OutboxMessage, OutboxStatus
from tests.conftest import Factory, StaffAccount, fresh_totp_code
from tests.scheduling.conftest import SchedulingFactory, free_port
from tests.support import chromium
from tests.support.waiting import wait_for

WAIT_MS = 15_000
SHOTS = "/tmp/openconsult-links"


async def _serve(settings) -> AsyncIterator[tuple[str, web.Application]]:
    port = settings.port
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", app
    await runner.cleanup()


@pytest.fixture
async def dev_server(settings_factory) -> AsyncIterator[tuple[str, web.Application]]:
    """No SMTP host: the outbox keeps emails in the development mailbox."""
    port = free_port()
    settings = settings_factory(
        public_url=f"http://127.0.0.1:{port}",
        port=port,
        background_tasks=True,
        outbox_poll_seconds=0.2,
        join_opens_minutes=60,
    )
    assert settings.dev_mailbox
    async for served in _serve(settings):
        yield served


@pytest.fixture
async def broken_mail_server(settings_factory) -> AsyncIterator[tuple[str, web.Application]]:
    """An SMTP host that refuses connections; one attempt and the email has failed."""
    port = free_port()
    settings = settings_factory(
        public_url=f"http://127.0.0.1:{port}",
        port=port,
        smtp_host="127.0.0.1",
        smtp_port=free_port(),
        outbox_max_attempts=1,
        background_tasks=True,
        outbox_poll_seconds=0.2,
        join_opens_minutes=60,
    )
    async for served in _serve(settings):
        yield served


class Clinic:
    def __init__(self, name: str, scheduler: StaffAccount, admin: StaffAccount) -> None:
        self.name, self.scheduler, self.admin = name, scheduler, admin


async def _clinic_open_all_day(app: web.Application, *, email: str | None) -> Clinic:
    """A provider bookable every day, all day, from now on (so the link is open at once), and
    two patients: Maria Lopez with `email`, Tomas Phoneonly with a phone number only."""
    return await _open_clinic(app, email=email)


async def _open_clinic(app: web.Application, *, email: str | None) -> Clinic:
    db = app[DATABASE]
    factory = Factory(db)
    sched = SchedulingFactory(db, factory)
    clinic = await factory.clinic()
    scheduler = await factory.staff(Role.SCHEDULER, clinic)
    admin = await factory.staff(Role.ADMIN, clinic)
    provider = await factory.staff(Role.PROVIDER, clinic)
    await sched.schedule(
        provider.user,
        zone="UTC",
        hours=(time(0), time(23, 59)),
        weekdays=(0, 1, 2, 3, 4, 5, 6),
        min_notice_minutes=0,
    )
    await sched.kind(clinic)
    async with db.session() as session:
        session.add(
            Patient(
                clinic_id=clinic.id,
                given_name="Maria",
                family_name="Lopez",
                birth_date=date(1980, 5, 17),
                email=email,
                timezone="UTC",
            )
        )
        session.add(
            Patient(
                clinic_id=clinic.id,
                given_name="Tomas",
                family_name="Phoneonly",
                birth_date=date(1970, 1, 2),
                phone="+1 212 555 0100",
                timezone="UTC",
            )
        )
        await session.commit()
    return Clinic(clinic.name, scheduler, admin)


def _next_slot() -> datetime:
    """A half-hour start 5 to 35 minutes ahead: still free while the test books it, and inside
    the link's open window (the servers here open links an hour before the start)."""
    soon = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=5)
    return soon + timedelta(minutes=(30 - soon.minute % 30) % 30)


async def _sign_in(
    page: Page, base: str, account: StaffAccount, db: Database | None = None
) -> None:
    await page.goto(f"{base}/login")
    await page.fill("#email", account.user.email)
    await page.fill("#password", account.password)
    await page.click("button[type=submit]")
    if account.totp_secret:  # admins pass the code step
        assert db is not None
        await page.wait_for_url(f"{base}/login/mfa**")
        await page.get_by_label("Code").fill(await fresh_totp_code(db, account))
        await page.get_by_role("button", name="Continue").click()


async def _book(page: Page, start: datetime, name: str = "Maria Lopez") -> None:
    """Book `name` at `start` on the scheduler page."""
    # The page loads its providers after the first paint; "Show free slots" before that shows none.
    await expect(page.locator("#provider option").first).to_be_attached()
    await page.fill("#day", start.date().isoformat())
    await page.click("text=Show free slots")
    await page.fill("#patient-q", name.split()[1])
    await page.click("#patient-search button")
    await page.get_by_role("button", name=f"Choose {name}").click()
    slot = f'button.slot[data-start="{start.isoformat().replace("+00:00", "Z")}"]'
    await page.click(slot)
    await expect(page.locator("#sched-message")).to_contain_text(f"Booked {name}")


@pytest.mark.e2e
async def test_book_read_the_email_in_the_dev_mailbox_and_open_the_link(dev_server):
    base, app = dev_server
    clinic = await _clinic_open_all_day(app, email="maria.dev@mail.example")
    async with async_playwright() as pw:
        browser = await chromium.launch(pw)
        try:
            staff = await browser.new_context(
                timezone_id="UTC",
                locale="en-GB",
                permissions=["clipboard-read", "clipboard-write"],
            )
            page = await staff.new_page()
            page.set_default_timeout(WAIT_MS)
            await _sign_in(page, base, clinic.scheduler)
            await page.wait_for_url(f"{base}/scheduler")
            await expect(page.locator("#dev-mailbox-note")).to_be_visible()
            await _book(page, _next_slot())

            # The link, right after booking, with a Copy button.
            await expect(page.locator("#link-panel")).to_be_visible()
            link = await page.locator("#link-url").input_value()
            assert link.startswith(f"{base}/j/") and len(link) < 80, link
            await expect(page.locator("#link-warning")).to_be_hidden()
            await page.click("#link-copy")
            await expect(page.locator("#sched-message")).to_have_text("Link copied.")
            assert await page.evaluate("navigator.clipboard.readText()") == link
            await page.set_viewport_size({"width": 1280, "height": 900})
            await page.screenshot(path=f"{SHOTS}-scheduler-booked-1280.png", full_page=True)

            # The row's "Link and emails": the same link, the email's delivery.
            db = app[DATABASE]

            async def kept() -> bool:
                async with db.session() as session:
                    rows = (await session.exec(select(OutboxMessage))).all()
                return any(r.status == OutboxStatus.SENT for r in rows)

            await wait_for(kept, 15, "the confirmation in the development mailbox")
            await page.click("text=Show free slots")
            await expect(page.locator("#day-table")).to_have_attribute("aria-busy", "false")
            await expect(page.locator("#day-table .pill.sent")).to_have_text("email sent")
            # An open row stays open when the day is drawn again.
            await page.get_by_role("button", name="Link and emails of Maria Lopez").click()
            await page.click("text=Show free slots")
            detail = page.locator("tr.appointment-detail")
            await expect(detail.locator("input")).to_have_value(link)
            await expect(detail).to_contain_text("kept in the development mailbox")
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.screenshot(path=f"{SHOTS}-scheduler-detail-390.png", full_page=True)
            wide = await page.evaluate(
                "[...document.querySelectorAll('body *')]"
                ".filter(e => e.getBoundingClientRect().right > innerWidth).length"
            )
            assert wide == 0, "something sticks out at 390 px"
            await page.set_viewport_size({"width": 1280, "height": 900})
            await page.screenshot(path=f"{SHOTS}-scheduler-detail-1280.png", full_page=True)

            # The development mailbox shows the email; its link leads to check-in.
            await page.goto(f"{base}/dev/mailbox")
            mail = page.locator(".mail").first
            await expect(mail.locator(".mail-subject")).to_contain_text(
                "Your appointment is booked"
            )
            await expect(mail).to_contain_text(clinic.name)
            href = await mail.locator(f'a[href^="{base}/j/"]').get_attribute("href")
            assert href == link
            await page.screenshot(path=f"{SHOTS}-mailbox-1280.png", full_page=True)
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.screenshot(path=f"{SHOTS}-mailbox-390.png", full_page=True)
            assert await page.evaluate("document.querySelector('.mail-body').scrollWidth") <= 390

            patient = await browser.new_context(timezone_id="UTC", locale="en-GB")
            patient_page = await patient.new_page()
            patient_page.set_default_timeout(WAIT_MS)
            await patient_page.goto(href)
            await expect(patient_page.locator("#checkin-open")).to_be_visible()
            await expect(patient_page.locator("#step-identity")).to_be_visible()
            await patient_page.fill("#birth-date", "1980-05-17")
            await patient_page.locator("#step-identity button[type=submit]").click()
            await expect(patient_page.locator("#step-consent")).to_be_visible()
            assert patient_page.url == href  # the URL bar keeps the short link
        finally:
            await browser.close()


@pytest.mark.e2e
async def test_phone_only_patient_warns_and_failed_email_is_retried_by_an_admin(
    broken_mail_server,
):
    base, app = broken_mail_server
    clinic = await _clinic_open_all_day(app, email="maria.down@mail.example")
    db = app[DATABASE]
    async with async_playwright() as pw:
        browser = await chromium.launch(pw)
        try:
            context = await browser.new_context(timezone_id="UTC", locale="en-GB")
            page = await context.new_page()
            page.set_default_timeout(WAIT_MS)
            await _sign_in(page, base, clinic.scheduler)
            await page.wait_for_url(f"{base}/scheduler")
            start = _next_slot()
            await _book(page, start + timedelta(minutes=30), "Tomas Phoneonly")
            await expect(page.locator("#link-warning")).to_be_visible()
            await expect(page.locator("#link-warning")).to_contain_text("no email address")
            link = await page.locator("#link-url").input_value()
            assert link.startswith(f"{base}/j/"), link
            await page.screenshot(path=f"{SHOTS}-scheduler-no-email-1280.png", full_page=True)
            await _book(page, start)

            async def failed() -> bool:
                async with db.session() as session:
                    rows = (await session.exec(select(OutboxMessage))).all()
                return any(r.status == OutboxStatus.FAILED for r in rows)

            await wait_for(failed, 15, "the confirmation to fail")
            await page.reload()
            banner = page.locator("#mail-trouble")
            await expect(banner).to_be_visible()
            await expect(banner).to_contain_text("1 email could not be delivered")
            await expect(banner).to_contain_text("Maria Lopez")
            await expect(banner).to_contain_text("Reason:")
            await expect(banner.get_by_role("button")).to_have_count(0)  # schedulers don't retry
            await page.screenshot(path=f"{SHOTS}-scheduler-failed-1280.png", full_page=True)

            await context.clear_cookies()
            await _sign_in(page, base, clinic.admin, db)
            await page.wait_for_url(f"{base}/admin")
            await expect(page.locator("#mail-alert")).to_contain_text("could not be delivered")
            await page.screenshot(path=f"{SHOTS}-admin-alert-1280.png", full_page=True)
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.screenshot(path=f"{SHOTS}-admin-alert-390.png", full_page=True)
            await page.click("text=See them and retry")
            await page.wait_for_url(f"{base}/scheduler#mail-trouble")
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.screenshot(path=f"{SHOTS}-scheduler-failed-390.png", full_page=True)
            await page.get_by_role("button", name="Retry email to Maria Lopez").click()
            await expect(page.locator("#sched-message")).to_contain_text("queued again")
        finally:
            await browser.close()

"""A booking for a phone-only patient sends a text through the outbox, in a real browser: the
scheduler chooses a patient with no email, ticks that they agreed to texts and books; the
stand-in SMS provider (a Twilio-compatible API on loopback) receives exactly one text holding
the short join link, and the appointment shows the text as sent. The patient, opening the link,
finds their consent to texts already ticked on the consent step."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from playwright.async_api import async_playwright, expect
from sqlmodel import select

from app.web.keys import DATABASE
from scheduling.models import Channel, OutboxMessage, OutboxStatus
from tests.e2e.test_join_links_ui import _next_slot, _open_clinic, _serve, _sign_in
from tests.scheduling.conftest import free_port
from tests.support import chromium
from tests.support.sms_provider import ACCOUNT, SENDER, TOKEN, SmsProvider
from tests.support.waiting import wait_for

WAIT_MS = 15_000
SHOTS = "/tmp/openconsult-sms"


@pytest.fixture
async def provider(aiohttp_server) -> AsyncIterator[SmsProvider]:  # type: ignore[no-untyped-def]
    stand_in = SmsProvider()
    server = await aiohttp_server(stand_in.app(), host="127.0.0.1")
    stand_in.url = str(server.make_url("")).rstrip("/")
    yield stand_in
    stand_in.release()


@pytest.fixture
async def texting_server(settings_factory, provider) -> AsyncIterator[tuple[str, web.Application]]:  # type: ignore[no-untyped-def]
    port = free_port()
    settings = settings_factory(
        public_url=f"http://127.0.0.1:{port}",
        port=port,
        background_tasks=True,
        outbox_poll_seconds=0.2,
        join_opens_minutes=60,
        sms_url=provider.url,
        sms_account=ACCOUNT,
        sms_token=TOKEN,
        sms_from=SENDER,
    )
    async for served in _serve(settings):
        yield served


@pytest.mark.e2e
async def test_a_phone_only_patient_gets_the_join_link_by_text(texting_server, provider):
    base, app = texting_server
    clinic = await _open_clinic(app, email="maria.sms@mail.example")
    db = app[DATABASE]
    start = _next_slot()
    async with async_playwright() as pw:
        browser = await chromium.launch(pw)
        try:
            context = await browser.new_context(timezone_id="UTC", locale="en-GB")
            page = await context.new_page()
            page.set_default_timeout(WAIT_MS)
            await _sign_in(page, base, clinic.scheduler)
            await page.wait_for_url(f"{base}/scheduler")
            await expect(page.locator("#provider option")).to_have_count(1)  # choices loaded
            await page.fill("#day", start.date().isoformat())
            await page.click("text=Show free slots")
            await expect(page.locator("#slots .slot").first).to_be_visible()
            await page.fill("#patient-q", "Phoneonly")
            await page.click("#patient-search button")
            await page.get_by_role("button", name="Choose Tomas Phoneonly").click()
            consent = page.get_by_label("Tomas agreed to get the join link and reminders by text")
            await expect(consent).to_be_visible()
            await expect(page.locator("#text-consent-state")).to_contain_text("Not agreed yet")
            await consent.check()
            await page.screenshot(path=f"{SHOTS}-consent-1280.png", full_page=True)
            slot = f'button.slot[data-start="{start.isoformat().replace("+00:00", "Z")}"]'
            await page.click(slot)
            await expect(page.locator("#sched-message")).to_contain_text("Booked Tomas Phoneonly")
            await expect(page.locator("#link-note")).to_contain_text("by text message")
            await expect(page.locator("#link-warning")).to_contain_text("by text message")
            await expect(page.locator("#text-consent-state")).to_contain_text(
                "Already agreed to texts (recorded by staff at booking"
            )
            link = await page.locator("#link-url").input_value()
            assert link.startswith(f"{base}/j/"), link

            async def sent() -> bool:
                async with db.session() as session:
                    rows = (
                        await session.exec(
                            select(OutboxMessage).where(OutboxMessage.channel == Channel.SMS)
                        )
                    ).all()
                return any(r.status == OutboxStatus.SENT for r in rows)

            await wait_for(sent, 15, "the text to be marked sent")
            [text] = provider.delivered
            assert text["To"] == "+12125550100" and text["From"] == SENDER
            assert link in text["Body"] and clinic.name in text["Body"]

            await page.click("text=Show free slots")
            await expect(page.locator("#day-table")).to_have_attribute("aria-busy", "false")
            row = page.locator("#day-table tr[data-appointment]")
            await expect(row.locator(".pill.sent")).to_have_text("text sent")
            await page.get_by_role("button", name="Link and emails of Tomas Phoneonly").click()
            detail = page.locator("tr.appointment-detail")
            await expect(detail).to_contain_text("Confirmation (text message) to +12125550100")
            await expect(detail.locator(".pill.sent")).to_have_text("text sent")
            await page.screenshot(path=f"{SHOTS}-detail-1280.png", full_page=True)
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.screenshot(path=f"{SHOTS}-detail-390.png", full_page=True)
            assert len(provider.delivered) == 1  # still exactly one text

            # The patient follows the texted link: their consent to texts is already ticked.
            patient = await browser.new_context(timezone_id="UTC", locale="en-GB")
            patient_page = await patient.new_page()
            patient_page.set_default_timeout(WAIT_MS)
            await patient_page.goto(link)
            await patient_page.fill("#birth-date", "1970-01-02")
            await patient_page.locator("#step-identity button[type=submit]").click()
            await expect(patient_page.locator("#step-consent")).to_be_visible()
            texts = patient_page.get_by_label("Send me the links and reminders of my visits")
            await expect(texts).to_be_checked()
            await expect(patient_page.locator("#texts-label")).to_contain_text("ending 0100")
        finally:
            await browser.close()


@pytest.mark.e2e
async def test_without_consent_no_text_until_staff_record_it_and_resend(texting_server, provider):
    base, app = texting_server
    clinic = await _open_clinic(app, email="maria.sms2@mail.example")
    start = _next_slot()
    async with async_playwright() as pw:
        browser = await chromium.launch(pw)
        try:
            context = await browser.new_context(timezone_id="UTC", locale="en-GB")
            page = await context.new_page()
            page.set_default_timeout(WAIT_MS)
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await _sign_in(page, base, clinic.scheduler)
            await page.wait_for_url(f"{base}/scheduler")
            await expect(page.locator("#provider option")).to_have_count(1)
            await page.fill("#day", start.date().isoformat())
            await page.click("text=Show free slots")
            await expect(page.locator("#slots .slot").first).to_be_visible()
            await page.fill("#patient-q", "Phoneonly")
            await page.click("#patient-search button")
            await page.get_by_role("button", name="Choose Tomas Phoneonly").click()
            await expect(page.locator("#text-consent-state")).to_contain_text("Not agreed yet")
            slot = f'button.slot[data-start="{start.isoformat().replace("+00:00", "Z")}"]'
            await page.click(slot)  # the box left unticked
            await expect(page.locator("#sched-message")).to_contain_text("Booked Tomas Phoneonly")
            await expect(page.locator("#link-warning")).to_contain_text(
                "has not agreed to text messages, so no text is sent"
            )
            await expect(page.locator("#link-note")).to_contain_text("No email or text was sent")
            first_link = await page.locator("#link-url").input_value()

            await page.get_by_role("button", name="Link and emails of Tomas Phoneonly").click()
            detail = page.locator("tr.appointment-detail")
            await expect(detail).to_contain_text("No emails or texts for this appointment.")
            await detail.get_by_role("button", name="agreed to texts: record it").click()
            await expect(page.locator("#sched-message")).to_contain_text(
                "Recorded that Tomas Phoneonly agreed to texts"
            )
            await expect(detail.get_by_role("button", name="agreed to texts")).to_have_count(0)
            await detail.get_by_role("button", name="Send a new link to Tomas Phoneonly").click()
            await expect(page.locator("#sched-message")).to_contain_text("sent by text message")
            new_link = await page.locator("#link-url").input_value()
            assert new_link != first_link

            await wait_for(lambda: provider.delivered, 15, "the new link's text")

            async def marked_sent() -> bool:
                await page.click("text=Show free slots")  # the open row is drawn again
                await expect(page.locator("#day-table")).to_have_attribute("aria-busy", "false")
                return await detail.locator(".pill.sent").count() == 1

            await wait_for(marked_sent, 15, "the appointment to show the text as sent")
            await expect(detail.locator(".pill.sent")).to_have_text("text sent")
            [text] = provider.delivered  # exactly one, with the new link only
            assert new_link in text["Body"] and first_link not in text["Body"]
        finally:
            await browser.close()

"""A provider's working day at the live queue, in real browsers: the chart one click away, a
queue that keeps what is typed, waiting times that count, two-way messages, the provider's
delay in the patient's words, and a page that comes back after the server drops its socket."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, BrowserContext, Page, expect

from app.core.models import Role
from signaling.queue.chart import age_on
from signaling.rooms import CLINIC_NAMESPACE, provider_room
from signaling.server import SOCKET_SERVER
from tests.conftest import Factory
from tests.e2e.test_waiting_room import check_in as check_in_in_browser
from tests.e2e.test_waiting_room import sign_in
from tests.signaling import conftest as signaling_fixtures
from tests.signaling.conftest import (
    BIRTH_DATE,
    Visitable,
    WaitingFactory,
    check_in,
    cookie_header,
    daytime_zone,
    staff_headers,
)
from tests.signaling.test_queue_day import sign_a_note

sockets = signaling_fixtures.sockets  # Socket.IO clients, as the signaling tests use them


def shot(name: str) -> str:
    """Where a screenshot goes for a person to look at."""
    return os.path.join(os.environ.get("OPENCONSULT_SCREENSHOTS") or tempfile.gettempdir(), name)


@pytest.fixture
def settings(settings_factory):
    return settings_factory(background_tasks=False)


@pytest.fixture
def waiting(db, factory, settings) -> WaitingFactory:
    return WaitingFactory(db, factory, settings)


@pytest.fixture
async def browsers(browser: Browser, live_server: TestServer) -> AsyncIterator[Callable[..., Any]]:
    opened: list[BrowserContext] = []

    async def open_page(width: int = 1280) -> Page:
        ctx = await browser.new_context(
            base_url=str(live_server.make_url("")).rstrip("/"),
            viewport={"width": width, "height": 900},
        )
        ctx.set_default_timeout(15_000)
        opened.append(ctx)
        return await ctx.new_page()

    yield open_page
    for ctx in opened:
        await ctx.close()


@pytest.fixture
async def http(live_server: TestServer) -> AsyncIterator[Callable[[], TestClient]]:
    opened: list[TestClient] = []

    def make() -> TestClient:
        client = TestClient(live_server)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.session.close()  # client.close() would stop the shared server


async def waiting_patient(live_server: TestServer, http, sockets, v: Visitable) -> TestClient:
    """The patient checks in over HTTP and keeps the waiting room open (a socket)."""
    client = http()
    await check_in(client, v.token)
    await sockets(str(live_server.make_url("/")), "/waiting", cookie_header(client))
    return client


def row(page: Page, appointment_id: Any):
    return page.locator(f'tr[data-appointment="{appointment_id}"]')


async def test_the_patients_name_leads_to_the_chart_for_those_who_read_it(
    live_server,
    http,
    sockets,
    browsers,
    waiting: WaitingFactory,
    factory: Factory,
):
    v = await waiting.visitable()
    admin = await factory.staff(Role.ADMIN, v.clinic)
    name = f"{v.patient.given_name} {v.patient.family_name}"
    base = str(live_server.make_url("")).rstrip("/")
    await sign_a_note(http(), await staff_headers(base, v.provider), v.patient.id)
    patient = await waiting_patient(live_server, http, sockets, v)
    resp = await patient.post(f"/api/join/{v.token}/reason", json={"text": "Sore throat"})
    assert resp.status == 201
    age = age_on(BIRTH_DATE, datetime.now(ZoneInfo(daytime_zone())).date())

    page = await browsers()
    await sign_in(page, v.provider, "/provider")
    link = page.locator("#today").get_by_role("link", name=name)
    await expect(link).to_have_attribute("href", f"/records/patients/{v.patient.id}")
    await expect(page.locator("#week-table").get_by_role("link", name=name)).to_be_visible()
    await expect(page.locator("#provider-status")).to_have_text("")
    await page.screenshot(path=shot("provider-day-1280.png"), full_page=True)

    await page.goto("/provider/queue")
    mine = row(page, v.appointment.id)
    await expect(mine).to_have_attribute("data-status", "waiting")
    await expect(mine).to_contain_text(f"{age} years")
    await expect(mine).to_contain_text("Reason: Sore throat")
    await expect(mine).to_contain_text(re.compile(r"last signed note \w+"))
    await page.screenshot(path=shot("queue-provider-1280.png"), full_page=True)
    await mine.get_by_role("link", name=name).click()
    await page.wait_for_url(f"**/records/patients/{v.patient.id}")
    await expect(page.get_by_role("heading", level=1)).to_contain_text(v.patient.family_name)

    # Admins read records too; schedulers see the name and state only.
    admin_page = await browsers()
    await sign_in(admin_page, admin, "/scheduler/queues", factory.db)
    await expect(row(admin_page, v.appointment.id).get_by_role("link", name=name)).to_be_visible()
    scheduler_page = await browsers()
    await sign_in(scheduler_page, v.scheduler, "/scheduler/queues")
    theirs = row(scheduler_page, v.appointment.id)
    await expect(theirs).to_have_attribute("data-status", "waiting")
    await expect(theirs).to_contain_text(name)
    await expect(theirs.get_by_role("link")).to_have_count(0)
    await expect(theirs).not_to_contain_text("Sore throat")
    await expect(theirs).not_to_contain_text("years")
    await scheduler_page.screenshot(path=shot("queue-scheduler-1280.png"), full_page=True)


async def test_a_rerender_keeps_the_draft_focus_and_caret(
    live_server,
    http,
    sockets,
    browsers,
    waiting: WaitingFactory,
):
    clinic, provider, scheduler, kind = await waiting.clinic_day()
    patient, first, token = await waiting.appointment(clinic, provider, kind)
    v = Visitable(clinic, provider, scheduler, patient, first, token)
    await waiting_patient(live_server, http, sockets, v)
    name = f"{patient.given_name} {patient.family_name}"
    page = await browsers()
    await sign_in(page, provider, "/provider/queue")
    await expect(row(page, first.id)).to_have_attribute("data-status", "waiting")
    await page.get_by_role("button", name=f"Message {name}").click()
    field = page.get_by_label(f"Message to {name}")
    await field.fill("Running ten minutes late")
    await field.press("Home")
    for _ in range(7):
        await field.press("ArrowRight")

    # Another patient arrives: the list is rebuilt.
    _, second, second_token = await waiting.appointment(
        clinic, provider, kind, starts_in=timedelta(minutes=30), given="Ole"
    )
    await check_in(http(), second_token)
    await expect(row(page, second.id)).to_have_attribute("data-status", "away")

    await expect(field).to_be_visible()
    await expect(field).to_be_focused()
    await expect(field).to_have_value("Running ten minutes late")
    assert await field.evaluate("f => [f.selectionStart, f.selectionEnd]") == [7, 7]
    await page.keyboard.type("about ")
    await expect(field).to_have_value("Runningabout  ten minutes late")


async def test_waiting_times_count_on_an_open_page(
    live_server,
    http,
    sockets,
    browsers,
    waiting: WaitingFactory,
):
    v = await waiting.visitable()
    page = await browsers()
    await page.clock.install()
    await sign_in(page, v.provider, "/provider/queue")
    await waiting_patient(live_server, http, sockets, v)
    waited = row(page, v.appointment.id).locator("td.waited")
    await expect(row(page, v.appointment.id)).to_have_attribute("data-status", "waiting")
    await expect(waited).to_have_text("0 min")
    await page.clock.fast_forward("02:00")
    await expect(waited).to_have_text("2 min")
    await page.clock.fast_forward("03:00")
    await expect(waited).to_have_text("5 min")


async def test_the_patient_answers_and_reads_the_providers_delay(
    live_server, browsers, waiting: WaitingFactory
):
    v = await waiting.visitable()
    name = f"{v.patient.given_name} {v.patient.family_name}"
    provider = await browsers()
    await sign_in(provider, v.provider, "/provider/queue")
    patient = await browsers()
    await check_in_in_browser(patient, v.token)
    answer = patient.get_by_label("Answer the clinic", exact=False)
    await expect(answer).to_be_hidden()  # until the clinic writes
    await patient.get_by_label("What would you like to talk about today?").fill("My knee hurts")
    await patient.get_by_role("button", name="Tell the clinic").click()
    await expect(patient.locator("#reason-status")).to_contain_text("Sent to the clinic")
    mine = row(provider, v.appointment.id)
    await expect(mine).to_contain_text("Reason: My knee hurts")

    await provider.get_by_role("button", name=f"Message {name}").click()
    await provider.get_by_label(f"Message to {name}").fill("Is your camera on?")
    await provider.get_by_role("button", name="Send").click()
    await expect(patient.locator("#waiting-messages")).to_contain_text("Is your camera on?")
    await answer.fill("Yes, it is")
    await patient.get_by_role("button", name="Send").click()
    await expect(patient.locator("#reply-status")).to_have_text("Sent to the clinic.")
    await expect(mine.locator(".conversation")).to_contain_text(f"{name}: Yes, it is")
    assert await answer.get_attribute("maxlength") == "200"

    await provider.get_by_label("Running late?").select_option("10")
    await provider.get_by_role("button", name="Tell waiting patients").click()
    await expect(provider.locator("#delay-status")).to_contain_text("about 10 minutes late")
    await expect(patient.locator("#provider-status")).to_have_text(
        f"{v.provider.user.full_name} is running about 10 minutes late."
    )
    # Booked in five minutes, ten minutes late: about a quarter of an hour.
    await expect(patient.locator("#waiting-place")).to_contain_text(
        re.compile(r"Expected wait: about 1[45] minutes")
    )
    await patient.screenshot(path=shot("waiting-room-1280.png"), full_page=True)
    await provider.screenshot(path=shot("queue-delay-1280.png"), full_page=True)
    await patient.close()

    # On a phone, in another browser: the conversation, the answer box and the delay are there.
    phone = await browsers(390)
    await phone.goto(f"/join/{v.token}")
    await phone.get_by_label("Your date of birth").fill("1979-04-02")
    await phone.get_by_role("button", name="Continue").click()
    await expect(phone.locator("#waiting-messages")).to_contain_text("Yes, it is")
    await expect(phone.get_by_label("Answer the clinic", exact=False)).to_be_visible()
    await expect(phone.locator("#provider-status")).to_contain_text("10 minutes late")
    await phone.screenshot(path=shot("waiting-room-390.png"), full_page=True)


async def test_the_queue_comes_back_after_the_server_drops_its_socket(
    live_server, http, browsers, waiting: WaitingFactory
):
    v = await waiting.visitable()
    page = await browsers()
    await sign_in(page, v.provider, "/provider/queue")
    await expect(page.locator("#queue-connection")).to_have_text("Live")
    await expect(row(page, v.appointment.id)).to_have_attribute("data-status", "not arrived")
    sio = live_server.app[SOCKET_SERVER]
    sids = [
        sid
        for sid, _ in sio.manager.get_participants(CLINIC_NAMESPACE, provider_room(v.provider.id))
    ]
    assert sids
    for sid in sids:
        await sio.disconnect(sid, namespace=CLINIC_NAMESPACE)
    # The page reconnects by itself: a patient who arrives now shows up.
    await check_in(http(), v.token)
    await expect(row(page, v.appointment.id)).to_have_attribute("data-status", "away")
    await expect(page.locator("#queue-connection")).to_have_text("Live")


async def test_a_signed_out_queue_goes_to_sign_in(live_server, browsers, waiting: WaitingFactory):
    v = await waiting.visitable()
    page = await browsers()
    await sign_in(page, v.provider, "/provider/queue")
    await expect(page.locator("#queue-connection")).to_have_text("Live")
    other = await page.context.new_page()
    await other.goto("/provider")
    await other.get_by_role("button", name="Sign out").click()
    await other.wait_for_url("**/login?signed_out=1")
    # The next action on the queue finds the session over; the server closes the socket, and
    # the page, checking the session before it reconnects, goes to sign-in.
    await page.get_by_role("button", name="Tell waiting patients").click()
    await page.wait_for_url("**/login?next=%2Fprovider%2Fqueue")


@pytest.mark.parametrize("width", [1280, 390])
async def test_status_pills_stay_one_line_and_the_queue_fits(
    live_server,
    http,
    sockets,
    browsers,
    waiting: WaitingFactory,
    width: int,
):
    v = await waiting.visitable()
    await waiting_patient(live_server, http, sockets, v)
    page = await browsers(width)
    await sign_in(page, v.provider, "/provider/queue")
    await expect(row(page, v.appointment.id)).to_have_attribute("data-status", "waiting")
    pills = await page.evaluate(
        """() => [...document.querySelectorAll('.status')].map((pill) => {
          const rects = pill.getClientRects();
          const size = parseFloat(getComputedStyle(pill).fontSize);
          return { lines: rects.length, tall: pill.getBoundingClientRect().height / size };
        })"""
    )
    assert pills and all(p["lines"] == 1 and p["tall"] < 1.8 for p in pills), pills
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await page.screenshot(path=shot(f"queue-provider-{width}.png"), full_page=True)
    await page.goto("/provider")
    await expect(page.locator("#today li")).to_have_count(1)
    await expect(page.locator("#week-table tbody tr")).to_have_count(1)
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await page.screenshot(path=shot(f"provider-day-{width}.png"), full_page=True)


async def test_the_visit_pages_lead_the_provider_to_the_chart(
    live_server,
    http,
    sockets,
    browsers,
    waiting: WaitingFactory,
):
    v = await waiting.visitable()
    name = f"{v.patient.given_name} {v.patient.family_name}"
    url = str(live_server.make_url("/"))
    patient = http()
    await check_in(patient, v.token)
    provider_headers = await staff_headers(url.rstrip("/"), v.provider)
    clinic = await sockets(url, "/clinic", provider_headers)
    visit_id = (await clinic.call("admit", {"appointment_id": str(v.appointment.id)}))["visit_id"]
    for width in (1280, 390):
        page = await browsers(width)
        await sign_in(page, v.provider, "/provider")
        await page.goto(f"/visit/{visit_id}")
        link = page.get_by_role("link", name=name)
        await expect(link).to_have_attribute("href", f"/records/patients/{v.patient.id}")
        await page.screenshot(path=shot(f"visit-provider-{width}.png"))
    visit = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})
    assert (await visit.call("end", {}))["ok"] is True
    await page.goto(f"/visit/{visit_id}")
    await expect(page.get_by_role("heading", name="Visit ended")).to_be_visible()
    await expect(page.get_by_role("link", name=name)).to_be_visible()
    await page.screenshot(path=shot("visit-ended-390.png"), full_page=True)
    # The patient's own visit page has no way to the staff record.
    assert "/records/patients/" not in await (await patient.get(f"/visit/{visit_id}")).text()


async def test_an_admin_sets_the_phone_patients_see(
    live_server, browsers, waiting: WaitingFactory, factory: Factory
):
    v = await waiting.visitable()
    admin = await factory.staff(Role.ADMIN, v.clinic)
    for width in (1280, 390):
        page = await browsers(width)
        await sign_in(page, admin, "/admin", factory.db)
        phone = page.get_by_label("Phone number for patients")
        await expect(page.locator("#clinic-status")).to_contain_text("no phone number yet")
        await phone.fill("call me")
        await page.get_by_role("button", name="Save phone number").click()
        await expect(page.locator("#clinic-phone-error")).to_contain_text("digits, spaces")
        await expect(phone).to_be_focused()
        await expect(phone).to_have_attribute("aria-invalid", "true")
        await page.screenshot(path=shot(f"admin-phone-error-{width}.png"), full_page=True)
        if width == 390:
            break
        await phone.fill("+1 555 0100")
        await page.get_by_role("button", name="Save phone number").click()
        status = page.locator("#clinic-status")
        await expect(status).to_have_text("Saved: patients see +1 555 0100.")
        await phone.fill("")
        await page.get_by_role("button", name="Save phone number").click()
        await expect(page.locator("#clinic-status")).to_have_text(
            "Saved: patients see no phone number."
        )
    await page.get_by_label("Phone number for patients").fill("+1 555 0199")
    await page.get_by_role("button", name="Save phone number").click()
    await expect(page.locator("#clinic-status")).to_have_text("Saved: patients see +1 555 0199.")
    for width in (1280, 390):
        patient = await browsers(width)
        await patient.goto(f"/join/{v.token}")
        footer = patient.get_by_role("contentinfo")
        await expect(footer).to_contain_text(v.clinic.name)
        await expect(footer.get_by_role("link", name="+1 555 0199")).to_have_attribute(
            "href", "tel:+15550199"
        )
        await expect(patient.get_by_label("Your date of birth")).to_be_visible()
        await patient.screenshot(path=shot(f"join-{width}.png"), full_page=True)
    # The admin page itself fits a phone: wide tables scroll inside their cards.
    phone_admin = await browsers(390)
    await sign_in(phone_admin, admin, "/admin", factory.db)
    await expect(phone_admin.locator("#audit-table tbody tr").first).to_be_visible()
    overflow = await phone_admin.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await phone_admin.screenshot(path=shot("admin-390.png"), full_page=True)

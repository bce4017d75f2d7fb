"""The waiting room in two real browsers: a patient from the link, a provider at the queue."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from app.core.db import Database
from tests.conftest import StaffAccount, fresh_totp_code
from tests.signaling.conftest import WaitingFactory


@pytest.fixture
def settings(settings_factory):
    return settings_factory(background_tasks=False)


@pytest.fixture
def waiting(db, factory, settings) -> WaitingFactory:
    return WaitingFactory(db, factory, settings)


@pytest.fixture
async def contexts(
    browser: Browser, live_server
) -> AsyncIterator[tuple[BrowserContext, BrowserContext]]:
    base = str(live_server.make_url("")).rstrip("/")
    patient = await browser.new_context(base_url=base)
    provider = await browser.new_context(base_url=base)
    await provider.grant_permissions(["notifications"])
    for ctx in (patient, provider):
        ctx.set_default_timeout(15_000)
    yield patient, provider
    await patient.close()
    await provider.close()


async def sign_in(
    page: Page, account: StaffAccount, landing: str, db: Database | None = None
) -> None:
    """Sign in through the page; an account with a second factor (every admin) also passes the
    code step, which needs `db` to let one admin sign in twice within one 30-second step."""
    await page.goto(f"/login?next={landing}")
    await page.get_by_label("Email").fill(account.user.email)
    await page.get_by_label("Password").fill(account.password)
    await page.get_by_role("button", name="Sign in").click()
    if account.totp_secret:
        assert db is not None, "an account with a second factor signs in with db="
        await page.wait_for_url("**/login/mfa**")
        await page.get_by_label("Code").fill(await fresh_totp_code(db, account))
        await page.get_by_role("button", name="Continue").click()
    await page.wait_for_url(f"**{landing}")


async def answer_intake(
    page: Page, *, reason: str = "A sore throat", symptoms: tuple[str, ...] = ()
) -> None:
    """The intake step: the one required question, and the symptoms to tick."""
    await page.get_by_label("What is the main reason for your visit today?").fill(reason)
    for symptom in symptoms:
        await page.get_by_label(symptom, exact=True).check()
    await page.get_by_role("button", name="Continue to the device check").click()


async def check_in(page: Page, token: str, *, symptoms: tuple[str, ...] = ()) -> None:
    await page.goto(f"/join/{token}")
    await page.get_by_label("Your date of birth").fill("1979-04-02")
    await page.get_by_role("button", name="Continue").click()
    await expect(page.locator("#consent-body")).to_contain_text("video instead of in person")
    await page.get_by_label("I have read this and I agree.").check()
    await page.get_by_role("button", name="Continue").click()
    await answer_intake(page, symptoms=symptoms)
    await expect(page.locator("#device-results")).to_contain_text("Camera: working")
    await expect(page.locator("#device-results")).to_contain_text("Microphone: working")
    await expect(page.locator("#device-results")).to_contain_text("Connection to the clinic: good")
    await page.get_by_role("button", name="Go to the waiting room").click()
    await expect(page.locator("#waiting-place")).to_contain_text("You are number 1 in line")


async def test_link_identity_consent_devices_waiting_message_admit(
    contexts, waiting: WaitingFactory
):
    patient_ctx, provider_ctx = contexts
    v = await waiting.visitable()
    provider = await provider_ctx.new_page()
    await sign_in(provider, v.provider, "/provider/queue")
    row = provider.locator(f'tr[data-appointment="{v.appointment.id}"]')
    await expect(row).to_have_attribute("data-status", "not arrived")

    patient = await patient_ctx.new_page()
    await check_in(patient, v.token)

    await expect(row).to_have_attribute("data-status", "waiting")
    await expect(row).to_contain_text("camera ok, mic ok")
    await expect(provider).to_have_title(re.compile(r"^\(1\) "))

    name = f"{v.patient.given_name} {v.patient.family_name}"
    await provider.get_by_role("button", name=f"Message {name}").click()
    await provider.get_by_label(f"Message to {name}").fill("Running 10 minutes late")
    await provider.get_by_role("button", name="Send").click()
    await expect(row.get_by_role("status")).to_have_text("Sent")
    await expect(patient.locator("#waiting-messages")).to_contain_text("Running 10 minutes late")

    await provider.get_by_role("button", name=f"Admit {name}").click()
    await provider.wait_for_url("**/visit/*")
    # The waiting page becomes the visit at once (its connection was warm, instant admit).
    await expect(patient.get_by_role("heading", name="Visit in progress")).to_be_visible()
    await expect(patient).to_have_title("Video visit · OpenConsult")
    await patient.wait_for_url("**/visit/*")
    assert patient.url == provider.url


async def test_reload_keeps_the_place(contexts, waiting: WaitingFactory):
    patient_ctx, provider_ctx = contexts
    v = await waiting.visitable()
    provider = await provider_ctx.new_page()
    await sign_in(provider, v.provider, "/provider/queue")
    patient = await patient_ctx.new_page()
    await check_in(patient, v.token)
    row = provider.locator(f'tr[data-appointment="{v.appointment.id}"]')
    await expect(row).to_have_attribute("data-status", "waiting")
    await patient.reload()
    await expect(patient.locator("#waiting-place")).to_contain_text("You are number 1 in line")
    await expect(row).to_have_attribute("data-status", "waiting")


async def test_wrong_date_of_birth_is_explained(contexts, waiting: WaitingFactory):
    patient_ctx, _ = contexts
    v = await waiting.visitable()
    page = await patient_ctx.new_page()
    await page.goto(f"/join/{v.token}")
    await page.get_by_label("Your date of birth").fill("1980-01-01")
    await page.get_by_role("button", name="Continue").click()
    await expect(page.locator("#identity-error")).to_have_text(
        "That date of birth does not match our records. 4 attempt(s) left."
    )
    await expect(page.get_by_label("Your date of birth")).to_be_focused()


async def test_an_expired_link_says_so_without_patient_data(contexts, waiting: WaitingFactory):
    patient_ctx, _ = contexts
    clinic, provider, _, kind = await waiting.clinic_day()
    patient, _, token = await waiting.appointment(
        clinic, provider, kind, starts_in=-timedelta(hours=3)
    )
    page = await patient_ctx.new_page()
    response = await page.goto(f"/join/{token}")
    assert response is not None and response.status == 410
    await expect(page.get_by_role("alert")).to_contain_text("expired")
    assert patient.family_name not in await page.content()


async def test_a_provider_of_another_clinic_never_sees_the_patient(
    contexts, waiting: WaitingFactory
):
    patient_ctx, provider_ctx = contexts
    v = await waiting.visitable()
    stranger = await waiting.visitable()
    patient = await patient_ctx.new_page()
    await check_in(patient, v.token)
    page = await provider_ctx.new_page()
    await sign_in(page, stranger.provider, "/provider/queue")
    await expect(page.locator(f'tr[data-appointment="{stranger.appointment.id}"]')).to_be_visible()
    await expect(page.locator(f'tr[data-appointment="{v.appointment.id}"]')).to_have_count(0)
    assert v.patient.family_name not in await page.content()

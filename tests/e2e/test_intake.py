"""The intake step in real browsers: a patient's answers, saved as they go and kept over a
reload, raise a critical card in the provider's queue before the admit, and on the visit page."""

from __future__ import annotations

import os
import re
import tempfile

from playwright.async_api import expect

from app.core.models import Role
from tests.e2e.test_waiting_room import contexts, settings, sign_in, waiting  # noqa: F401
from tests.signaling.conftest import WaitingFactory


def _shots() -> str:
    return os.environ.get("OPENCONSULT_SCREENSHOTS") or tempfile.gettempdir()


async def test_chest_pain_with_breathlessness_shows_a_critical_card_before_admit(
    contexts,  # noqa: F811
    waiting: WaitingFactory,  # noqa: F811
):
    patient_ctx, provider_ctx = contexts
    v = await waiting.visitable()
    provider = await provider_ctx.new_page()
    await sign_in(provider, v.provider, "/provider/queue")
    row = provider.locator(f'tr[data-appointment="{v.appointment.id}"]')
    await expect(row).to_have_attribute("data-status", "not arrived")

    patient = await patient_ctx.new_page()
    await patient.set_viewport_size({"width": 1280, "height": 900})
    await patient.goto(f"/join/{v.token}")
    await patient.get_by_label("Your date of birth").fill("1979-04-02")
    await patient.get_by_role("button", name="Continue").click()
    await patient.get_by_label("I have read this and I agree.").check()
    await patient.get_by_role("button", name="Continue").click()

    # Sending without the required answer says which question, beside it, and goes there.
    reason = patient.get_by_label("What is the main reason for your visit today?")
    await patient.get_by_role("button", name="Continue to the device check").click()
    await expect(patient.locator("#q-reason-error")).to_have_text("Please answer this question.")
    await expect(reason).to_be_focused()
    await expect(reason).to_have_accessible_description("Please answer this question.")

    # Answers save as the patient goes, by keyboard too, and a reload finds them.
    await reason.fill("My chest feels tight")
    await patient.get_by_label("Chest pain", exact=True).focus()
    await patient.keyboard.press("Space")
    await patient.get_by_label("Shortness of breath", exact=True).check()
    # Asked only once there are symptoms (enableWhen).
    await expect(patient.get_by_text("How long have you had these symptoms?")).to_be_visible()
    await patient.get_by_label("1 to 3 days").check()
    await expect(patient.locator("#intake-saved")).to_have_text("Your answers are saved.")
    await patient.screenshot(path=f"{_shots()}/intake-1280.png", full_page=True)
    await patient.reload()
    await expect(reason).to_have_value("My chest feels tight")
    await expect(patient.get_by_label("Chest pain", exact=True)).to_be_checked()
    await expect(patient.get_by_label("Shortness of breath", exact=True)).to_be_checked()
    await expect(patient.get_by_text("Do you have any vaginal bleeding?")).to_be_hidden()
    await patient.set_viewport_size({"width": 390, "height": 844})
    await patient.screenshot(path=f"{_shots()}/intake-390.png", full_page=True)
    await patient.set_viewport_size({"width": 1280, "height": 900})
    await patient.get_by_role("button", name="Continue to the device check").click()

    # Before the admit: the provider's row carries the critical card (decision support).
    card = row.locator(".flag-card.flag-critical")
    await expect(card).to_contain_text("Critical: Chest pain with shortness of breath")
    await expect(card).to_contain_text("not a diagnosis")
    await expect(row).to_have_attribute("data-status", "checking in")

    await expect(patient.locator("#device-results")).to_contain_text("Camera: working")
    await patient.get_by_role("button", name="Go to the waiting room").click()
    await expect(row).to_have_attribute("data-status", "waiting")
    await expect(card).to_be_visible()
    await provider.set_viewport_size({"width": 1280, "height": 900})
    await provider.screenshot(path=f"{_shots()}/intake-queue-1280.png", full_page=True)
    await provider.set_viewport_size({"width": 390, "height": 844})
    await provider.screenshot(path=f"{_shots()}/intake-queue-390.png", full_page=True)
    await provider.set_viewport_size({"width": 1280, "height": 900})

    # A rule never blocks the visit: the provider admits, and the visit page shows the card.
    name = f"{v.patient.given_name} {v.patient.family_name}"
    await provider.get_by_role("button", name=f"Admit {name}").click()
    await provider.wait_for_url("**/visit/*")
    await provider.reload()
    cards = provider.locator("#intake-cards")
    await expect(cards.locator(".flag-card.flag-critical")).to_contain_text(
        "Chest pain with shortness of breath"
    )
    await expect(cards).to_contain_text("not a diagnosis")
    await provider.screenshot(path=f"{_shots()}/intake-visit-1280.png", full_page=True)
    await provider.set_viewport_size({"width": 390, "height": 844})
    await provider.screenshot(path=f"{_shots()}/intake-visit-390.png", full_page=True)


async def test_an_admin_replaces_the_questionnaire_and_reads_what_is_wrong(
    context,
    waiting: WaitingFactory,  # noqa: F811
    factory,
    db,
):
    v = await waiting.visitable()
    admin = await factory.staff(Role.ADMIN, v.clinic)
    page = await context.new_page()
    await sign_in(page, admin, "/admin", db)
    await page.get_by_role("link", name="Intake questions and red-flag rules").click()
    questionnaire = page.get_by_label("Questionnaire (JSON)")
    await expect(questionnaire).to_have_value(re.compile('"linkId": "reason"'))
    await expect(page.get_by_label("Visit type")).to_contain_text("Video 20")
    text = await questionnaire.input_value()
    await questionnaire.fill(text.replace('"type": "text"', '"type": "colour"', 1))
    await page.get_by_role("button", name="Save for this visit type").click()
    errors = page.locator("#intake-admin-errors")
    await expect(errors).to_contain_text("The questionnaire is not valid.")
    await expect(errors).to_contain_text("questionnaire.item.0.type")
    await page.screenshot(path=f"{_shots()}/intake-admin-1280.png", full_page=True)
    await questionnaire.fill(text.replace("Before your visit", "Before your video visit"))
    await page.get_by_role("button", name="Save for this visit type").click()
    await expect(page.locator("#intake-admin-status")).to_have_text("Saved.")
    await expect(page.locator("#intake-default")).to_contain_text("has its own questions")
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.screenshot(path=f"{_shots()}/intake-admin-390.png", full_page=True)

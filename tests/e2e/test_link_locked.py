"""A join link locked by wrong dates of birth, in two real browsers: the patient reads whom to
call, the provider unlocks it from the queue with the keyboard, and the same link works again."""

from __future__ import annotations

from playwright.async_api import expect

from app.core.models import Clinic
from tests.e2e.test_waiting_room import contexts, settings, sign_in, waiting
from tests.signaling.conftest import WaitingFactory

__all__ = ["contexts", "settings", "waiting"]  # the waiting room's fixtures, shared

PHONE = "+1 212 555 0177"


async def test_the_identity_step_drops_the_loading_line(contexts, waiting: WaitingFactory):
    patient_ctx, _ = contexts
    v = await waiting.visitable()
    page = await patient_ctx.new_page()
    await page.goto(f"/join/{v.token}")
    await expect(page.get_by_label("Your date of birth")).to_be_visible()
    await expect(page.locator("#join-status")).to_have_text("")
    await expect(page.get_by_text("Loading your check-in")).to_have_count(0)


async def test_locked_link_says_whom_to_call_and_staff_unlock_it(
    contexts, db, waiting: WaitingFactory
):
    patient_ctx, provider_ctx = contexts
    v = await waiting.visitable()
    async with db.session() as session:
        clinic = await session.get(Clinic, v.clinic.id)
        clinic.phone = PHONE
        session.add(clinic)
        await session.commit()
    name = f"{v.patient.given_name} {v.patient.family_name}"
    provider = await provider_ctx.new_page()
    await sign_in(provider, v.provider, "/provider/queue")
    row = provider.locator(f'tr[data-appointment="{v.appointment.id}"]')
    await expect(row).to_have_attribute("data-status", "not arrived")

    patient = await patient_ctx.new_page()
    await patient.goto(f"/join/{v.token}")
    birth_date = patient.get_by_label("Your date of birth")
    for left in (4, 3, 2, 1):
        await birth_date.fill("1980-01-01")
        await patient.get_by_role("button", name="Continue").click()
        await expect(patient.locator("#identity-error")).to_contain_text(f"{left} attempt(s) left")
    await birth_date.fill("1980-01-01")
    await patient.get_by_role("button", name="Continue").click()
    locked = patient.locator("#link-locked")
    await expect(locked).to_be_visible()
    await expect(locked).to_be_focused()
    await expect(locked.get_by_role("link", name=PHONE)).to_have_attribute(
        "href", "tel:+12125550177"
    )
    await expect(patient.get_by_text("Check-in is open")).to_be_hidden()
    await expect(birth_date).to_be_hidden()

    await expect(row).to_have_attribute("data-status", "link locked")
    alert = provider.locator("#queue-alerts")
    await expect(alert).to_contain_text(f"{name}: A join link was locked")
    await expect(row.get_by_role("button", name=f"Unlock check-in for {name}")).to_be_visible()
    unlock = alert.get_by_role("button", name=f"Unlock check-in for {name}")
    await unlock.focus()
    await provider.keyboard.press("Enter")
    done = provider.get_by_text(f"Check-in unlocked for {name}")
    await expect(done).to_be_focused()
    await expect(alert).not_to_contain_text("A join link was locked")
    await expect(row).to_have_attribute("data-status", "not arrived")
    await expect(row.get_by_role("button", name=f"Unlock check-in for {name}")).to_have_count(0)

    await patient.reload()
    await patient.get_by_label("Your date of birth").fill("1979-04-02")
    await patient.get_by_role("button", name="Continue").click()
    await expect(patient.locator("#consent-body")).to_contain_text("video instead of in person")

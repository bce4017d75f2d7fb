"""An on-demand (walk-in) patient end to end, in real browsers: the admin opens the clinic's
walk-in queue on the admin page; a patient opens the public link, says who they are and why they
come, checks in and waits; the provider takes them from the queue; in the visit the provider
writes and signs the note, and it is in the patient's record."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect
from sqlmodel import select

from app.core.models import Patient, Role
from tests.e2e.test_visit import (  # noqa: F401
    contexts,
    sees_and_hears,
    settings,
    waiting,
)
from tests.e2e.test_waiting_room import answer_intake, sign_in
from tests.signaling.conftest import WaitingFactory

WAIT_MS = 15_000


async def test_walk_in_from_the_public_link_to_a_signed_note(
    contexts,  # noqa: F811
    waiting: WaitingFactory,  # noqa: F811
    browser,
    live_server,
    db,
    factory,
):
    patient_ctx, provider_ctx = contexts
    clinic, provider_account, _scheduler, _kind = await waiting.clinic_day()
    admin_account = await factory.staff(Role.ADMIN, clinic)

    # The admin opens the walk-in queue: link code, every day all day, the provider.
    admin_ctx = await browser.new_context(base_url=str(live_server.make_url("")).rstrip("/"))
    admin_ctx.set_default_timeout(WAIT_MS)
    admin = await admin_ctx.new_page()
    await sign_in(admin, admin_account, "/admin", db)
    section = admin.get_by_role("region", name="Walk-in queue (on-demand visits)")
    await expect(section.locator("#walk-in-link")).to_have_text("Not set up yet.")
    await section.get_by_label("Link code").fill("riverside-walk-in")
    await section.get_by_label("Open the walk-in queue during its hours").check()
    await section.get_by_label(provider_account.user.full_name).check()
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"):
        await section.get_by_label(f"{day} opens").fill("00:00")
        await section.get_by_label(f"{day} closes").fill("00:00")
    await section.get_by_role("button", name="Save the walk-in queue").click()
    await expect(section.locator("#walk-in-link")).to_contain_text(
        "/walk-in/riverside-walk-in (open now)"
    )
    await admin_ctx.close()

    provider = await provider_ctx.new_page()
    await sign_in(provider, provider_account, "/provider/queue")

    # The patient: the public link, their details, then the usual check-in.
    patient = await patient_ctx.new_page()
    await patient.goto("/walk-in/riverside-walk-in")
    await expect(
        patient.get_by_role("heading", name=f"Walk-in video visit at {clinic.name}")
    ).to_be_visible()
    await patient.get_by_label("First name").fill("Wanda")
    await patient.get_by_label("Last name").fill("Walkin")
    await patient.get_by_label("Date of birth").fill("1988-02-29")
    await patient.get_by_label("Email").fill("wanda@mail.example")
    await patient.get_by_label("What would you like to be seen for?").fill("Painful ear")
    await patient.get_by_role("button", name="Continue").click()
    await patient.wait_for_url("**/j/*")
    await expect(patient.locator("#walk-in-note")).to_contain_text("next available provider")
    await expect(patient.locator("#consent-body")).to_contain_text("video instead of in person")
    await patient.get_by_label("I have read this and I agree.").check()
    await patient.get_by_role("button", name="Continue").click()
    await answer_intake(patient, reason="Painful ear")
    await expect(patient.locator("#device-results")).to_contain_text("Camera: working")
    await patient.get_by_role("button", name="Go to the waiting room").click()
    await expect(patient.locator("#waiting-place")).to_contain_text("You are number 1 in line")

    # The provider sees a walk-in in their queue and takes them.
    row = provider.locator("tr", has_text="Wanda Walkin")
    await expect(row.locator(".walk-in-badge")).to_have_text("Walk-in", timeout=WAIT_MS)
    await expect(row).to_contain_text("Painful ear")
    await provider.get_by_role("button", name="Admit Wanda Walkin").click()
    await provider.wait_for_url("**/visit/*", timeout=WAIT_MS)
    await patient.wait_for_url("**/visit/*", timeout=WAIT_MS)
    await sees_and_hears(provider, "the walk-in patient")
    await sees_and_hears(patient, "the provider")

    # The note, written and signed beside the video, lands in the patient's record.
    provider.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await provider.get_by_label("Chief complaint").press_sequentially("Ear pain", delay=10)
    await provider.get_by_label("Assessment").press_sequentially("Otitis externa", delay=10)
    await provider.get_by_label("Plan", exact=True).press_sequentially("Ear drops", delay=10)
    await expect(provider.locator("#save-status")).to_contain_text("Saved at", timeout=WAIT_MS)
    await provider.get_by_role("button", name="Sign note").click()
    await expect(provider.locator("#note-state")).to_have_text("Signed", timeout=WAIT_MS)

    async with db.session() as session:
        found = (await session.exec(select(Patient).where(Patient.family_name == "Walkin"))).one()
    record = await provider_ctx.new_page()
    await record.goto(f"/records/patients/{found.id}")
    for text in ("Otitis externa", "Ear drops"):
        await expect(record.locator("#record")).to_contain_text(text, timeout=WAIT_MS)

"""The consult note beside the video, in two real browsers: the provider writes, reloads, signs
and amends the note during a held visit; after the end, the patient reads the summary from
their link: the signed plan and its amendment, nothing else of the note."""

from __future__ import annotations

import asyncio
import re

from playwright.async_api import expect

from tests.e2e.test_visit import (  # noqa: F401
    contexts,
    in_visit,
    sees_and_hears,
    settings,
    waiting,
)
from tests.signaling.conftest import WaitingFactory

WAIT_MS = 15_000


async def test_the_provider_writes_the_note_in_the_visit_and_the_patient_reads_the_plan(
    contexts,  # noqa: F811
    waiting: WaitingFactory,  # noqa: F811
):
    patient_ctx, provider_ctx = contexts
    v = await waiting.visitable()
    patient, provider = await in_visit(patient_ctx, provider_ctx, v)
    provider.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))

    # The notes aside: the visit's clock and the editor, for the provider only.
    notes = provider.get_by_role("complementary", name="Consult note")
    await expect(notes.locator("#note-editor")).to_be_visible(timeout=WAIT_MS)
    await expect(provider.locator("#visit-duration")).to_have_text(
        re.compile(r"^\d+ min \d\d s$"), timeout=WAIT_MS
    )
    await expect(patient.locator("#visit-notes")).to_have_count(0, timeout=WAIT_MS)

    complaint = provider.get_by_label("Chief complaint")
    await complaint.press_sequentially("Sore throat", delay=20, timeout=WAIT_MS)
    await expect(provider.locator("#save-status")).to_contain_text("Saved at", timeout=WAIT_MS)
    draft_only = provider.get_by_label("Free text")
    await draft_only.press_sequentially("Draft-only remark", delay=10, timeout=WAIT_MS)
    await expect(provider.locator("#save-status")).to_contain_text("Saved at", timeout=WAIT_MS)

    # A reload mid-typing keeps the text (the editor's pagehide flush), and the video returns.
    plan = provider.get_by_label("Plan", exact=True)
    await plan.press_sequentially("Fluids and rest", delay=15, timeout=WAIT_MS)
    await provider.reload(timeout=WAIT_MS)
    await expect(plan).to_have_value("Fluids and rest", timeout=WAIT_MS)
    await expect(provider.get_by_label("Chief complaint")).to_have_value(
        "Sore throat", timeout=WAIT_MS
    )
    # The panel loads after the page, usually once the flush has landed: "Last saved …".
    await expect(provider.locator("#save-status")).to_contain_text(
        re.compile("Saved at|Last saved"), timeout=WAIT_MS
    )
    assert await provider.locator("#conflict").is_hidden()
    await sees_and_hears(provider, "the patient after the reload", limit=15)

    # The draft-only text goes before signing; the assessment is for the record only.
    await provider.get_by_label("Free text").fill("", timeout=WAIT_MS)
    await provider.get_by_label("Assessment").press_sequentially(
        "Viral pharyngitis", delay=10, timeout=WAIT_MS
    )
    await provider.get_by_role("button", name="Sign note").click(timeout=WAIT_MS)
    await expect(provider.locator("#note-state")).to_have_text("Signed", timeout=WAIT_MS)
    await expect(plan).to_have_attribute("readonly", "", timeout=WAIT_MS)

    await provider.get_by_label("Reason").fill("Dose", timeout=WAIT_MS)
    await provider.get_by_label("Addendum", exact=True).fill("Ibuprofen 400 mg if needed")
    await provider.get_by_label("It amends the plan").check(timeout=WAIT_MS)
    await provider.get_by_role("button", name="Add addendum").click(timeout=WAIT_MS)
    await expect(provider.locator("#addenda")).to_contain_text(
        "Ibuprofen 400 mg if needed", timeout=WAIT_MS
    )

    # The record shows the signed note and its addendum.
    record = await provider_ctx.new_page()
    await record.goto(f"/records/patients/{v.patient.id}", timeout=WAIT_MS)
    notes_list = record.locator("#record")
    for text in ("Viral pharyngitis", "Fluids and rest", "Ibuprofen 400 mg if needed"):
        await expect(notes_list).to_contain_text(text, timeout=WAIT_MS)
    await expect(notes_list).to_contain_text("amends the plan", timeout=WAIT_MS)
    await record.close()

    # The provider ends the visit; the clock stops.
    await provider.get_by_role("button", name="End visit").click(timeout=WAIT_MS)
    await expect(provider.locator("#visit-status")).to_contain_text(
        "The visit has ended", timeout=WAIT_MS
    )
    await expect(provider.locator("#visit-duration-state")).to_have_text(
        "(visit ended)", timeout=WAIT_MS
    )
    await expect(patient.get_by_role("heading", name="Visit ended")).to_be_visible(timeout=WAIT_MS)

    # The patient follows the visit page to their link: the summary, with the signed plan only.
    await patient.get_by_role("link", name="Read your visit summary").click(timeout=WAIT_MS)
    await patient.wait_for_url(f"**/join/{v.token}", timeout=WAIT_MS)
    summary = patient.get_by_role("region", name="Your visit summary")
    await expect(summary).to_be_visible(timeout=WAIT_MS)
    await expect(patient.locator("#summary-plan")).to_have_text("Fluids and rest", timeout=WAIT_MS)
    await expect(patient.locator("#summary-amendments")).to_contain_text(
        "Ibuprofen 400 mg if needed", timeout=WAIT_MS
    )
    await expect(patient.locator("#summary-provider")).to_have_text(
        v.provider.user.full_name, timeout=WAIT_MS
    )
    await expect(patient.locator("#summary-duration")).to_contain_text("minute", timeout=WAIT_MS)
    shown = await patient.content()
    for private in ("Sore throat", "Draft-only remark", "Viral pharyngitis", "Dose"):
        assert private not in shown, private

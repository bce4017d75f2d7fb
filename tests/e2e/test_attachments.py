"""Photos and documents in real browsers: a photo the patient adds during check-in appears for
the provider beside the note with no EXIF left, a document added during the visit appears there
at once, and a provider of another clinic gets none of it."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from PIL import Image
from playwright.async_api import expect

from app.core.models import Role
from tests.attachments.test_attachments_api import gps_jpeg, pdf
from tests.e2e.test_waiting_room import contexts, settings, sign_in, waiting  # noqa: F401
from tests.signaling.conftest import WaitingFactory


def _shots() -> str:
    return os.environ.get("OPENCONSULT_SCREENSHOTS") or tempfile.gettempdir()


async def test_a_patient_s_photo_reaches_their_provider_without_exif_and_no_other_clinic(
    contexts,  # noqa: F811
    waiting: WaitingFactory,  # noqa: F811
    factory,
    browser,
    live_server,
    tmp_path: Path,
):
    patient_ctx, provider_ctx = contexts
    v = await waiting.visitable()
    photo_path = tmp_path / "rash on my arm.jpg"
    photo_path.write_bytes(gps_jpeg())
    letter_path = tmp_path / "referral.pdf"
    letter_path.write_bytes(pdf())
    script_path = tmp_path / "holiday.jpg"
    script_path.write_bytes(b"#!/bin/sh\necho not a photo\n")

    provider = await provider_ctx.new_page()
    await sign_in(provider, v.provider, "/provider/queue")

    # Check-in: after the consent, the patient adds a photo beside the intake questions.
    patient = await patient_ctx.new_page()
    await patient.set_viewport_size({"width": 1280, "height": 900})
    await patient.goto(f"/join/{v.token}")
    files = patient.locator("#patient-files")
    await patient.get_by_label("Your date of birth").fill("1979-04-02")
    await patient.get_by_role("button", name="Continue").click()
    await expect(files).to_be_hidden()  # nothing before the consent
    await patient.get_by_label("I have read this and I agree.").check()
    await patient.get_by_role("button", name="Continue").click()
    await expect(files).to_be_visible()
    await expect(patient.locator("#patient-files-list")).to_contain_text("No files yet.")

    chooser = patient.get_by_label("Choose a photo (JPEG, PNG or WebP), a PDF or a DICOM file")
    await chooser.set_input_files(str(script_path))
    await patient.get_by_role("button", name="Add the file").click()
    await expect(patient.locator("#patient-files-error")).to_contain_text("This file is not")
    await chooser.set_input_files(str(photo_path))
    await patient.get_by_role("button", name="Add the file").click()
    await expect(patient.locator("#patient-files-status")).to_have_text("Added rash on my arm.jpg.")
    await expect(patient.locator("#patient-files-error")).to_have_text("")
    mine = patient.locator("#patient-files-list .file-item")
    await expect(mine).to_have_count(1)
    await expect(mine.first).to_contain_text("rash on my arm.jpg")
    await patient.wait_for_function(
        "() => { const i = document.querySelector('#patient-files img.file-thumb');"
        " return i && i.complete && i.naturalWidth === 64; }"
    )
    await patient.screenshot(path=f"{_shots()}/attachments-checkin-1280.png", full_page=True)

    await patient.get_by_label("What is the main reason for your visit today?").fill("A rash")
    await patient.get_by_role("button", name="Continue to the device check").click()
    await expect(patient.locator("#device-results")).to_contain_text("Camera: working")
    await patient.get_by_role("button", name="Go to the waiting room").click()

    # The provider admits and sees the photo beside the note, as a thumbnail.
    name = f"{v.patient.given_name} {v.patient.family_name}"
    await provider.get_by_role("button", name=f"Admit {name}").click()
    await provider.wait_for_url("**/visit/*")
    await provider.reload()
    theirs = provider.locator("#visit-notes #staff-files .file-item")
    await expect(theirs).to_have_count(1)
    await expect(theirs.first).to_contain_text("rash on my arm.jpg")
    thumb = theirs.first.locator("img.file-thumb")
    await expect(thumb).to_have_attribute("alt", "Photo: rash on my arm.jpg")
    await provider.wait_for_function(
        "() => { const i = document.querySelector('#staff-files img.file-thumb');"
        " return i && i.complete && i.naturalWidth === 64; }"
    )
    href = await theirs.first.get_by_role("link", name="rash on my arm.jpg").get_attribute("href")
    assert href is not None
    served = await provider.request.get(href)
    assert served.status == 200
    assert served.headers["content-disposition"].startswith("attachment;")
    body = await served.body()
    image = Image.open(io.BytesIO(body))
    assert image.size == (64, 48) and len(image.getexif()) == 0 and "exif" not in image.info
    assert b"Exif" not in body

    # During the visit the patient adds a letter: it appears beside the note without a reload.
    await expect(files).to_be_visible()
    await chooser.set_input_files(str(letter_path))
    await patient.get_by_role("button", name="Add the file").click()
    await expect(patient.locator("#patient-files-list .file-item")).to_have_count(2)
    await expect(theirs).to_have_count(2)
    await expect(theirs.nth(1)).to_contain_text("referral.pdf")
    await expect(theirs.nth(1)).to_contain_text("2 page(s)")
    await provider.screenshot(path=f"{_shots()}/attachments-visit-1280.png", full_page=True)
    await provider.set_viewport_size({"width": 390, "height": 844})
    await provider.screenshot(path=f"{_shots()}/attachments-visit-390.png", full_page=True)

    # The patient's record lists them too, beside the notes.
    visit_url = provider.url
    await provider.set_viewport_size({"width": 1280, "height": 900})
    await provider.goto(f"/records/patients/{v.patient.id}")
    on_record = provider.locator("#staff-files .file-item")
    await expect(on_record).to_have_count(2)
    await expect(on_record.first).to_contain_text("rash on my arm.jpg")

    # A provider of another clinic: neither the list nor the photo, nor the visit page.
    other_clinic = await factory.clinic()
    outsider = await factory.staff(Role.PROVIDER, other_clinic)
    base = str(live_server.make_url("")).rstrip("/")
    outsider_ctx = await browser.new_context(base_url=base)
    try:
        page = await outsider_ctx.new_page()
        await sign_in(page, outsider, "/provider/queue")
        listing = f"/api/appointments/{v.appointment.id}/attachments"
        assert (await page.request.get(listing)).status == 404
        assert (await page.request.get(href)).status == 404
        record = f"/api/patients/{v.patient.id}/attachments"
        assert (await page.request.get(record)).status == 404
        await page.goto(visit_url)
        await expect(page.locator("#staff-files")).to_have_count(0)
        await expect(page.get_by_text("rash on my arm.jpg")).to_have_count(0)
    finally:
        await outsider_ctx.close()

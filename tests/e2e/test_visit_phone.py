"""The visit on a phone (390 px): the picture fills the screen under the controls; plain-words
quality for patients; the summary to keep (print / PDF); the expired link says whom to call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.async_api import expect

from app.core.models import Clinic
from scheduling.models import Appointment, AppointmentStatus
from signaling.models import Visit
from tests.e2e.test_visit import (  # noqa: F401
    contexts,
    in_visit,
    settings,
    waiting,
)
from tests.signaling.conftest import WaitingFactory

PHONE = {"width": 390, "height": 844}


async def test_on_a_phone_the_picture_fills_the_screen_and_quality_is_in_words(
    tmp_path,
    contexts,  # noqa: F811
    waiting: WaitingFactory,  # noqa: F811
):
    patient_ctx, provider_ctx = contexts
    v = await waiting.visitable()
    patient, provider = await in_visit(patient_ctx, provider_ctx, v)
    await patient.set_viewport_size(PHONE)

    video = patient.locator("#remote-grid video")
    controls = patient.get_by_role("group", name="Call controls")
    await expect(video).to_be_visible()
    box = await video.bounding_box()
    bar = await controls.bounding_box()
    assert box is not None and bar is not None
    assert box["x"] <= 1 and box["width"] >= PHONE["width"] - 2, box
    assert box["y"] <= 1 and box["height"] >= PHONE["height"] - 2, box
    # The controls lie over the picture, at its foot, all on screen.
    assert bar["y"] > box["y"] + box["height"] / 2, (bar, box)
    assert bar["y"] + bar["height"] <= box["y"] + box["height"] + 1, (bar, box)
    mute = await patient.get_by_role("button", name="Mute microphone").bounding_box()
    assert mute is not None and mute["y"] + mute["height"] <= PHONE["height"]
    await patient.screenshot(path=tmp_path / "visit-390.png")

    # Words for the patient, figures only for the provider.
    await expect(patient.locator("#quality-level")).to_have_text("Good connection")
    await expect(patient.locator("#quality-detail")).to_have_text("")
    await expect(provider.locator("#quality-level")).to_have_text("Good connection")
    await expect(provider.locator("#quality-detail")).to_contain_text("kbit/s")
    assert "kbit/s" not in await patient.locator("body").inner_text()
    await patient.evaluate(
        """async () => {
          const q = await import("/static/js/visit/quality.js");
          new q.QualityMeter({ peer: () => null, level: document.getElementById("quality-level"),
            detail: document.getElementById("quality-detail"),
            warning: document.getElementById("quality-warning") })
            .show({ level: "Fair", sendKbps: 40, receiveKbps: 30, lossRate: 0.04, rttMs: 100 });
        }"""
    )
    await expect(patient.locator("#quality-level")).to_have_text(
        "Weak connection: the picture may stutter"
    )
    assert "kbit/s" not in await patient.locator("body").inner_text()


async def ended_visit(factory: WaitingFactory, phone: str) -> str:
    """A patient's appointment whose visit took place and ended; the join link's token."""
    clinic, provider, _, kind = await factory.clinic_day()
    async with factory.db.session() as session:
        stored = await session.get(Clinic, clinic.id)
        assert stored is not None
        stored.phone = phone
        session.add(stored)
        await session.commit()
    patient, appointment, token = await factory.appointment(
        clinic, provider, kind, starts_in=-timedelta(minutes=15)
    )
    async with factory.db.session() as session:
        stored_appointment = await session.get(Appointment, appointment.id)
        assert stored_appointment is not None
        stored_appointment.status = AppointmentStatus.FULFILLED
        session.add(stored_appointment)
        session.add(
            Visit(
                appointment_id=appointment.id,
                clinic_id=clinic.id,
                provider_id=provider.user.id,
                patient_id=patient.id,
                started_at=datetime.now(UTC) - timedelta(minutes=14),
                ended_at=datetime.now(UTC) - timedelta(minutes=2),
            )
        )
        await session.commit()
    return token


async def test_the_patient_can_print_or_save_the_summary(
    tmp_path,
    contexts,  # noqa: F811
    waiting: WaitingFactory,  # noqa: F811
):
    patient_ctx, _ = contexts
    token = await ended_visit(waiting, "+1 555 0199")
    page = await patient_ctx.new_page()
    await page.add_init_script(
        "window.print = () => { window.printed = (window.printed || 0) + 1; }"
    )
    await page.goto(f"/join/{token}")
    await page.get_by_label("Your date of birth").fill("1979-04-02")
    await page.get_by_role("button", name="Show my summary").click()
    summary = page.get_by_role("region", name="Your visit summary")
    await expect(summary).to_be_visible()
    button = page.get_by_role("button", name="Print / save as PDF")
    await button.focus()
    await page.keyboard.press("Enter")
    assert await page.evaluate("() => window.printed") == 1
    for width in (1280, 390):
        await page.set_viewport_size({"width": width, "height": 900})
        await page.screenshot(path=tmp_path / f"summary-{width}.png", full_page=True)

    # On paper: the summary, without the page's header and buttons.
    await page.emulate_media(media="print")
    await expect(summary).to_be_visible()
    await expect(page.locator("#summary-provider")).to_be_visible()
    await expect(button).to_be_hidden()
    await expect(page.locator("header.topbar")).to_be_hidden()
    await page.screenshot(path=tmp_path / "summary-print.png", full_page=True)


async def test_an_expired_link_says_how_to_reach_the_clinic(
    tmp_path,
    contexts,  # noqa: F811
    waiting: WaitingFactory,  # noqa: F811
):
    patient_ctx, _ = contexts
    clinic, provider, _, kind = await waiting.clinic_day()
    async with waiting.db.session() as session:
        stored = await session.get(Clinic, clinic.id)
        assert stored is not None
        stored.phone = "+1 555 0142"
        session.add(stored)
        await session.commit()
    patient, _, token = await waiting.appointment(
        clinic, provider, kind, starts_in=-timedelta(hours=3)
    )
    page = await patient_ctx.new_page()
    response = await page.goto(f"/join/{token}")
    assert response is not None and response.status == 410
    await expect(page.get_by_role("alert")).to_contain_text("expired")
    contact = page.locator("#clinic-contact")
    await expect(contact).to_contain_text(clinic.name)
    phone = contact.get_by_role("link", name="+1 555 0142")
    await expect(phone).to_have_attribute("href", "tel:+15550142")
    assert patient.family_name not in await page.content()
    for width in (1280, 390):
        await page.set_viewport_size({"width": width, "height": 800})
        await page.screenshot(path=tmp_path / f"expired-{width}.png", full_page=True)

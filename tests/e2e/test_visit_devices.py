"""The device check's choices carry into the visit: devices, speaker, muted, camera off."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.e2e.test_visit import (  # noqa: F401
    contexts,
    remote,
    sees_and_hears,
    settings,
    wait_remote,
    waiting,
)
from tests.e2e.test_waiting_room import answer_intake, sign_in
from tests.signaling.conftest import WaitingFactory


async def option_value(page: Page, select: str, label: str) -> str:
    value: str = await page.locator(f"#{select} option", has_text=label).get_attribute("value")
    return value


async def test_chosen_devices_and_joining_muted_with_camera_off_carry_into_the_visit(
    tmp_path,
    contexts,  # noqa: F811
    waiting: WaitingFactory,  # noqa: F811
):
    patient_ctx, provider_ctx = contexts
    v = await waiting.visitable()
    provider = await provider_ctx.new_page()
    await sign_in(provider, v.provider, "/provider/queue")

    patient = await patient_ctx.new_page()
    await patient.goto(f"/join/{v.token}")
    await patient.get_by_label("Your date of birth").fill("1979-04-02")
    await patient.get_by_role("button", name="Continue").click()
    await patient.get_by_label("I have read this and I agree.").check()
    await patient.get_by_role("button", name="Continue").click()
    await answer_intake(patient)
    await expect(patient.locator("#device-results")).to_contain_text("Camera: working")

    # Chromium's fake devices: three microphones, one camera, three speakers, all listed by name.
    await expect(patient.get_by_label("Camera", exact=True)).to_contain_text("fake_device_0")
    await expect(patient.get_by_label("Microphone", exact=True)).to_contain_text(
        "Fake Audio Input 2"
    )
    microphone = await option_value(patient, "microphone-select", "Fake Audio Input 2")
    await patient.get_by_label("Microphone", exact=True).select_option(label="Fake Audio Input 2")
    # Choosing a microphone tests again, with that microphone.
    await patient.wait_for_function(
        """(id) => {
          const stream = document.getElementById('preview').srcObject;
          return stream && stream.getAudioTracks()[0].getSettings().deviceId === id;
        }""",
        arg=microphone,
    )
    await expect(patient.locator("#device-results")).to_contain_text("Microphone: working")
    await expect(patient.get_by_role("button", name="Go to the waiting room")).to_be_enabled()

    speaker = await option_value(patient, "speaker-select", "Fake Audio Output 1")
    await patient.get_by_label("Speaker", exact=True).select_option(label="Fake Audio Output 1")
    await patient.get_by_role("button", name="Play a test sound").click()
    await expect(patient.locator("#speaker-test-status")).to_contain_text("Did you hear it?")
    await expect(patient.locator("#speaker-test-audio")).to_have_attribute("data-sink", speaker)

    for width in (1280, 390):
        await patient.set_viewport_size({"width": width, "height": 900})
        await patient.screenshot(path=tmp_path / f"devices-{width}.png", full_page=True)
    await patient.set_viewport_size({"width": 1280, "height": 900})
    await patient.get_by_label("Join with my microphone off").check()
    await patient.get_by_label("Join with my camera off").check()
    await patient.get_by_role("button", name="Go to the waiting room").click()
    await expect(patient.locator("#waiting-place")).to_contain_text("You are number 1 in line")

    name = f"{v.patient.given_name} {v.patient.family_name}"
    await provider.get_by_role("button", name=f"Admit {name}").click()
    await provider.wait_for_url("**/visit/*")
    await sees_and_hears(provider, "the patient's (black) picture and (silent) sound")
    await sees_and_hears(patient, "the provider")

    # The visit starts as chosen: muted, camera off, on the chosen microphone and speaker.
    await expect(patient.get_by_role("button", name="Unmute microphone")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(patient.get_by_role("button", name="Turn camera on")).to_have_attribute(
        "aria-pressed", "true"
    )
    used = await patient.evaluate("() => window.openconsultVisit.devices()")
    assert used["microphone"] == microphone
    assert used["micOn"] is False and used["cameraOn"] is False
    assert used["speakers"] and set(used["speakers"]) == {speaker}

    await patient.screenshot(path=tmp_path / "visit-patient-1280.png", full_page=True)
    await provider.screenshot(path=tmp_path / "visit-provider-1280.png", full_page=True)
    await provider.set_viewport_size({"width": 390, "height": 844})
    await provider.screenshot(path=tmp_path / "visit-provider-390.png")

    # The provider sees that state, and sees it change.
    caption = provider.locator("#remote-grid figcaption")
    await expect(caption).to_have_text(f"{name} (microphone off, camera off)")
    await patient.get_by_role("button", name="Unmute microphone").click()
    await expect(caption).to_have_text(f"{name} (camera off)")
    await patient.get_by_role("button", name="Turn camera on").click()
    await expect(caption).to_have_text(name)

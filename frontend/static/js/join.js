// The way into a visit: the patient's check-in (identity, consent, intake questions, device
// check, waiting room), or a guest's (their name instead of the identity check, no intake; they
// wait to be let in, not in line).
// This entry takes the person from step to step; the steps' shared calls are in join/checkin.js,
// the intake questions in join/intake.js, the device check in join/devices.js, the waiting room
// in join/waiting_room.js.
import { call, isGuest, say, show, startAudio, stopped } from "./join/checkin.js";
import { startDeviceCheck, stopMedia } from "./join/devices.js";
import { startIntake } from "./join/intake.js";
import { loadTexts, saveTexts } from "./join/texts.js";
import { admitted, enterWaitingRoom } from "./join/waiting_room.js";

function goTo(progress) {
  say("");
  if (progress.step === "identity") show("identity");
  else if (progress.step === "name") show("name");
  else if (progress.step === "consent") loadConsent();
  else if (progress.step === "intake") startIntake(goTo).catch((error) => { if (!stopped(error)) say(error.message, true); });
  else if (progress.step === "device_check") startDeviceCheck();
  else if (progress.step === "waiting") enterWaitingRoom();
  else if (progress.step === "admitted") admitted(progress.visit_url);
}

// 1. Identity
document.getElementById("step-identity").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("birth-date");
  const message = document.getElementById("identity-error");
  if (!input.value) { message.textContent = "Please enter your date of birth."; input.focus(); return; }
  message.textContent = "";
  say("Checking…");
  try {
    goTo(await call("POST", "/identity", { birth_date: input.value }));
  } catch (error) {
    say("");
    if (!stopped(error)) { message.textContent = error.message; input.focus(); }
  }
});

// 1. A guest's name
document.getElementById("step-name").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("guest-name");
  const message = document.getElementById("name-error");
  if (!input.value.trim()) { message.textContent = "Please enter your name."; input.focus(); return; }
  message.textContent = "";
  try {
    goTo(await call("POST", "/name", { name: input.value.trim() }));
  } catch (error) {
    if (!stopped(error)) { message.textContent = error.message; input.focus(); }
  }
});

// 2. Consent
let consentVersion = null;
async function loadConsent() {
  // The text-message offer loads beside the consent; the step shows once, whole, with both.
  const [consent] = await Promise.all([call("GET", "/consent"), isGuest ? null : loadTexts()]);
  consentVersion = consent.version;
  document.getElementById("consent-title").textContent = consent.title;
  document.getElementById("consent-body").textContent = consent.body;
  show("consent");
}

document.getElementById("step-consent").addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = document.getElementById("consent-error");
  const box = document.getElementById("consent-accept");
  if (!box.checked) {
    message.textContent = "Please tick the box to agree; without consent the visit cannot take place.";
    box.setAttribute("aria-invalid", "true");
    box.focus();
    return;
  }
  box.removeAttribute("aria-invalid");
  message.textContent = "";
  try {
    // The click is a user gesture: audio for the level meter and the admit sound may start now.
    startAudio();
    if (!isGuest) await saveTexts();
    goTo(await call("POST", "/consent", { version: consentVersion, accepted: true }));
  } catch (error) {
    if (!stopped(error)) message.textContent = error.message;
    if (error.status === 409) await loadConsent();
  }
});

// 3. Devices and network (join/devices.js); on to the waiting room (join/waiting_room.js)
document.getElementById("devices-continue").addEventListener("click", async () => {
  stopMedia();
  try { goTo(await call("POST", "/waiting")); } catch (error) { if (!stopped(error)) say(error.message, true); }
});

(async () => {
  try {
    goTo(await call("GET", "/status"));
  } catch (error) {
    if (error.code === "step_missing") show(isGuest ? "name" : "identity");
    else if (!stopped(error)) say(error.message, true);
  }
})();

// Text messages on the scheduler page: the chosen patient's consent to texts (staff tick that
// the patient agreed, sent with the booking), and the words for a text's delivery.
import { api } from "../shared/api.js";

const $ = (id) => document.getElementById(id);
const WAYS = {
  staff_at_booking: "recorded by staff at booking",
  staff: "recorded by staff",
  patient_at_checkin: "given by the patient at check-in",
};

// Shows the consent box for a patient with a phone number: their consent if they gave it,
// else a box to tick when they agree now. Without a number, nothing to ask.
export async function showTextConsent(patient) {
  const box = $("text-consent-box");
  const input = $("text-consent");
  input.checked = false;
  box.hidden = !patient.phone;
  if (!patient.phone) return;
  $("text-consent-label").textContent =
    `${patient.given_name} agreed to get the join link and reminders by text message at ${patient.phone}`;
  $("text-consent-state").textContent = "Checking their consent to texts…";
  input.disabled = true;
  try {
    const consent = await api("GET", `/api/patients/${patient.id}/text-consent`);
    if (consent.agreed) {
      const when = new Date(consent.given_at).toLocaleDateString();
      $("text-consent-state").textContent = `Already agreed to texts (${WAYS[consent.way] || consent.way}, ${when}).`;
      input.checked = true;
    } else {
      $("text-consent-state").textContent = "Not agreed yet: tick the box only if they said yes. Without it, no text is sent.";
    }
  } catch (err) {
    $("text-consent-state").textContent = `Could not read their consent to texts: ${err.message}`;
  } finally {
    input.disabled = false;
  }
}

export function textConsentTicked() {
  return !$("text-consent-box").hidden && $("text-consent").checked;
}

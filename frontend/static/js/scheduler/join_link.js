// A patient's join link in staff hands (scheduler and provider pages): the panel that shows a
// link just made, to copy, and sending a new one (the old link stops working, so ask first).
import { api } from "../shared/api.js";
import { copyText } from "./delivery.js";

const $ = (id) => document.getElementById(id);

// Appointments whose patient can still use a link.
export const RESENDABLE = ["booked", "arrived", "checked-in"];

export function showLink(a) {
  $("link-patient").textContent = a.patient_name;
  $("link-url").value = a.join_url;
  const warning = a.warnings.map((w) => w.message).join(" ");
  $("link-warning").hidden = !warning;
  $("link-warning").textContent = warning;
  const by = [a.emailed && "by email", a.texted && "by text message"].filter(Boolean).join(" and ");
  $("link-note").textContent = by
    ? `The patient gets this link ${by}. Copy it to pass it on another way.`
    : "No email or text was sent: copy this link and give it to the patient.";
  $("link-panel").hidden = false;
}

export function wireCopy(say) {
  $("link-copy").addEventListener("click", () => copyText($("link-url"), say));
}

// Sends a new link after the user confirms; the fresh appointment, or null when they did not.
export async function resendLink(a, say) {
  if (!confirm(`Send ${a.patient_name} a new join link? The link they have now stops working.`)) return null;
  const fresh = await api("POST", `/api/appointments/${a.id}/resend-link`);
  const by = [fresh.emailed && "by email", fresh.texted && "by text message"].filter(Boolean).join(" and ");
  say(by ? `Sent a new link to ${fresh.patient_name}; the old one no longer works (sent ${by}).`
    : `Made a new link for ${fresh.patient_name}; the old one no longer works.`);
  showLink(fresh);
  return fresh;
}

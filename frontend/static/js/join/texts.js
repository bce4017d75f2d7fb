// The patient's choice, on the consent step, to get their visits' links and reminders by text
// message (only offered when the clinic has a valid number for them; shown by its last digits).
import { call } from "./checkin.js";

const box = () => document.getElementById("texts-choice");
const input = () => document.getElementById("texts-accept");
let offered = null;

export async function loadTexts() {
  offered = null;
  try {
    offered = await call("GET", "/texts");
  } catch {
    return; // texts are optional: the check-in goes on without the offer
  }
  box().hidden = !offered.can_text;
  if (!offered.can_text) return;
  document.getElementById("texts-label").textContent =
    `Send me the links and reminders of my visits by text message (to the number ending ${offered.number_ends}).`;
  input().checked = offered.agreed;
}

// Saves a changed choice; raises when it could not be saved.
export async function saveTexts() {
  if (!offered || !offered.can_text || input().checked === offered.agreed) return;
  offered = await call("PUT", "/texts", { agreed: input().checked });
}

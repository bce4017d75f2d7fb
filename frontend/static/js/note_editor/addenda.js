// Addenda to a signed note: a later correction or addition with its reason, listed under the
// note (the note itself stays locked).
import { api } from "../shared/api.js";
import { el } from "../shared/dom.js";
import { formatLocal, formatTimeOfDay } from "../shared/format.js";

export function setupAddenda(noteId) {
  const addendumForm = document.getElementById("addendum-form");
  if (!addendumForm) return;
  addendumForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = document.getElementById("addendum-status");
    const entered = new FormData(addendumForm);
    const body = {
      reason: entered.get("reason"),
      text: entered.get("text"),
      amends_plan: entered.get("amends_plan") === "on",
    };
    status.textContent = "Saving…";
    try {
      const a = await api("POST", `/api/notes/${noteId}/addenda`, body);
      document.getElementById("addenda").append(el("li", {},
        el("p", { class: "muted" }, `${formatLocal(a.created_at)} · ${a.author_name} · Reason: ${a.reason}`
          + (a.amends_plan ? " · amends the plan" : "")),
        el("p", { class: "note-text" }, a.text)));
      addendumForm.reset();
      status.textContent = `Addendum saved at ${formatTimeOfDay(a.created_at)}.`;
    } catch (err) {
      status.textContent = err.message;
    }
  });
}

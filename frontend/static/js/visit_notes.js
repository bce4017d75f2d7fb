// The provider's notes aside on the visit page: a clock of the visit's duration, and the
// consult-note editor for the visit's appointment. The editor is the record's own
// (records/_note_panel.html + note_editor.js), loaded once the note is opened or created.
import { api } from "./shared/api.js";

const aside = document.getElementById("visit-notes");
const slot = document.getElementById("visit-note-slot");
const clock = document.getElementById("visit-duration");
const clockState = document.getElementById("visit-duration-state");
const startedAt = Date.parse(clock.dataset.startedAt);

function duration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h} h ${String(m).padStart(2, "0")} min` : `${m} min ${s} s`;
}

function showDuration(until) {
  clock.textContent = duration(until - startedAt);
  clock.setAttribute("datetime", `PT${Math.max(0, Math.floor((until - startedAt) / 1000))}S`);
}

let ticking = null;
function stopClock(at) {
  clearInterval(ticking);
  ticking = null;
  showDuration(at);
  clockState.textContent = "(visit ended)";
}

if (clock.dataset.endedAt) {
  stopClock(Date.parse(clock.dataset.endedAt));
} else {
  showDuration(Date.now());
  ticking = setInterval(() => showDuration(Date.now()), 1000);
  // The visit page shows the end in its heading; the clock stops with it (a reload then shows
  // the server's exact end time).
  const heading = document.getElementById("visit-title");
  new MutationObserver(() => {
    if (ticking && heading.textContent.trim() === "Visit ended") stopClock(Date.now());
  }).observe(heading, { childList: true, characterData: true, subtree: true });
}

async function openNote() {
  try {
    const note = await api("POST", `/api/visits/${aside.dataset.visitId}/note`);
    const response = await fetch(`/records/notes/${note.id}/panel`, {
      credentials: "same-origin", headers: { Accept: "text/html" },
    });
    if (!response.ok) throw new Error(`The note could not be loaded (${response.status}).`);
    slot.innerHTML = await response.text();
    await import("./note_editor.js");
  } catch (err) {
    slot.replaceChildren();
    const problem = document.createElement("p");
    problem.className = "error";
    problem.setAttribute("role", "alert");
    problem.textContent = `${err.message} Reload the page to try again.`;
    slot.append(problem);
  }
}

openNote();

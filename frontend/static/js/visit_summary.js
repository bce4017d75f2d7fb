// The patient's visit summary behind their join link, once the visit has ended. It needs the
// patient session from the link (date of birth confirmed); without it, the form asks again.
import { api } from "./shared/api.js";
import { el } from "./shared/dom.js";
import { formatLocal } from "./shared/format.js";

const root = document.getElementById("visit-summary");
const token = root.dataset.token;
const statusLine = document.getElementById("summary-status");
const identity = document.getElementById("summary-identity");
const identityError = document.getElementById("summary-identity-error");
const summary = document.getElementById("summary");

function minutes(seconds) {
  const m = Math.max(1, Math.round(seconds / 60));
  return m === 1 ? "about 1 minute" : `about ${m} minutes`;
}

function show(data) {
  document.getElementById("summary-date").textContent = formatLocal(data.started_at);
  document.getElementById("summary-provider").textContent = data.provider_name;
  document.getElementById("summary-duration").textContent = minutes(data.duration_seconds);
  const pending = document.getElementById("summary-pending");
  pending.hidden = data.ready;
  pending.textContent = data.ready ? "" : data.message;
  document.getElementById("summary-plan-block").hidden = !data.ready;
  if (data.ready) {
    document.getElementById("summary-plan").textContent = data.plan || "No plan was written.";
    const list = document.getElementById("summary-amendments");
    list.replaceChildren(...data.amendments.map((a) => el("li", {},
      el("p", { class: "muted" }, formatLocal(a.created_at)),
      el("p", { class: "note-text" }, a.text))));
    document.getElementById("summary-amendments-block").hidden = data.amendments.length === 0;
  }
  identity.hidden = true;
  summary.hidden = false;
  statusLine.textContent = "";
}

async function load() {
  try {
    show(await api("GET", `/api/join/${token}/summary`));
  } catch (err) {
    if (err.status === 409 && err.code === "step_missing") {
      statusLine.textContent = "";
      identity.hidden = false;
      document.getElementById("summary-birth-date").focus();
    } else {
      statusLine.textContent = err.message;
      statusLine.className = "error";
    }
  }
}

identity.addEventListener("submit", async (event) => {
  event.preventDefault();
  identityError.textContent = "";
  const birthDate = document.getElementById("summary-birth-date").value;
  if (!birthDate) {
    identityError.textContent = "Please enter your date of birth.";
    return;
  }
  try {
    await api("POST", `/api/join/${token}/identity`, { birth_date: birthDate });
    await load();
  } catch (err) {
    identityError.textContent = err.message;
  }
});

load();

// The browser's print dialog keeps a paper copy, or a PDF with "Save as PDF" as the printer;
// the print stylesheet leaves only the summary on the page.
document.getElementById("summary-print").addEventListener("click", () => window.print());

// Provider page: my appointments today and over the next seven days, in my browser's zone;
// a patient who lost their link gets a new one from here (as on the scheduler page).
import { api } from "./shared/api.js";
import { el } from "./shared/dom.js";
import { RESENDABLE, resendLink, wireCopy } from "./scheduler/join_link.js";

const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const day = (offset) => {
  const d = new Date(Date.now() + offset * 86400000);
  return d.toLocaleDateString("en-CA", { timeZone: zone });
};
const when = (iso, opts) => new Date(iso).toLocaleString(undefined, { ...opts, timeZone: zone });

// A provider reads their patients' records: the name opens the chart.
function chartLink(appointment) {
  return el("a", { href: `/records/patients/${appointment.patient_id}` }, appointment.patient_name);
}

function say(message) {
  document.getElementById("provider-error").textContent = "";
  document.getElementById("provider-message").textContent = message;
}

function fail(err) {
  document.getElementById("provider-message").textContent = "";
  document.getElementById("provider-error").textContent = err.message;
}

// "Send a new link to …": its name says whose appointment, and when for the week's rows.
function resendButton(a, label) {
  if (!RESENDABLE.includes(a.status)) return "";
  return el("button", {
    type: "button",
    "aria-label": label,
    onclick: async () => {
      try {
        if (await resendLink(a, say)) document.getElementById("link-copy").focus();
      } catch (err) { fail(err); }
    },
  }, "Send a new link");
}

async function load() {
  document.getElementById("provider-zone").textContent = zone;
  const q = new URLSearchParams({ from: day(0), to: day(6), tz: zone });
  try {
    const items = await api("GET", `/api/appointments?${q}`);
    const today = items.filter((a) => a.local_start.startsWith(day(0)));
    document.getElementById("today").replaceChildren(...(today.length ? today.map((a) => el("li", {},
      `${when(a.start, { timeStyle: "short" })} · `, chartLink(a), ` · ${a.appointment_type} · `,
      el("span", { class: `status status-${a.status}` }, a.status), " ",
      resendButton(a, `Send a new link to ${a.patient_name}`)))
      : [el("li", { class: "muted" }, "No appointments today.")]));
    document.getElementById("week-table").tBodies[0].replaceChildren(...items.map((a) => el("tr", {},
      el("td", { "data-label": "When" }, when(a.start, { dateStyle: "medium", timeStyle: "short" })),
      el("td", { class: "queue-patient" }, chartLink(a)),
      el("td", { "data-label": "Type" }, a.appointment_type),
      el("td", { "data-label": "Status" }, el("span", { class: `status status-${a.status}` }, a.status)),
      el("td", { "data-label": "Join link" }, resendButton(a,
        `Send a new link to ${a.patient_name}, ${when(a.start, { dateStyle: "medium", timeStyle: "short" })}`)))));
    document.getElementById("provider-status").textContent = "";
  } catch (err) {
    document.getElementById("provider-status").textContent = "";
    document.getElementById("provider-error").textContent = err.message;
  }
}

wireCopy(say);
load();

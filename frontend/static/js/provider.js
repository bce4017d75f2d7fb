// Provider page: my appointments today and over the next seven days, in my browser's zone.
import { api } from "./shared/api.js";
import { el } from "./shared/dom.js";

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

async function load() {
  document.getElementById("provider-zone").textContent = zone;
  const q = new URLSearchParams({ from: day(0), to: day(6), tz: zone });
  try {
    const items = await api("GET", `/api/appointments?${q}`);
    const today = items.filter((a) => a.local_start.startsWith(day(0)));
    document.getElementById("today").replaceChildren(...(today.length ? today.map((a) => el("li", {},
      `${when(a.start, { timeStyle: "short" })} · `, chartLink(a), ` · ${a.appointment_type} · `,
      el("span", { class: `status status-${a.status}` }, a.status)))
      : [el("li", { class: "muted" }, "No appointments today.")]));
    document.getElementById("week-table").tBodies[0].replaceChildren(...items.map((a) => el("tr", {},
      el("td", { "data-label": "When" }, when(a.start, { dateStyle: "medium", timeStyle: "short" })),
      el("td", { class: "queue-patient" }, chartLink(a)),
      el("td", { "data-label": "Type" }, a.appointment_type),
      el("td", { "data-label": "Status" }, el("span", { class: `status status-${a.status}` }, a.status)))));
    document.getElementById("provider-status").textContent = "";
  } catch (err) {
    document.getElementById("provider-status").textContent = "";
    document.getElementById("provider-error").textContent = err.message;
  }
}

load();

// Provider page: my appointments today and over the next seven days, in my browser's zone.
import { api } from "./shared/api.js";
import { el } from "./shared/dom.js";

const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const day = (offset) => {
  const d = new Date(Date.now() + offset * 86400000);
  return d.toLocaleDateString("en-CA", { timeZone: zone });
};
const when = (iso, opts) => new Date(iso).toLocaleString(undefined, { ...opts, timeZone: zone });

async function load() {
  document.getElementById("provider-zone").textContent = zone;
  const q = new URLSearchParams({ from: day(0), to: day(6), tz: zone });
  try {
    const items = await api("GET", `/api/appointments?${q}`);
    const today = items.filter((a) => a.local_start.startsWith(day(0)));
    document.getElementById("today").replaceChildren(...(today.length ? today.map((a) => el("li", {},
      `${when(a.start, { timeStyle: "short" })} · ${a.patient_name} · ${a.appointment_type} · ${a.status}`))
      : [el("li", { class: "muted" }, "No appointments today.")]));
    document.getElementById("week-table").tBodies[0].replaceChildren(...items.map((a) => el("tr", {},
      el("td", {}, when(a.start, { dateStyle: "medium", timeStyle: "short" })), el("td", {}, a.patient_name),
      el("td", {}, a.appointment_type), el("td", {}, a.status))));
  } catch (err) {
    document.getElementById("provider-error").textContent = err.message;
  }
}

load();

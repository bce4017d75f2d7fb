// Admin page: the clinic's walk-in queue (link, hours, visit type, providers) and the walk-in
// records flagged for review (merge into the matching record, or keep apart).
import { api } from "./shared/api.js";
import { el } from "./shared/dom.js";

const DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const form = document.getElementById("walk-in-settings");

function hoursRows(hours) {
  const byDay = new Map(hours.map((h) => [h.weekday, h]));
  return DAYS.map((day, weekday) => {
    const h = byDay.get(weekday);
    return el("tr", {},
      el("th", { scope: "row" }, day),
      el("td", {}, el("input", { type: "time", "data-weekday": weekday, "data-edge": "start", value: h ? h.start : "", "aria-label": `${day} opens` })),
      el("td", {}, el("input", { type: "time", "data-weekday": weekday, "data-edge": "end", value: h ? h.end : "", "aria-label": `${day} closes` })));
  });
}

async function loadSettings() {
  const link = document.getElementById("walk-in-link");
  try {
    const [settings, types, providers] = await Promise.all([
      api("GET", "/api/on-demand"), api("GET", "/api/appointment-types"), api("GET", "/api/providers"),
    ]);
    link.replaceChildren(settings.link
      ? el("span", {}, "Public link: ", el("a", { href: settings.link }, settings.link), settings.open_now ? " (open now)" : " (closed now)")
      : "Not set up yet.");
    document.getElementById("walk-in-code").value = settings.code || "";
    document.getElementById("walk-in-enabled").checked = settings.enabled;
    document.getElementById("walk-in-type").replaceChildren(...types.map((t) =>
      el("option", { value: t.id, ...(t.id === settings.appointment_type_id ? { selected: "" } : {}) }, t.name)));
    const chosen = new Set(settings.provider_ids);
    document.getElementById("walk-in-providers").replaceChildren(...providers.map((p) =>
      el("div", { class: "checkbox" },
        el("input", { type: "checkbox", id: `walk-in-provider-${p.id}`, value: p.id, ...(chosen.has(p.id) ? { checked: "" } : {}) }),
        el("label", { for: `walk-in-provider-${p.id}` }, p.full_name))));
    document.getElementById("walk-in-hours").tBodies[0].replaceChildren(...hoursRows(settings.hours));
  } catch (err) {
    link.textContent = err.message;
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("walk-in-settings-error");
  const status = document.getElementById("walk-in-settings-status");
  error.textContent = "";
  const hours = [];
  for (let weekday = 0; weekday < 7; weekday += 1) {
    const start = form.querySelector(`[data-weekday="${weekday}"][data-edge="start"]`).value;
    const end = form.querySelector(`[data-weekday="${weekday}"][data-edge="end"]`).value;
    if (start || end) hours.push({ weekday, start, end });
  }
  const body = {
    code: document.getElementById("walk-in-code").value.trim(),
    enabled: document.getElementById("walk-in-enabled").checked,
    hours,
    appointment_type_id: document.getElementById("walk-in-type").value,
    provider_ids: [...form.querySelectorAll("#walk-in-providers input:checked")].map((i) => i.value),
  };
  status.textContent = "Saving…";
  try {
    await api("PUT", "/api/on-demand", body);
    status.textContent = "Saved.";
    await loadSettings();
  } catch (err) {
    status.textContent = "";
    const fields = Object.entries(err.fields || {}).map(([k, v]) => `${k}: ${v}`).join("; ");
    error.textContent = fields ? `${err.message} (${fields})` : err.message;
  }
});

function person(p) {
  const contact = [p.email, p.phone].filter(Boolean).join(", ");
  return `${p.given_name} ${p.family_name}, born ${p.birth_date}${contact ? ` (${contact})` : ""}`;
}

async function loadReviews() {
  const status = document.getElementById("walk-in-reviews-status");
  const list = document.getElementById("walk-in-reviews");
  try {
    const reviews = await api("GET", "/api/patient-reviews");
    status.textContent = reviews.length ? `${reviews.length} record(s) to review` : "No record to review.";
    list.replaceChildren(...reviews.map((r) => el("li", { class: "stack" },
      el("span", {}, `New: ${person(r.patient)}`),
      ...r.candidates.map((c) => el("button", {
        type: "button", onclick: () => act(`/api/patients/${r.patient.id}/merge`, { into: c.id }),
      }, `Merge into ${person(c)}`)),
      el("button", { type: "button", onclick: () => act(`/api/patients/${r.patient.id}/keep-separate`) },
        "Keep as a separate person"))));
  } catch (err) {
    status.textContent = err.message;
  }
}

async function act(path, body) {
  const status = document.getElementById("walk-in-reviews-status");
  status.textContent = "Saving…";
  try {
    await api("POST", path, body);
    await loadReviews();
  } catch (err) {
    status.textContent = err.message;
  }
}

loadSettings();
loadReviews();

// Provider hours: weekly opening hours, days off / extra hours, and the clinic's visit types.
import { api } from "./shared/api.js";
import { el } from "./shared/dom.js";

const $ = (id) => document.getElementById(id);
const zones = new Map(); // provider id -> time zone of their hours (null: none set up yet)
const DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const LABELS = {
  timezone: "Time zone", min_notice_minutes: "Minimum notice", horizon_days: "Bookable up to",
  weekday: "Day", start: "From", end: "To", day: "Date", kind: "What", note: "Note",
  name: "Name", duration_minutes: "Length", buffer_minutes: "Buffer after",
};

function say(message) {
  $("hours-error").textContent = "";
  $("hours-message").textContent = message;
}

function clearInvalid(form) {
  form.querySelectorAll("[aria-invalid]").forEach((input) => input.removeAttribute("aria-invalid"));
}

// Explain an API error in words and mark the inputs it names ("rules.2.end" is row 3's "To").
function fail(err, form) {
  $("hours-message").textContent = "";
  const parts = [];
  for (const [field, message] of Object.entries(err.fields || {})) {
    const rule = /^rules\.(\d+)\.(\w+)$/.exec(field);
    let input = null;
    if (rule && form) {
      const row = form.querySelectorAll("#rules-table tbody tr")[Number(rule[1])];
      input = row && row.querySelector(`[name="${rule[2]}"]`);
      parts.push(`${DAYS[Number(row?.querySelector("select").value)] || "A row"} ${LABELS[rule[2]] || rule[2]}: ${message}`);
    } else {
      input = form && form.querySelector(`[name="${field}"]`);
      parts.push(`${LABELS[field] || field}: ${message}`);
    }
    if (input) input.setAttribute("aria-invalid", "true");
  }
  $("hours-error").textContent = parts.length ? `${err.message} ${parts.join("; ")}.` : err.message;
  const first = form && form.querySelector("[aria-invalid]");
  if (first) first.focus();
}

function ruleRow(rule = { weekday: 0, start: "09:00", end: "17:00" }) {
  const day = el("select", { name: "weekday", "aria-label": "Day" },
    ...DAYS.map((name, i) => el("option", { value: String(i) }, name)));
  day.value = String(rule.weekday);
  const start = el("input", { type: "time", name: "start", required: "", value: rule.start.slice(0, 5), "aria-label": "From" });
  const end = el("input", { type: "time", name: "end", required: "", value: rule.end.slice(0, 5), "aria-label": "To" });
  const remove = el("button", { type: "button", "aria-label": "Remove these hours", onclick: () => {
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    (next ? next.querySelector("select") : $("add-rule")).focus();
  } }, "Remove");
  const row = el("tr", {}, el("td", {}, day), el("td", {}, start), el("td", {}, end), el("td", {}, remove));
  return row;
}

function showSchedule(schedule) {
  $("timezone").value = schedule ? schedule.timezone : Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  $("min-notice").value = schedule ? schedule.min_notice_minutes : 60;
  $("horizon").value = schedule ? schedule.horizon_days : 60;
  $("rules-table").tBodies[0].replaceChildren(...(schedule ? schedule.rules : []).map(ruleRow));
  $("weekly-state").textContent = schedule
    ? `Times are in ${schedule.timezone}.`
    : "No hours set up yet: add the days this provider sees patients, then save.";
  showExceptions(schedule ? schedule.exceptions : []);
}

function showExceptions(items) {
  const rows = items.map((e) => el("tr", {},
    el("td", {}, e.day),
    el("td", {}, e.kind === "off" ? "Time off" : "Extra hours"),
    el("td", {}, e.start_time ? `${e.start_time.slice(0, 5)}–${e.end_time.slice(0, 5)}` : "All day"),
    el("td", {}, e.note || ""),
    el("td", {}, el("button", { type: "button", "aria-label": `Remove ${e.day}`, onclick: () => removeException(e) }, "Remove"))));
  $("exceptions-table").tBodies[0].replaceChildren(
    ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "5", class: "muted" }, "None planned."))]));
}

async function loadSchedule() {
  const provider = $("provider").value;
  if (!provider) return;
  if (!zones.get(provider)) {
    showSchedule(null);
    return;
  }
  $("weekly-state").textContent = "Loading…";
  try {
    showSchedule(await api("GET", `/api/providers/${provider}/schedule`));
  } catch (err) {
    if (err.status === 404 && err.code === "not_found") showSchedule(null);
    else fail(err);
  }
}

async function saveWeekly(event) {
  event.preventDefault();
  const form = $("weekly");
  clearInvalid(form);
  const rules = [...$("rules-table").tBodies[0].rows].map((row) => ({
    weekday: Number(row.querySelector('[name="weekday"]').value),
    start: row.querySelector('[name="start"]').value,
    end: row.querySelector('[name="end"]').value,
  }));
  const body = {
    timezone: $("timezone").value.trim(),
    min_notice_minutes: Number($("min-notice").value),
    horizon_days: Number($("horizon").value),
    rules,
  };
  try {
    const saved = await api("PUT", `/api/providers/${$("provider").value}/schedule`, body);
    zones.set(saved.provider_id, saved.timezone);
    await loadSchedule();
    say(`Saved weekly hours for ${$("provider").selectedOptions[0].textContent}.`);
  } catch (err) {
    fail(err, form);
  }
}

async function addException(event) {
  event.preventDefault();
  const form = $("new-exception");
  clearInvalid(form);
  const value = (name) => form.elements[name].value.trim() || null;
  const body = { day: value("day"), kind: value("kind"), start: value("start"), end: value("end"), note: value("note") };
  try {
    await api("POST", `/api/providers/${$("provider").value}/exceptions`, body);
    form.reset();
    await loadSchedule();
    say(`Added ${body.kind === "off" ? "time off" : "extra hours"} on ${body.day}.`);
  } catch (err) {
    fail(err.code === "not_found" ? { ...err, message: "Save this provider's weekly hours first." } : err, form);
  }
}

async function removeException(item) {
  if (!window.confirm(`Remove the entry of ${item.day}?`)) return;
  try {
    await api("DELETE", `/api/providers/${$("provider").value}/exceptions/${item.id}`);
    await loadSchedule();
    say(`Removed the entry of ${item.day}.`);
    $("ex-day").focus();
  } catch (err) {
    fail(err);
  }
}

async function loadTypes() {
  const types = await api("GET", "/api/appointment-types");
  $("types-table").tBodies[0].replaceChildren(...types.map((t) => el("tr", {},
    el("td", {}, t.name), el("td", {}, `${t.duration_minutes} min`), el("td", {}, `${t.buffer_minutes} min`))));
}

async function addType(event) {
  event.preventDefault();
  const form = $("new-type");
  clearInvalid(form);
  const body = {
    name: form.elements.name.value.trim(),
    duration_minutes: Number(form.elements.duration_minutes.value),
    buffer_minutes: Number(form.elements.buffer_minutes.value || 0),
  };
  try {
    await api("POST", "/api/appointment-types", body);
    form.reset();
    await loadTypes();
    say(`Added the visit type ${body.name}.`);
  } catch (err) {
    fail(err, form);
  }
}

async function start() {
  if (typeof Intl.supportedValuesOf === "function") {
    $("zones").replaceChildren(...Intl.supportedValuesOf("timeZone").map((z) => el("option", { value: z })));
  }
  $("add-rule").addEventListener("click", () => {
    const rows = $("rules-table").tBodies[0].rows;
    const last = rows[rows.length - 1];
    const next = last ? {
      weekday: (Number(last.querySelector("select").value) + 1) % 7,
      start: last.querySelector('[name="start"]').value || "09:00",
      end: last.querySelector('[name="end"]').value || "17:00",
    } : undefined;
    const row = ruleRow(next);
    $("rules-table").tBodies[0].append(row);
    row.querySelector("select").focus();
  });
  $("weekly").addEventListener("submit", saveWeekly);
  $("new-exception").addEventListener("submit", addException);
  $("new-type").addEventListener("submit", addType);
  $("provider").addEventListener("change", loadSchedule);
  try {
    const [providers] = await Promise.all([api("GET", "/api/providers"), loadTypes()]);
    providers.forEach((p) => zones.set(p.id, p.timezone));
    $("provider").replaceChildren(...providers.map((p) => el("option", { value: p.id }, p.full_name)));
    const wanted = new URLSearchParams(location.search).get("provider");
    if (wanted && providers.some((p) => p.id === wanted)) $("provider").value = wanted;
    if (!providers.length) {
      $("weekly-state").textContent = "No providers in your clinic yet: an admin adds them on the administration page.";
      return;
    }
    await loadSchedule();
  } catch (err) {
    fail(err);
  }
}

start();

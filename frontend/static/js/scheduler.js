// Scheduler page: free slots of a provider's day, booking for a patient, reschedule, cancel;
// each appointment's join link (copy, resend) and its emails' delivery; undelivered emails.
import { api } from "./shared/api.js";
import { el } from "./shared/dom.js";
import { copyText, emailStatusPill, loadMailTrouble, messageLine } from "./scheduler/delivery.js";
import { RESENDABLE, resendLink, showLink, wireCopy } from "./scheduler/join_link.js";
import { showTextConsent, textConsentTicked } from "./scheduler/texts.js";

const viewerZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
// `open`: appointments whose "Link and emails" row is open; it stays open when the day redraws.
const state = { patient: null, rescheduling: null, open: new Set() };
const $ = (id) => document.getElementById(id);

function say(message) {
  $("sched-error").textContent = "";
  $("sched-message").textContent = message;
}

function fail(err) {
  const details = Object.entries(err.fields || {}).map(([k, v]) => `${k}: ${v}`).join("; ");
  $("sched-message").textContent = "";
  $("sched-error").textContent = details ? `${err.message} (${details})` : err.message;
}

function timeText(iso) {
  return new Date(iso).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", timeZone: viewerZone });
}

function dateTimeText(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short", timeZone: viewerZone });
}

function choosePatient(patient) {
  state.patient = patient;
  $("chosen-patient").textContent = `${patient.given_name} ${patient.family_name} (born ${patient.birth_date})`;
  showTextConsent(patient);
}

async function loadChoices() {
  const [providers, types] = await Promise.all([api("GET", "/api/providers"), api("GET", "/api/appointment-types")]);
  $("provider").replaceChildren(...providers.map((p) => el("option", { value: p.id }, p.full_name)));
  $("appointment-type").replaceChildren(...types.map((t) =>
    el("option", { value: t.id }, `${t.name} (${t.duration_minutes} min)`)));
  if (!providers.length) fail({ message: "No providers in your clinic yet." });
}

async function refresh() {
  const provider = $("provider").value;
  const type = $("appointment-type").value;
  const day = $("day").value;
  if (!provider || !type || !day) return;
  const q = new URLSearchParams({ appointment_type_id: type, from: day, to: day, tz: viewerZone });
  const table = $("day-table");
  table.setAttribute("aria-busy", "true");
  let slots, appointments;
  try {
    [slots, appointments] = await Promise.all([
      api("GET", `/api/providers/${provider}/slots?${q}`),
      api("GET", `/api/appointments?${new URLSearchParams({ provider_id: provider, from: day, to: day, tz: viewerZone })}`),
    ]);
  } finally {
    table.setAttribute("aria-busy", "false");
  }
  const buttons = slots.slots.map((s) => el("button", {
    type: "button", class: "slot", "data-start": s.start, onclick: () => pickSlot(s),
  }, timeText(s.start)));
  $("slots").replaceChildren(...(buttons.length ? buttons : [el("p", { class: "muted" }, "No free slots this day.")]));
  $("day-table").tBodies[0].replaceChildren(...appointments.flatMap(appointmentRow));
}

function appointmentRow(a) {
  const actions = el("td", {});
  if (a.status === "booked") {
    actions.append(
      el("button", { type: "button", onclick: () => startReschedule(a) }, `Reschedule ${a.patient_name}`), " ",
      cancelForm(a));
  }
  const status = a.status === "cancelled" && a.cancel_reason ? `cancelled: ${a.cancel_reason}` : a.status;
  const detailId = `detail-${a.id}`;
  const toggle = el("button", {
    type: "button", class: "link-button details-toggle", "aria-expanded": "false", "aria-controls": detailId,
  }, `Link and emails of ${a.patient_name}`);
  const warned = a.warnings.some((w) => w.code === "no_email") ? [el("br", {}), el("span", { class: "pill retrying" }, "no email")] : [];
  const row = el("tr", { "data-appointment": a.id }, el("td", {}, timeText(a.start)),
    el("td", {}, a.patient_name, ...warned, el("br", {}), toggle),
    el("td", {}, a.appointment_type),
    el("td", {}, el("span", { class: "status" }, status), " ", emailStatusPill(a.email_status), " ",
      emailStatusPill(a.text_status, "text")), actions);
  const detail = el("tr", { class: "appointment-detail", id: detailId, hidden: "" },
    el("td", { colspan: "5" }, el("p", { class: "muted" }, "Loading…")));
  const show = async (open) => {
    detail.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) state.open.add(a.id); else state.open.delete(a.id);
    if (open) await fillDetail(a.id, detail.firstChild);
  };
  toggle.addEventListener("click", () => show(detail.hidden));
  if (state.open.has(a.id)) show(true);
  return [row, detail];
}

async function fillDetail(id, cell) {
  cell.replaceChildren(el("p", { class: "muted", role: "status" }, "Loading…"));
  let a;
  try {
    a = await api("GET", `/api/appointments/${id}`);
  } catch (err) {
    cell.replaceChildren(el("p", { class: "error", role: "alert" }, err.message));
    return;
  }
  const parts = [];
  for (const w of a.warnings) parts.push(el("p", { class: "warning" }, w.message));
  if (a.warnings.some((w) => w.code === "no_text_consent")) {
    parts.push(el("div", { class: "actions" }, el("button", {
      type: "button", onclick: () => recordTextConsent(a, cell),
    }, `${a.patient_name} agreed to texts: record it`)));
  }
  if (a.join_url) {
    const inputId = `link-${a.id}`;
    const input = el("input", { id: inputId, readonly: "", value: a.join_url });
    parts.push(el("div", { class: "copy-row" },
      el("label", { for: inputId }, "Join link"), input,
      el("button", { type: "button", onclick: () => copyText(input, say) }, `Copy link of ${a.patient_name}`)));
  } else {
    parts.push(el("p", { class: "muted" }, "This appointment has no working join link."));
  }
  if (RESENDABLE.includes(a.status)) {
    parts.push(el("div", { class: "actions" }, el("button", {
      type: "button", onclick: () => resend(a, cell),
    }, `Send a new link to ${a.patient_name}`)));
  }
  const messages = a.messages.map((m) => el("li", {}, ...messageLine(m, dateTimeText)));
  parts.push(el("h4", {}, "Emails and texts"), messages.length
    ? el("ul", { class: "messages" }, ...messages)
    : el("p", { class: "muted" }, "No emails or texts for this appointment."));
  cell.replaceChildren(...parts);
}

async function recordTextConsent(a, cell) {
  if (!confirm(`Did ${a.patient_name} say yes to getting links and reminders by text message? This is recorded in your name.`)) return;
  try {
    await api("PUT", `/api/patients/${a.patient_id}/text-consent`, { agreed: true });
    say(`Recorded that ${a.patient_name} agreed to texts. Send a new link to text it to them.`);
    await fillDetail(a.id, cell);
  } catch (err) { fail(err); }
}

async function resend(a, cell) {
  try {
    if (await resendLink(a, say)) await fillDetail(a.id, cell);
  } catch (err) { fail(err); }
}

function cancelForm(a) {
  const id = `reason-${a.id}`;
  const form = el("form", { class: "inline cancel-form" },
    el("label", { for: id, class: "visually-hidden" }, `Reason to cancel ${a.patient_name}`),
    el("input", { id, name: "reason", placeholder: "Reason", required: "", maxlength: "500" }),
    el("button", { type: "submit" }, `Cancel ${a.patient_name}`));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", `/api/appointments/${a.id}/cancel`, { reason: form.reason.value });
      say(`Cancelled ${a.patient_name}'s appointment at ${dateTimeText(a.start)}.`);
      await refresh();
    } catch (err) { fail(err); }
  });
  return form;
}

function startReschedule(a) {
  state.rescheduling = a;
  $("reschedule-who").textContent = `${a.patient_name} (now ${dateTimeText(a.start)})`;
  $("reschedule-banner").hidden = false;
}

function stopReschedule() {
  state.rescheduling = null;
  $("reschedule-banner").hidden = true;
}

async function pickSlot(slot) {
  try {
    if (state.rescheduling) {
      const a = state.rescheduling;
      const moved = await api("POST", `/api/appointments/${a.id}/reschedule`, { start: slot.start });
      stopReschedule();
      say(`Moved ${a.patient_name} to ${dateTimeText(slot.start)} (${viewerZone}).`);
      showLink(moved);
    } else {
      if (!state.patient) throw { message: "Choose or create a patient first.", fields: { patient_id: "required" } };
      const booked = await api("POST", "/api/appointments", {
        provider_id: $("provider").value, patient_id: state.patient.id,
        appointment_type_id: $("appointment-type").value, start: slot.start,
        text_consent: textConsentTicked(),
      });
      say(`Booked ${booked.patient_name} at ${dateTimeText(booked.start)} (${viewerZone}).`);
      showLink(booked);
      showTextConsent(state.patient);
    }
  } catch (err) { fail(err); }
  try { await refresh(); } catch (err) { fail(err); }
}

$("slot-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try { await refresh(); say(""); } catch (err) { fail(err); }
});
$("reschedule-stop").addEventListener("click", stopReschedule);

$("patient-search").addEventListener("submit", async (event) => {
  event.preventDefault();
  const q = new URLSearchParams();
  if ($("patient-q").value.trim()) q.set("q", $("patient-q").value.trim());
  if ($("patient-dob").value) q.set("birth_date", $("patient-dob").value);
  try {
    const found = await api("GET", `/api/patients?${q}`);
    $("patient-results").replaceChildren(...found.map((p) => el("li", {},
      el("button", { type: "button", onclick: () => choosePatient(p) },
        `Choose ${p.given_name} ${p.family_name} (${p.birth_date})`))));
    if (!found.length) $("patient-results").replaceChildren(el("li", { class: "muted" }, "No patient found."));
  } catch (err) { fail(err); }
});

$("new-patient").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = Object.fromEntries([...new FormData(event.target).entries()].filter(([, v]) => v !== ""));
  try {
    const patient = await api("POST", "/api/patients", body);
    choosePatient(patient);
    say(`Created ${patient.given_name} ${patient.family_name}.`);
    event.target.reset();
    $("new-patient-box").open = false;
  } catch (err) { fail(err); }
});

$("viewer-zone").textContent = viewerZone;
$("np-tz").value = viewerZone;
$("day").value = new Date().toLocaleDateString("en-CA", { timeZone: viewerZone });
wireCopy(say);
loadChoices().catch(fail);
loadMailTrouble({ say, fail, when: dateTimeText }).catch(fail);

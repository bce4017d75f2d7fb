// Scheduler page: free slots of a provider's day, booking for a patient, reschedule, cancel.
import { api } from "./shared/api.js";
import { el } from "./shared/dom.js";

const viewerZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const state = { patient: null, rescheduling: null };
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
  const [slots, appointments] = await Promise.all([
    api("GET", `/api/providers/${provider}/slots?${q}`),
    api("GET", `/api/appointments?${new URLSearchParams({ provider_id: provider, from: day, to: day, tz: viewerZone })}`),
  ]);
  const buttons = slots.slots.map((s) => el("button", {
    type: "button", class: "slot", "data-start": s.start, onclick: () => pickSlot(s),
  }, timeText(s.start)));
  $("slots").replaceChildren(...(buttons.length ? buttons : [el("p", { class: "muted" }, "No free slots this day.")]));
  $("day-table").tBodies[0].replaceChildren(...appointments.map(appointmentRow));
}

function appointmentRow(a) {
  const actions = el("td", {});
  if (a.status === "booked") {
    actions.append(
      el("button", { type: "button", onclick: () => startReschedule(a) }, `Reschedule ${a.patient_name}`), " ",
      cancelForm(a));
  }
  const status = a.status === "cancelled" && a.cancel_reason ? `cancelled: ${a.cancel_reason}` : a.status;
  return el("tr", { "data-appointment": a.id }, el("td", {}, timeText(a.start)), el("td", {}, a.patient_name),
    el("td", {}, a.appointment_type), el("td", { class: "status" }, status), actions);
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
      await api("POST", `/api/appointments/${a.id}/reschedule`, { start: slot.start });
      stopReschedule();
      say(`Moved ${a.patient_name} to ${dateTimeText(slot.start)} (${viewerZone}).`);
    } else {
      if (!state.patient) throw { message: "Choose or create a patient first.", fields: { patient_id: "required" } };
      const booked = await api("POST", "/api/appointments", {
        provider_id: $("provider").value, patient_id: state.patient.id,
        appointment_type_id: $("appointment-type").value, start: slot.start,
      });
      say(`Booked ${booked.patient_name} at ${dateTimeText(booked.start)} (${viewerZone}).`);
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
loadChoices().catch(fail);

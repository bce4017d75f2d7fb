// The live clinic queue: today's patients per provider, with message and admit for the provider,
// and for any staff member a way to unlock a join link locked by wrong dates of birth. Staff who
// may read records also get each patient's chart link, age, reason and last signed note.
import { api } from "./shared/api.js";
import { el } from "./shared/dom.js";
import { cardList } from "./shared/cards.js";
import {
  draftOf, focusAfter, focusBefore, forgetDraft, isOpen, keepDraft, setOpen,
} from "./queue/keep.js";
import { learnServerClock, startTicking, waitedText } from "./queue/waited.js";
import { canEnter, enterVisit, warmUp } from "./queue/warm_visit.js";
import { io } from "/static/vendor/socket.io-4.8.1.esm.min.js";

const appRoot = document.getElementById("queue-app");
const canAct = appRoot.dataset.canAct === "yes";
const container = document.getElementById("queues");
const connection = document.getElementById("queue-connection");
const alerts = document.getElementById("queue-alerts");
const queues = new Map(); // provider id -> last queue
const seenWaiting = new Set();
let audioContext = null;
let firstSnapshot = true;
const originalTitle = document.title;

const socket = io("/clinic", { transports: ["websocket"], withCredentials: true });
socket.on("connect", () => { connection.textContent = "Live"; });
socket.on("disconnect", (reason) => {
  if (reason === "io server disconnect") {
    // The server closed the socket (a sign-out, the session's end, a restart): the client does
    // not retry on its own. Check the session (a signed-out one goes to sign-in), then retry.
    connection.textContent = "Disconnected by the server; checking your session…";
    reconnectAfterSessionCheck();
    return;
  }
  connection.textContent = "Connection lost; reconnecting…";
});
socket.on("connect_error", (error) => {
  connection.textContent = (error && error.data && error.data.message) || "Cannot connect; retrying…";
});

async function reconnectAfterSessionCheck() {
  try {
    await api("GET", "/api/me"); // a 401 takes the page to sign-in
  } catch (error) {
    if (error.status === 401) return;
    connection.textContent = "Cannot reach the server; retrying…";
    setTimeout(reconnectAfterSessionCheck, 3000);
    return;
  }
  connection.textContent = "Reconnecting…";
  socket.connect();
}
socket.on("queue", (queue) => {
  const arrived = queue.patients.filter(
    (p) => p.status === "waiting" && !seenWaiting.has(p.appointment_id));
  for (const p of queue.patients) if (p.status === "waiting") seenWaiting.add(p.appointment_id);
  queues.set(queue.provider_id, queue);
  learnServerClock(queue.generated_at);
  render();
  if (!firstSnapshot && canAct) arrived.forEach(announce);
  firstSnapshot = false;
});
socket.on("alert", (alert) => {
  const line = el("div", { "data-alert-for": alert.appointment_id },
    el("p", { class: "error" }, `${alert.patient_name}: ${alert.message}`));
  if (alert.kind === "link_locked") line.append(unlockButton(alert.appointment_id, alert.patient_name));
  alerts.append(line);
  notify("Check-in problem", `${alert.patient_name}: link locked`);
});

function unlockButton(appointmentId, name) {
  const button = el("button", { type: "button", onclick: () => unlock(appointmentId, name, button) },
    `Unlock check-in for ${name}`);
  return button;
}

// After a call to the patient: their link works again. The answer replaces the alert, and focus
// moves to it (the button leaves with the re-rendered row).
async function unlock(appointmentId, name, button) {
  button.disabled = true;
  let said;
  try {
    await api("POST", `/api/appointments/${appointmentId}/unlock-checkin`);
    alerts.querySelectorAll(`[data-alert-for="${appointmentId}"]`).forEach((line) => line.remove());
    said = el("p", { class: "notice", tabindex: "-1" },
      `Check-in unlocked for ${name}: the link from their email works again.`);
  } catch (error) {
    button.disabled = false;
    said = el("p", { class: "error", tabindex: "-1" }, `Not unlocked: ${error.message}`);
  }
  alerts.append(said);
  said.focus();
}

function time(iso) {
  return new Date(iso).toLocaleTimeString(undefined, { timeStyle: "short" });
}

function devices(check) {
  if (!check) return "—";
  const parts = [`camera ${check.camera}`, `mic ${check.microphone}`];
  if (check.network_rtt_ms !== null && check.network_rtt_ms !== undefined) parts.push(`${check.network_rtt_ms} ms`);
  return parts.join(", ");
}

function guestsWaiting(patient) {
  const names = patient.guests_waiting || [];
  if (!names.length || !patient.visit_id) return "";
  const text = `Guest waiting: ${names.join(", ")}`;
  if (!canAct) return el("div", { class: "muted" }, text);
  return el("div", { class: "guest-waiting" }, `${text} · `,
    el("a", { href: `/visit/${patient.visit_id}` }, "open the visit to let them in"));
}

function messageForm(patient) {
  const name = patient.patient_name;
  const id = `msg-${patient.appointment_id}`;
  const attrs = { class: "inline-form message-form" };
  if (!isOpen(patient.appointment_id)) attrs.hidden = "";
  const input = el("input", { id, maxlength: "500", required: "", autocomplete: "off",
    placeholder: "e.g. Running 10 minutes late" });
  input.value = draftOf(id);
  input.addEventListener("input", () => keepDraft(input));
  const form = el("form", attrs,
    el("label", { for: id, class: "visually-hidden" }, `Message to ${name}`),
    input,
    el("button", { type: "submit", id: `send-${patient.appointment_id}` }, "Send"),
    el("span", { role: "status", class: "muted" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const field = form.querySelector("input");
    const state = form.querySelector("[role=status]");
    const text = field.value;
    socket.timeout(5000).emit("message", { appointment_id: patient.appointment_id, text },
      (err, answer) => {
        // The row may have been rebuilt meanwhile: speak to the form that is on the page now.
        const current = document.getElementById(id);
        const said = current ? current.form.querySelector("[role=status]") : state;
        if (err) said.textContent = "Not sent: no answer from the server.";
        else if (answer.error) said.textContent = answer.error.message;
        else {
          said.textContent = "Sent";
          forgetDraft(id);
          if (current && current.value === text) current.value = "";
          lastSent.set(patient.appointment_id, "Sent");
        }
      });
  });
  const kept = lastSent.get(patient.appointment_id);
  if (kept) form.querySelector("[role=status]").textContent = kept;
  return form;
}

const lastSent = new Map(); // appointment id -> the last send's outcome, kept across re-renders

function actions(patient) {
  if (patient.status === "link locked") return unlockButton(patient.appointment_id, patient.patient_name);
  if (!canAct || !["waiting", "away"].includes(patient.status)) return "";
  const name = patient.patient_name;
  const form = messageForm(patient);
  const messageButton = el("button", { type: "button", id: `message-${patient.appointment_id}`,
    "aria-expanded": isOpen(patient.appointment_id) ? "true" : "false", onclick: () => {
      form.hidden = !form.hidden;
      setOpen(patient.appointment_id, !form.hidden);
      messageButton.setAttribute("aria-expanded", form.hidden ? "false" : "true");
      if (!form.hidden) form.querySelector("input").focus();
    } }, `Message ${name}`);
  const admitButton = el("button", { type: "button", class: "primary",
    id: `admit-${patient.appointment_id}`, onclick: () => {
      admitButton.disabled = true;
      performance.mark("admit-click");
      socket.timeout(5000).emit("admit", { appointment_id: patient.appointment_id }, (err, answer) => {
        performance.mark("admit-answered");
        if (err || answer.error) {
          admitButton.disabled = false;
          alerts.append(el("p", { class: "error" }, err ? "Admit failed: no answer." : answer.error.message));
        } else if (canEnter()) {
          // Warm: this page becomes the visit, its connection to the relay moved into it.
          enterVisit(answer.visit_id, name);
        } else {
          window.location.assign(answer.url);
        }
      });
    } }, `Admit ${name}`);
  return el("div", {}, messageButton, " ", admitButton, form);
}

function day(iso) {
  return new Date(iso).toLocaleDateString(undefined, { dateStyle: "medium" });
}

// The patient's name (a link to the record for those who may read it), and before the admit
// what helps the provider: age, the reason given, the red-flag cards of the intake answers
// (critical first), the last signed note, the latest messages.
function patientCell(patient) {
  const cell = patientDetails(patient);
  // A walk-in from the clinic's on-demand queue: any provider of that queue may take them.
  if (patient.on_demand) cell.prepend(el("span", { class: "walk-in-badge" }, "Walk-in"), " ");
  return cell;
}

function patientDetails(patient) {
  const chart = patient.chart;
  if (!chart) return el("td", { class: "queue-patient" }, patient.patient_name);
  const facts = [`${chart.age} years`, chart.last_signed_note_at
    ? `last signed note ${day(chart.last_signed_note_at)}` : "no signed notes yet"];
  const cell = el("td", { class: "queue-patient" },
    el("a", { href: chart.record_url, class: "patient-link" }, patient.patient_name),
    el("div", { class: "muted patient-facts" }, facts.join(" · ")));
  if (chart.reason) cell.append(el("div", { class: "patient-reason" }, `Reason: ${chart.reason}`));
  if (chart.cards && chart.cards.length) cell.append(cardList(chart.cards, `Red-flag cards for ${patient.patient_name}`));
  if (chart.messages.length) {
    cell.append(el("ul", { class: "plain conversation", "aria-label": `Messages with ${patient.patient_name}` },
      ...chart.messages.map((m) => el("li", { class: `from-${m.sender}` },
        el("strong", {}, m.sender === "patient" ? `${patient.patient_name}: ` : "Clinic: "), m.text))));
  }
  return cell;
}

function render() {
  const kept = focusBefore();
  const sections = [...queues.values()].map((queue) => {
    const rows = queue.patients.map((p) => el("tr", { "data-appointment": p.appointment_id, "data-status": p.status },
      el("td", { "data-label": "Time" }, p.on_demand ? `arrived ${time(p.start_at)}` : time(p.start_at)),
      patientCell(p),
      el("td", { "data-label": "Status" },
        el("span", { class: `status status-${p.status.replace(/\W+/g, "-")}` }, p.status), guestsWaiting(p)),
      p.waiting_since && ["waiting", "away"].includes(p.status)
        ? el("td", { "data-waiting-since": p.waiting_since, class: "waited", "data-label": "Waited" },
          waitedText(p.waiting_since))
        : el("td", { class: "waited", "data-label": "Waited" },
          p.minutes_waited === null ? "—" : `${p.minutes_waited} min`),
      el("td", { "data-label": "Devices" }, devices(p.device_check)),
      el("td", { class: "queue-actions" }, actions(p))));
    const waiting = queue.patients.filter((p) => p.status === "waiting").length;
    const late = queue.delay_minutes ? ` · running ${queue.delay_minutes} min late` : "";
    const table = rows.length ? el("div", { class: "table-scroll" }, el("table", { class: "queue-table" },
      el("caption", { class: "visually-hidden" }, `Today's patients of ${queue.provider_name}`),
      el("thead", {}, el("tr", {}, ...["Time", "Patient", "Status", "Waited", "Devices", "Actions"]
        .map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...rows))) : el("p", { class: "muted" }, "No appointments today.");
    return el("section", { class: "card", "aria-label": queue.provider_name },
      el("h2", {}, `${queue.provider_name} · ${waiting} waiting${late}`), table);
  });
  container.replaceChildren(...sections);
  focusAfter(kept);
  if (canAct) showDelay();
  const total = [...queues.values()].reduce(
    (n, q) => n + q.patients.filter((p) => p.status === "waiting").length, 0);
  document.title = total ? `(${total}) ${originalTitle}` : originalTitle;
}

// The provider's own delay, as waiting patients read it ("running about 10 minutes late").
const delayForm = document.getElementById("delay-form");
function showDelay() {
  const own = [...queues.values()][0];
  const select = document.getElementById("delay-minutes");
  if (own && select && document.activeElement !== select && !delayForm.dataset.busy) {
    select.value = String(own.delay_minutes || 0);
  }
}

if (delayForm) {
  delayForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const state = document.getElementById("delay-status");
    const minutes = Number(document.getElementById("delay-minutes").value);
    delayForm.dataset.busy = "yes";
    socket.timeout(5000).emit("delay", { minutes }, (err, answer) => {
      delete delayForm.dataset.busy;
      if (err) state.textContent = "Not saved: no answer from the server.";
      else if (answer.error) state.textContent = answer.error.message;
      else state.textContent = answer.delay_minutes
        ? `Waiting patients read: running about ${answer.delay_minutes} minutes late.`
        : "Waiting patients read that you are on time.";
    });
  });
}

startTicking(container);
if (canAct) warmUp();

function chime() {
  if (!audioContext) return;
  audioContext.resume();
  const osc = audioContext.createOscillator();
  const gain = audioContext.createGain();
  osc.frequency.value = 740;
  gain.gain.value = 0.2;
  osc.connect(gain).connect(audioContext.destination);
  osc.start();
  osc.stop(audioContext.currentTime + 0.35);
}

function notify(title, body) {
  chime();
  if ("Notification" in window && Notification.permission === "granted") {
    new Notification(title, { body, tag: "openconsult-queue" });
  }
}

function announce(patient) {
  notify("Patient waiting", `${patient.patient_name} is in the waiting room.`);
}

document.getElementById("enable-alerts").addEventListener("click", async (event) => {
  audioContext = audioContext || new AudioContext();
  await audioContext.resume();
  if ("Notification" in window && Notification.permission === "default") {
    await Notification.requestPermission();
  }
  event.target.textContent = "Alerts are on";
  event.target.disabled = true;
});

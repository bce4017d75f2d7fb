// The live clinic queue: today's patients per provider, with message and admit for the provider,
// and for any staff member a way to unlock a join link locked by wrong dates of birth.
import { api } from "./shared/api.js";
import { el } from "./shared/dom.js";
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
socket.on("disconnect", () => { connection.textContent = "Connection lost; reconnecting…"; });
socket.on("connect_error", (error) => {
  connection.textContent = (error && error.data && error.data.message) || "Cannot connect; retrying…";
});
socket.on("queue", (queue) => {
  const arrived = queue.patients.filter(
    (p) => p.status === "waiting" && !seenWaiting.has(p.appointment_id));
  for (const p of queue.patients) if (p.status === "waiting") seenWaiting.add(p.appointment_id);
  queues.set(queue.provider_id, queue);
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

function actions(patient) {
  if (patient.status === "link locked") return unlockButton(patient.appointment_id, patient.patient_name);
  if (!canAct || !["waiting", "away"].includes(patient.status)) return "";
  const name = patient.patient_name;
  const form = el("form", { class: "inline-form", hidden: "" },
    el("label", { for: `msg-${patient.appointment_id}`, class: "visually-hidden" }, `Message to ${name}`),
    el("input", { id: `msg-${patient.appointment_id}`, maxlength: "500", required: "",
      placeholder: "e.g. Running 10 minutes late" }),
    el("button", { type: "submit" }, "Send"),
    el("span", { role: "status", class: "muted" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = form.querySelector("input");
    const state = form.querySelector("[role=status]");
    socket.timeout(5000).emit("message", { appointment_id: patient.appointment_id, text: input.value },
      (err, answer) => {
        if (err) state.textContent = "Not sent: no answer from the server.";
        else if (answer.error) state.textContent = answer.error.message;
        else { state.textContent = "Sent"; input.value = ""; }
      });
  });
  const messageButton = el("button", { type: "button", onclick: () => {
    form.hidden = !form.hidden;
    if (!form.hidden) form.querySelector("input").focus();
  } }, `Message ${name}`);
  const admitButton = el("button", { type: "button", class: "primary", onclick: () => {
    admitButton.disabled = true;
    socket.timeout(5000).emit("admit", { appointment_id: patient.appointment_id }, (err, answer) => {
      if (err || answer.error) {
        admitButton.disabled = false;
        alerts.append(el("p", { class: "error" }, err ? "Admit failed: no answer." : answer.error.message));
      } else {
        window.location.assign(answer.url);
      }
    });
  } }, `Admit ${name}`);
  return el("div", {}, messageButton, " ", admitButton, form);
}

function render() {
  const sections = [...queues.values()].map((queue) => {
    const rows = queue.patients.map((p) => el("tr", { "data-appointment": p.appointment_id, "data-status": p.status },
      el("td", {}, time(p.start_at)),
      el("td", {}, p.patient_name),
      el("td", {}, el("span", { class: `status status-${p.status.replace(/\W+/g, "-")}` }, p.status),
        guestsWaiting(p)),
      el("td", {}, p.minutes_waited === null ? "—" : `${p.minutes_waited} min`),
      el("td", {}, devices(p.device_check)),
      el("td", {}, actions(p))));
    const waiting = queue.patients.filter((p) => p.status === "waiting").length;
    const table = rows.length ? el("table", {},
      el("caption", { class: "visually-hidden" }, `Today's patients of ${queue.provider_name}`),
      el("thead", {}, el("tr", {}, ...["Time", "Patient", "Status", "Waited", "Devices", "Actions"]
        .map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...rows)) : el("p", { class: "muted" }, "No appointments today.");
    return el("section", { class: "card", "aria-label": queue.provider_name },
      el("h2", {}, `${queue.provider_name} · ${waiting} waiting`), table);
  });
  container.replaceChildren(...sections);
  const total = [...queues.values()].reduce(
    (n, q) => n + q.patients.filter((p) => p.status === "waiting").length, 0);
  document.title = total ? `(${total}) ${originalTitle}` : originalTitle;
}

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

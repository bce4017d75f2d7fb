// Step 4 of a check-in: the waiting room. The /waiting socket brings the patient's place in
// line, the clinic's messages and the moment the provider is ready; a guest waits to be let in.
import { io } from "/static/vendor/socket.io-4.8.1.esm.min.js";
import { el } from "../shared/dom.js";
import { audio, call, hideSteps, isGuest, show } from "./checkin.js";
import { canEnter, coolDown, enterVisit, warmUp } from "./warm_visit.js";

let socket = null;
const originalTitle = document.title;

let lastPlace = null;

function place(data) {
  lastPlace = data;
  // The expected start is a time, so the estimate counts down between updates.
  const minutes = Math.max(0, Math.round((new Date(data.expected_start) - Date.now()) / 60000));
  const wait = minutes <= 0 ? "Your provider should see you any moment now." :
    `Expected wait: about ${minutes} minute${minutes === 1 ? "" : "s"}.`;
  document.getElementById("waiting-place").textContent =
    `You are number ${data.position} in line. ${wait}`;
  // The provider's state in words: in another visit, or running late by their own account.
  const status = document.getElementById("provider-status");
  const said = data.provider_status || "";
  if (status.textContent !== said) status.textContent = said;
  status.hidden = !said;
}

function addMessage(message) {
  const list = document.getElementById("waiting-messages");
  if (list.querySelector(".muted")) list.replaceChildren();
  const at = new Date(message.sent_at).toLocaleTimeString(undefined, { timeStyle: "short" });
  list.append(el("li", { class: `from-${message.sender || "clinic"}` },
    el("strong", {}, `${message.from} (${at}): `), message.text));
  // Once the clinic has written, the patient may answer.
  const reply = document.getElementById("reply-form");
  if (reply && message.sender !== "patient") reply.hidden = false;
}

// A short line to the clinic (an answer, or the reason for the visit), with its own status.
function sendsText(formId, fieldId, statusId, path, onSent, { keep = false } = {}) {
  const form = document.getElementById(formId);
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const field = document.getElementById(fieldId);
    const status = document.getElementById(statusId);
    const text = field.value.trim();
    if (!text) {
      status.textContent = "Please write a few words first.";
      status.className = "error";
      field.focus();
      return;
    }
    status.textContent = "Sending…";
    status.className = "muted";
    try {
      const sent = await call("POST", path, { text });
      if (!keep) field.value = "";
      status.textContent = "Sent to the clinic.";
      onSent(sent);
    } catch (error) {
      status.textContent = error.message;
      status.className = "error";
      field.focus();
    }
  });
}

function beep() {
  const audioContext = audio();
  if (!audioContext) return;
  audioContext.resume();
  for (const [i, freq] of [660, 880, 660].entries()) {
    const osc = audioContext.createOscillator();
    const gain = audioContext.createGain();
    osc.frequency.value = freq;
    gain.gain.value = 0.2;
    osc.connect(gain).connect(audioContext.destination);
    osc.start(audioContext.currentTime + i * 0.25);
    osc.stop(audioContext.currentTime + i * 0.25 + 0.2);
  }
}

export function admitted(url, visitId) {
  performance.mark("admitted");
  if (socket) socket.disconnect();
  if (visitId && canEnter()) {
    // The connection is warm: the chime plays while picture and sound start on this page.
    beep();
    enterVisit(visitId);
    return;
  }
  show("admitted");
  document.getElementById("visit-link").href = url;
  document.title = "▶ Your provider is ready · OpenConsult";
  beep();
  // Long enough for the three-tone alert (0.7 s) to play; every second more is a second
  // the provider stares at an empty tile.
  setTimeout(() => window.location.assign(url), 1000);
}

// The reason given stays in its field (a reload shows it too), to change and send again.
function showReason(sent) {
  document.getElementById("reason-text").value = sent.text;
  document.getElementById("reason-status").textContent = `Sent to the clinic: “${sent.text}”`;
  document.getElementById("reason-send").textContent = "Update the reason";
}

export async function enterWaitingRoom() {
  show("waiting");
  const open = document.getElementById("checkin-open"); // "Check-in is open": done with it now
  if (open) open.hidden = true;
  if (!isGuest) warmUp();
  if (isGuest) {
    document.getElementById("waiting-place").textContent =
      "Please wait: the provider will let you into the visit shortly.";
  }
  const state = await call("GET", "/status");
  (state.messages || []).forEach(addMessage);
  if (!isGuest) {
    sendsText("reply-form", "reply-text", "reply-status", "/reply", (sent) => addMessage({ ...sent, sender: "patient" }));
    sendsText("reason-form", "reason-text", "reason-status", "/reason", showReason, { keep: true });
    if (state.reason) showReason({ text: state.reason });
  }
  const connection = document.getElementById("waiting-connection");
  socket = io("/waiting", { transports: ["websocket"], withCredentials: true });
  socket.on("connect", () => { connection.textContent = ""; });
  socket.on("disconnect", () => {
    connection.textContent = "Connection lost; reconnecting. Your place in line is kept.";
  });
  socket.on("connect_error", (error) => {
    connection.textContent = (error && error.data && error.data.message) || "Cannot connect; retrying…";
  });
  socket.on("place", place);
  setInterval(() => { if (lastPlace) place(lastPlace); }, 30000);
  socket.on("message", (message) => {
    addMessage(message);
    document.title = `New message · ${originalTitle}`;
  });
  socket.on("admitted", (data) => admitted(data.url, data.visit_id));
  socket.on("released", (data) => {
    socket.disconnect();
    coolDown();
    hideSteps();
    const released = document.getElementById("released");
    released.textContent = data.message;
    released.hidden = false;
  });
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && document.title.startsWith("New message")) document.title = originalTitle;
});

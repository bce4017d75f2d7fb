// The way into a visit: the patient's check-in (identity, consent, device check, waiting room),
// or a guest's (their name instead of the identity check; they wait to be let in, not in line).
import { api, ApiError } from "./shared/api.js";
import { el } from "./shared/dom.js";
import { io } from "/static/vendor/socket.io-4.8.1.esm.min.js";

const root = document.getElementById("checkin");
const token = root.dataset.token;
const isGuest = root.dataset.kind === "guest";
const base = `/api/${isGuest ? "guest" : "join"}/${encodeURIComponent(token)}`;
const status = document.getElementById("join-status");
const steps = ["identity", "name", "consent", "devices", "waiting", "admitted"];
let media = null;
let audioContext = null;

function show(step) {
  for (const name of steps) document.getElementById(`step-${name}`).hidden = name !== step;
  const first = document.querySelector(`#step-${step} input, #step-${step} h2`);
  if (first) { first.setAttribute("tabindex", first.tabIndex >= 0 ? first.tabIndex : "-1"); first.focus(); }
}

function say(text, isError = false) {
  status.textContent = text;
  status.className = isError ? "error" : "muted";
}

async function call(method, path, body) {
  // The patient API answers the same error shape as the staff API; a 401 is not a sign-in.
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(base + path, init);
  } catch {
    throw new ApiError(0, "network", "Cannot reach the clinic's server; check your connection.");
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code, error.message || "Something went wrong.", error.fields);
  }
  return data;
}

function goTo(progress) {
  say("");
  if (progress.step === "identity") show("identity");
  else if (progress.step === "name") show("name");
  else if (progress.step === "consent") loadConsent();
  else if (progress.step === "device_check") startDeviceCheck();
  else if (progress.step === "waiting") enterWaitingRoom();
  else if (progress.step === "admitted") admitted(progress.visit_url);
}

function stopped(error) {
  if (error.code === "link_locked" || error.code === "link_not_open") {
    for (const name of steps) document.getElementById(`step-${name}`).hidden = true;
    say(error.message, true);
    return true;
  }
  return false;
}

// 1. Identity
document.getElementById("step-identity").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("birth-date");
  const message = document.getElementById("identity-error");
  if (!input.value) { message.textContent = "Please enter your date of birth."; input.focus(); return; }
  message.textContent = "";
  say("Checking…");
  try {
    goTo(await call("POST", "/identity", { birth_date: input.value }));
  } catch (error) {
    say("");
    if (!stopped(error)) { message.textContent = error.message; input.focus(); }
  }
});

// 1. A guest's name
document.getElementById("step-name").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("guest-name");
  const message = document.getElementById("name-error");
  if (!input.value.trim()) { message.textContent = "Please enter your name."; input.focus(); return; }
  message.textContent = "";
  try {
    goTo(await call("POST", "/name", { name: input.value.trim() }));
  } catch (error) {
    if (!stopped(error)) { message.textContent = error.message; input.focus(); }
  }
});

// 2. Consent
let consentVersion = null;
async function loadConsent() {
  const consent = await call("GET", "/consent");
  consentVersion = consent.version;
  document.getElementById("consent-title").textContent = consent.title;
  document.getElementById("consent-body").textContent = consent.body;
  show("consent");
}

document.getElementById("step-consent").addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = document.getElementById("consent-error");
  if (!document.getElementById("consent-accept").checked) {
    message.textContent = "Please tick the box to agree; without consent the visit cannot take place.";
    return;
  }
  try {
    // The click is a user gesture: audio for the level meter and the admit sound may start now.
    audioContext = audioContext || new AudioContext();
    goTo(await call("POST", "/consent", { version: consentVersion, accepted: true }));
  } catch (error) {
    if (!stopped(error)) message.textContent = error.message;
    if (error.status === 409) await loadConsent();
  }
});

// 3. Devices and network
const HELP = {
  denied: "Your browser blocked the camera or microphone. Chrome and Edge: click the camera icon in " +
    "the address bar and choose Allow. Firefox: click the camera icon left of the address and remove " +
    "the block. Safari: Safari > Settings for This Website > Camera and Microphone > Allow. Then press " +
    "Test again.",
  missing: "No camera or microphone was found. Plug one in (or close other apps that use it), then " +
    "press Test again. You can still wait; your provider may call you instead.",
  unsupported: "This browser cannot make video calls. Please use a current Chrome, Edge, Firefox or Safari.",
};

function classify(error) {
  if (!error) return "ok";
  if (error.name === "NotAllowedError" || error.name === "SecurityError") return "denied";
  if (error.name === "NotFoundError" || error.name === "OverconstrainedError") return "missing";
  return "error";
}

async function networkCheck() {
  const times = [];
  for (let i = 0; i < 5; i += 1) {
    const start = performance.now();
    await call("GET", "/ping");
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return Math.round(times[2]);
}

function meter(stream) {
  const level = document.getElementById("mic-level");
  if (!audioContext || stream.getAudioTracks().length === 0) return;
  audioContext.resume();
  const analyser = audioContext.createAnalyser();
  analyser.fftSize = 512;
  audioContext.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const tick = () => {
    if (!media) return;
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    level.value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
    requestAnimationFrame(tick);
  };
  tick();
}

async function startDeviceCheck() {
  show("devices");
  const results = document.getElementById("device-results");
  const help = document.getElementById("device-help");
  const proceed = document.getElementById("devices-continue");
  results.replaceChildren(el("li", {}, "Testing…"));
  help.hidden = true;
  proceed.disabled = true;
  stopMedia();
  let camera = "unsupported";
  let microphone = "unsupported";
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    try {
      media = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
      camera = media.getVideoTracks().length ? "ok" : "missing";
      microphone = media.getAudioTracks().length ? "ok" : "missing";
      document.getElementById("preview").srcObject = media;
      meter(media);
    } catch (error) {
      camera = microphone = classify(error);
    }
  }
  let rtt = null;
  try { rtt = await networkCheck(); } catch { rtt = null; }
  const network = rtt === null ? "Connection to the clinic failed" :
    `Connection to the clinic: ${rtt < 300 ? "good" : "slow"} (${rtt} ms)`;
  results.replaceChildren(
    el("li", {}, `Camera: ${camera === "ok" ? "working" : camera}`),
    el("li", {}, `Microphone: ${microphone === "ok" ? "working" : microphone}`),
    el("li", {}, network),
  );
  const problem = [camera, microphone].find((s) => s !== "ok");
  if (problem) {
    help.textContent = HELP[problem] || HELP.missing;
    help.hidden = false;
  }
  await call("POST", "/device-check", {
    camera, microphone, network_rtt_ms: rtt, browser: navigator.userAgent.slice(0, 200),
  });
  proceed.disabled = false;
}

function stopMedia() {
  if (media) for (const track of media.getTracks()) track.stop();
  media = null;
}

document.getElementById("devices-retry").addEventListener("click", () => startDeviceCheck());
document.getElementById("devices-continue").addEventListener("click", async () => {
  stopMedia();
  try { goTo(await call("POST", "/waiting")); } catch (error) { if (!stopped(error)) say(error.message, true); }
});

// 4. Waiting room
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
}

function addMessage(message) {
  const list = document.getElementById("waiting-messages");
  if (list.querySelector(".muted")) list.replaceChildren();
  const at = new Date(message.sent_at).toLocaleTimeString(undefined, { timeStyle: "short" });
  list.append(el("li", {}, el("strong", {}, `${message.from} (${at}): `), message.text));
}

function beep() {
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

function admitted(url) {
  if (socket) socket.disconnect();
  show("admitted");
  document.getElementById("visit-link").href = url;
  document.title = "▶ Your provider is ready · OpenConsult";
  beep();
  // Long enough for the three-tone alert (0.7 s) to play; every second more is a second
  // the provider stares at an empty tile.
  setTimeout(() => window.location.assign(url), 1000);
}

async function enterWaitingRoom() {
  show("waiting");
  if (isGuest) {
    document.getElementById("waiting-place").textContent =
      "Please wait: the provider will let you into the visit shortly.";
  }
  const state = await call("GET", "/status");
  state.messages.forEach(addMessage);
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
  socket.on("admitted", (data) => admitted(data.url));
  socket.on("released", (data) => {
    socket.disconnect();
    for (const name of steps) document.getElementById(`step-${name}`).hidden = true;
    const released = document.getElementById("released");
    released.textContent = data.message;
    released.hidden = false;
  });
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && document.title.startsWith("New message")) document.title = originalTitle;
});

(async () => {
  try {
    goTo(await call("GET", "/status"));
  } catch (error) {
    if (error.code === "step_missing") show(isGuest ? "name" : "identity");
    else if (!stopped(error)) say(error.message, true);
  }
})();

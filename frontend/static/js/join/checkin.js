// What the steps of a check-in share: the link's calls to the check-in API, the steps shown one
// at a time, the status line, and the page's sound.
import { ApiError } from "../shared/api.js";

const root = document.getElementById("checkin");
const token = root.dataset.token;
export const isGuest = root.dataset.kind === "guest";
const base = `/api/${isGuest ? "guest" : "join"}/${encodeURIComponent(token)}`;
const status = document.getElementById("join-status");
const steps = ["identity", "name", "consent", "intake", "devices", "waiting", "admitted"];
let audioContext = null;

export function show(step) {
  say(""); // a step on screen answers whatever the status line said ("Loading your check-in…")
  for (const name of steps) document.getElementById(`step-${name}`).hidden = name !== step;
  const first = document.querySelector(`#step-${step} input, #step-${step} textarea, #step-${step} h2`);
  if (first) { first.setAttribute("tabindex", first.tabIndex >= 0 ? first.tabIndex : "-1"); first.focus(); }
}

export function hideSteps() {
  for (const name of steps) document.getElementById(`step-${name}`).hidden = true;
}

export function say(text, isError = false) {
  status.textContent = text;
  status.className = isError ? "error" : "muted";
}

export async function call(method, path, body) {
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

export function stopped(error) {
  if (error.code === "link_locked") {
    // Check-in is no longer open: say whom to call instead (the page holds the clinic's phone).
    hideSteps();
    say("");
    const open = document.getElementById("checkin-open");
    if (open) open.hidden = true;
    const locked = document.getElementById("link-locked");
    locked.hidden = false;
    locked.tabIndex = -1;
    locked.focus();
    return true;
  }
  if (error.code === "link_not_open") {
    hideSteps();
    say(error.message, true);
    return true;
  }
  return false;
}

// Sound for the microphone level meter and the admit alert; browsers let it start only on a
// user gesture, so startAudio() is called from a click.
export function startAudio() {
  audioContext = audioContext || new AudioContext();
}

export function audio() {
  return audioContext;
}

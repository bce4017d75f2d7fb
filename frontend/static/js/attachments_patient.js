// The patient's photos and documents (attachments/_patient_files.html): on the check-in page once
// the consent is accepted (shown with the intake, device check, waiting room and visit), and on
// the visit page. Files go to the join link's API; their list is the patient's own.
import { ApiError } from "./shared/api.js";
import { renderFiles, sizeText } from "./attachments/files.js";

const root = document.getElementById("patient-files");
const api = root.dataset.api;
const form = document.getElementById("patient-files-form");
const input = document.getElementById("patient-file");
const send = document.getElementById("patient-file-send");
const status = document.getElementById("patient-files-status");
const error = document.getElementById("patient-files-error");
const list = document.getElementById("patient-files-list");
let loaded = false;

async function call(method, body) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) init.body = body;
  let response;
  try {
    response = await fetch(api, init);
  } catch {
    throw new ApiError(0, "network", "Cannot reach the clinic's server; check your connection.");
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(response.status, e.code || "http_error",
      e.message || `Request failed (${response.status})`, e.fields, e.detail);
  }
  return data;
}

async function load() {
  try {
    const found = await call("GET");
    root.hidden = false;
    loaded = true;
    document.getElementById("patient-files-max").textContent = sizeText(found.max_bytes);
    renderFiles(list, found.attachments, "No files yet.");
  } catch (e) {
    // Before the consent (409) the section stays hidden; the check-in says what to do.
    if (e.status !== 409 && loaded) error.textContent = e.message;
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  const file = input.files && input.files[0];
  if (!file) { error.textContent = "Please choose a file first."; input.focus(); return; }
  const body = new FormData();
  body.append("file", file, file.name);
  send.disabled = true;
  status.textContent = "Sending…";
  try {
    await call("POST", body);
    status.textContent = `Added ${file.name}.`;
    form.reset();
    await load();
  } catch (e) {
    status.textContent = "";
    error.textContent = e.message;
    input.focus();
  } finally {
    send.disabled = false;
  }
});

if (root.dataset.always === "yes") {
  load();
} else {
  // On the check-in page: appear once the patient is past the consent, whichever step shows.
  const watched = ["step-intake", "step-devices", "step-waiting", "step-admitted", "visit-app"]
    .map((id) => document.getElementById(id)).filter(Boolean);
  const check = () => { if (!loaded && watched.some((node) => !node.hidden)) load(); };
  const observer = new MutationObserver(check);
  for (const node of watched) observer.observe(node, { attributes: true, attributeFilter: ["hidden"] });
  check();
}

// The patient's photos and documents beside the provider's note (attachments/_staff_files.html).
// Reloaded when the visit's socket says the patient added one (visit:attachments), or on Refresh.
import { api } from "./shared/api.js";
import { renderFiles } from "./attachments/files.js";

const root = document.getElementById("staff-files");
const status = document.getElementById("staff-files-status");
const list = document.getElementById("staff-files-list");
const refresh = document.getElementById("staff-files-refresh");
const url = root.dataset.url;

async function load() {
  status.className = "muted";
  status.textContent = "Loading the patient's files…";
  try {
    const found = await api("GET", url);
    const count = found.attachments.length;
    status.textContent = count ? `${count} file(s) from the patient.` : "";
    renderFiles(list, found.attachments, "The patient has not added any photos or documents.");
  } catch (error) {
    status.className = "error";
    status.textContent = error.message;
  }
}

refresh.addEventListener("click", load);
document.addEventListener("visit:attachments", load);
load();

// Patient record page: start a new draft note and open it in the editor.
import { api } from "./shared/api.js";

const record = document.getElementById("record");
const button = document.getElementById("new-note");

if (record && button) {
  button.addEventListener("click", async () => {
    const status = document.getElementById("new-note-status");
    button.disabled = true;
    status.textContent = "Starting a note…";
    try {
      const note = await api("POST", `/api/patients/${record.dataset.patientId}/notes`, {});
      window.location.assign(`/records/notes/${note.id}`);
    } catch (err) {
      status.textContent = err.message;
      status.className = "error";
      button.disabled = false;
    }
  });
}

// The clinic's public walk-in page: the patient says who they are and why they come, then
// continues to the same check-in as booked patients (consent, questions, devices, waiting room).
import { api } from "./shared/api.js";

const form = document.getElementById("walk-in-form");
const error = document.getElementById("walk-in-error");
const submit = document.getElementById("walk-in-submit");

function value(id) {
  const text = document.getElementById(id).value.trim();
  return text === "" ? null : text;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  const body = {
    given_name: value("walk-in-given"),
    family_name: value("walk-in-family"),
    birth_date: value("walk-in-birth"),
    email: value("walk-in-email"),
    phone: value("walk-in-phone"),
    reason: value("walk-in-reason"),
  };
  const missing = ["given_name", "family_name", "birth_date", "reason"].filter((k) => !body[k]);
  if (missing.length || (!body.email && !body.phone)) {
    error.textContent = "Please fill in your name, date of birth, the reason, and an email or a phone number.";
    return;
  }
  for (const key of Object.keys(body)) if (body[key] === null) delete body[key];
  submit.disabled = true;
  submit.textContent = "Sending…";
  try {
    const answer = await api("POST", `/api/walk-in/${encodeURIComponent(form.dataset.code)}`, body);
    window.location.assign(answer.join_url);
  } catch (err) {
    error.textContent = err.message;
    if (err.code === "on_demand_closed") {
      document.getElementById("walk-in-closed-text").textContent = err.message;
      document.getElementById("walk-in-closed").hidden = false;
      form.hidden = true;
    }
    submit.disabled = false;
    submit.textContent = "Continue";
  }
});

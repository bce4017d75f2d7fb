// The admin's intake page: pick a visit type, edit its questionnaire and rules as JSON, save;
// the server checks both and names each wrong field.
import { api } from "./shared/api.js";
import { el } from "./shared/dom.js";

const form = document.getElementById("intake-admin-form");
const status = document.getElementById("intake-admin-status");
const select = document.getElementById("intake-type");
const questionnaire = document.getElementById("intake-questionnaire");
const rules = document.getElementById("intake-rules");
const errors = document.getElementById("intake-admin-errors");
const fieldError = {
  questionnaire: document.getElementById("intake-questionnaire-error"),
  rules: document.getElementById("intake-rules-error"),
};

function clearErrors() {
  errors.replaceChildren();
  for (const [name, p] of Object.entries(fieldError)) {
    p.textContent = "";
    document.getElementById(`intake-${name}`).removeAttribute("aria-invalid");
  }
}

function showForm(intake) {
  questionnaire.value = JSON.stringify(intake.questionnaire, null, 2);
  rules.value = JSON.stringify(intake.rules, null, 2);
  document.getElementById("intake-default").textContent = intake.is_default
    ? "This visit type asks the default questions; saving gives it its own."
    : `This visit type has its own questions (saved ${new Date(intake.updated_at).toLocaleString()}).`;
}

async function load() {
  clearErrors();
  status.textContent = "Loading…";
  showForm(await api("GET", `/api/appointment-types/${select.value}/intake`));
  status.textContent = "";
}

function parsed(name, textarea) {
  try {
    return JSON.parse(textarea.value);
  } catch (error) {
    fieldError[name].textContent = `Not valid JSON: ${error.message}`;
    textarea.setAttribute("aria-invalid", "true");
    return undefined;
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  const body = { questionnaire: parsed("questionnaire", questionnaire), rules: parsed("rules", rules) };
  if (body.questionnaire === undefined || body.rules === undefined) {
    (body.questionnaire === undefined ? questionnaire : rules).focus();
    return;
  }
  status.textContent = "Saving…";
  try {
    showForm(await api("PUT", `/api/appointment-types/${select.value}/intake`, body));
    status.textContent = "Saved.";
  } catch (error) {
    status.textContent = "";
    errors.replaceChildren(el("li", {}, error.message),
      ...Object.entries(error.fields || {}).map(([field, message]) => el("li", {}, `${field}: ${message}`)));
  }
});

select.addEventListener("change", () => load().catch((error) => { status.textContent = error.message; }));

(async () => {
  try {
    const kinds = await api("GET", "/api/appointment-types");
    if (!kinds.length) { status.textContent = "Add a visit type first (Provider hours and visit types)."; return; }
    select.replaceChildren(...kinds.map((k) => el("option", { value: k.id }, k.name)));
    form.hidden = false;
    await load();
  } catch (error) {
    status.textContent = error.message;
    status.className = "error";
  }
})();

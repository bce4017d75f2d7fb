// The intake step: the clinic's questions (a FHIR Questionnaire), each answer saved a moment
// after the patient stops typing, so a reload finds them; sending checks the required ones.
import { el } from "../shared/dom.js";
import { call, say, show, stopped } from "./checkin.js";

const form = document.getElementById("step-intake");
const itemsBox = document.getElementById("intake-items");
const saved = document.getElementById("intake-saved");
const formError = document.getElementById("intake-error");
const SAVE_AFTER_MS = 700;
let items = [];
let answers = {};
let pending = {};
let timer = null;
let saving = Promise.resolve();
let onDone = () => {};

const fieldId = (linkId) => `q-${linkId}`;
const sentence = (text) => text.charAt(0).toUpperCase() + text.slice(1);
const errorOf = (linkId) => document.getElementById(`${fieldId(linkId)}-error`);

function bound(item, url) {
  const found = (item.extension || []).find((e) => e.url.endsWith(url));
  return found ? (found.valueInteger ?? found.valueDecimal) : undefined;
}

function options(item, multiple) {
  const type = multiple ? "checkbox" : "radio";
  const values = item.type === "boolean"
    ? [["true", "Yes"], ["false", "No"]]
    : item.answerOption.map((o) => [o.valueString, o.valueString]);
  return el("div", { class: "intake-options" }, ...values.map(([value, text], i) => {
    const input = el("input", { type, name: item.linkId, value, id: `${fieldId(item.linkId)}-${i}`,
      "aria-describedby": `${fieldId(item.linkId)}-error` });
    return el("label", { class: "checkbox", for: input.id }, input, ` ${text}`);
  }));
}

function itemField(item) {
  const mark = item.required ? el("span", { class: "required-mark" }, " (required)") : "";
  const error = el("p", { class: "error", id: `${fieldId(item.linkId)}-error` });
  if (item.type === "choice" || item.type === "boolean") {
    return el("fieldset", { class: "intake-item", "data-link-id": item.linkId },
      el("legend", {}, item.text, mark), options(item, item.repeats), error);
  }
  const attrs = { id: fieldId(item.linkId), name: item.linkId, "aria-describedby": error.id };
  if (item.required) attrs["aria-required"] = "true";
  let input;
  if (item.type === "text") input = el("textarea", { ...attrs, rows: "3", maxlength: "2000" });
  else if (item.type === "date") input = el("input", { ...attrs, type: "date" });
  else if (item.type === "integer" || item.type === "decimal") {
    const low = bound(item, "minValue");
    const high = bound(item, "maxValue");
    input = el("input", { ...attrs, type: "number", inputmode: item.type === "integer" ? "numeric" : "decimal",
      step: item.type === "integer" ? "1" : "any" });
    if (low !== undefined) input.min = low;
    if (high !== undefined) input.max = high;
  } else input = el("input", { ...attrs, type: "text", maxlength: "2000" });
  return el("div", { class: "intake-item", "data-link-id": item.linkId },
    el("label", { for: input.id }, item.text, mark), input, error);
}

function valueOf(item) {
  const box = itemsBox.querySelector(`[data-link-id="${CSS.escape(item.linkId)}"]`);
  if (item.type === "choice" || item.type === "boolean") {
    const checked = [...box.querySelectorAll("input:checked")].map((i) => i.value);
    if (item.type === "boolean") return checked.length ? checked[0] === "true" : null;
    if (item.repeats) return checked.length ? checked : null;
    return checked[0] ?? null;
  }
  const raw = box.querySelector("input, textarea").value;
  if (raw === "" || (typeof raw === "string" && !raw.trim() && item.type !== "text" && item.type !== "string")) return null;
  if (item.type === "integer" || item.type === "decimal") return Number.isNaN(Number(raw)) ? raw : Number(raw);
  return raw;
}

function fill(item, value) {
  const box = itemsBox.querySelector(`[data-link-id="${CSS.escape(item.linkId)}"]`);
  if (item.type === "choice" || item.type === "boolean") {
    const chosen = (Array.isArray(value) ? value : [value]).map(String);
    for (const input of box.querySelectorAll("input")) input.checked = chosen.includes(input.value);
  } else box.querySelector("input, textarea").value = value;
}

function enabled(item) {
  for (const when of item.enableWhen || []) {
    const given = answers[when.question];
    const wanted = when.answerBoolean ?? when.answerString ?? when.answerInteger ?? when.answerDecimal;
    const asked = enabledById(when.question);
    const present = asked && given !== undefined && given !== null;
    if (when.operator === "exists") return present === wanted;
    if (!present) return false;
    if (when.operator === "=") return Array.isArray(given) ? given.includes(wanted) : given === wanted;
    if (typeof given !== "number") return false;
    return when.operator === ">=" ? given >= wanted : given <= wanted;
  }
  return true;
}

function enabledById(linkId) {
  const item = items.find((i) => i.linkId === linkId);
  return item ? enabled(item) : false;
}

function showEnabled() {
  for (const item of items) {
    itemsBox.querySelector(`[data-link-id="${CSS.escape(item.linkId)}"]`).hidden = !enabled(item);
  }
}

function showErrors(fields) {
  for (const item of items) {
    const message = sentence((fields && fields[item.linkId]) || "");
    errorOf(item.linkId).textContent = message;
    for (const input of itemsBox.querySelectorAll(`[name="${CSS.escape(item.linkId)}"]`)) {
      if (message) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
    }
  }
}

async function flush() {
  clearTimeout(timer);
  timer = null;
  const changes = pending;
  pending = {};
  if (!Object.keys(changes).length) return saving;
  saved.textContent = "Saving…";
  saving = saving.then(async () => {
    try {
      await call("PATCH", "/intake", { answers: changes });
      saved.textContent = "Your answers are saved.";
      formError.textContent = "";
      for (const id of Object.keys(changes)) errorOf(id).textContent = "";
    } catch (error) {
      if (stopped(error)) return;
      saved.textContent = "";
      if (error.fields) {
        for (const [id, message] of Object.entries(error.fields)) if (errorOf(id)) errorOf(id).textContent = sentence(message);
      } else formError.textContent = error.message;
    }
  });
  return saving;
}

function changed(event) {
  const box = event.target.closest("[data-link-id]");
  if (!box) return;
  const item = items.find((i) => i.linkId === box.dataset.linkId);
  const value = valueOf(item);
  if (value === null) delete answers[item.linkId]; else answers[item.linkId] = value;
  pending[item.linkId] = value;
  showEnabled();
  clearTimeout(timer);
  timer = setTimeout(flush, SAVE_AFTER_MS);
}

form.addEventListener("input", changed);
form.addEventListener("change", changed);

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  formError.textContent = "";
  await flush();
  try {
    const progress = await call("POST", "/intake/submit");
    onDone(progress);
  } catch (error) {
    if (stopped(error)) return;
    formError.textContent = error.message;
    if (error.fields) {
      showErrors(error.fields);
      const first = items.find((i) => error.fields[i.linkId]);
      const input = first && itemsBox.querySelector(`[name="${CSS.escape(first.linkId)}"]`);
      if (input) input.focus();
    }
  }
});

export async function startIntake(goTo) {
  onDone = goTo;
  say("Loading the clinic's questions…");
  const intake = await call("GET", "/intake");
  items = intake.questionnaire.item;
  answers = { ...intake.answers };
  document.getElementById("intake-name").textContent = intake.questionnaire.title;
  itemsBox.replaceChildren(...items.map(itemField));
  for (const item of items) if (answers[item.linkId] !== undefined) fill(item, answers[item.linkId]);
  showEnabled();
  show("intake");
}

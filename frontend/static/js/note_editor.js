// Consult note editor: debounced autosave with optimistic versions, merge on conflict, sign,
// addenda. A reload or closed tab loses at most what was typed in the last moments: pending
// text is flushed with a keepalive request when the page goes away, and also kept in this tab's
// sessionStorage until the reloaded page has confirmed it on the server (the flush and the
// reloaded page's first read can reach the server in either order).
import { api, csrfToken } from "./shared/api.js";
import { el } from "./shared/dom.js";
import { setupAddenda } from "./note_editor/addenda.js";
import { formatLocal, formatTimeOfDay } from "./shared/format.js";

const DEBOUNCE_MS = 800; // quiet time after the last keystroke before saving
const MAX_WAIT_MS = 4000; // continuous typing still saves this often
const RETRY_MS = 5000;
const PENDING_KEY = `openconsult:pending-note:${document.getElementById("note-editor").dataset.noteId}`;

const root = document.getElementById("note-editor");
const form = document.getElementById("note-form");
const statusLine = document.getElementById("save-status");
const signButton = document.getElementById("sign-note");
const conflictCard = document.getElementById("conflict");
const noteId = root.dataset.noteId;
const editable = root.dataset.editable === "true";
const maxChars = Number(root.dataset.maxChars);

let version = Number(root.dataset.version);
let noteStatus = root.dataset.status;
let dirty = false;
let firstDirtyAt = 0;
let timer = null;
let inFlight = null;
let conflict = null; // {current, mine} while the merge panel is open

const fields = () => [...form.querySelectorAll("textarea[data-section]")];

function sections() {
  return Object.fromEntries(fields().map((t) => [t.dataset.section, t.value]));
}

function same(a, b) {
  return fields().every((t) => (a[t.dataset.section] ?? "") === (b[t.dataset.section] ?? ""));
}

function fill(values) {
  for (const t of fields()) t.value = values[t.dataset.section] ?? "";
}

function say(text, kind = "muted") {
  statusLine.textContent = text;
  statusLine.className = kind;
}

function lock(note) {
  noteStatus = "signed";
  for (const t of fields()) t.readOnly = true;
  if (signButton) signButton.hidden = true;
  document.getElementById("note-state").textContent = "Signed";
  document.getElementById("addenda-card").hidden = false;
  if (note && note.signed_at) say(`Signed ${formatLocal(note.signed_at)}; the note is locked.`);
}

function schedule() {
  if (noteStatus !== "draft" || !editable) return;
  dirty = true;
  if (!firstDirtyAt) firstDirtyAt = Date.now();
  clearTimeout(timer);
  const untilMax = firstDirtyAt + MAX_WAIT_MS - Date.now();
  timer = setTimeout(save, Math.max(0, Math.min(DEBOUNCE_MS, untilMax)));
  if (!conflict) say("Unsaved changes…");
}

async function save() {
  clearTimeout(timer);
  while (inFlight) await inFlight; // one save at a time, so versions go up in order
  if (!dirty || conflict || noteStatus !== "draft") return;
  const mine = sections();
  const total = Object.values(mine).reduce((n, s) => n + s.length, 0);
  if (total > maxChars) {
    say(`Not saved: the note is longer than ${maxChars} characters.`, "error");
    return;
  }
  dirty = false;
  firstDirtyAt = 0;
  say("Saving…");
  inFlight = (async () => {
    try {
      const note = await api("PUT", `/api/notes/${noteId}`, { version, sections: mine });
      version = note.version;
      say(`Saved at ${formatTimeOfDay(note.updated_at)}`, "notice");
    } catch (err) {
      if (err.status === 409 && err.code === "version_conflict" && same(err.detail.current.sections, mine)) {
        version = err.detail.current.version; // our own earlier flush already stored this text
        say(`Saved at ${formatTimeOfDay(err.detail.current.updated_at)}`, "notice");
      } else if (err.status === 409 && err.code === "version_conflict") {
        showConflict(err.detail.current, mine);
      } else if (err.status === 409 && err.code === "note_signed") {
        lock(null);
        say(err.message, "error");
      } else {
        dirty = true;
        say(`Not saved: ${err.message}`, "error");
        if (err.status === 0 || err.status >= 500) timer = setTimeout(save, RETRY_MS);
      }
    }
  })();
  await inFlight;
  inFlight = null;
}

function showConflict(current, mine) {
  conflict = { current, mine };
  const holder = document.getElementById("conflict-sections");
  holder.replaceChildren();
  for (const t of fields()) {
    const name = t.dataset.section;
    const theirs = current.sections[name] ?? "";
    if (theirs === (mine[name] ?? "")) continue;
    const label = form.querySelector(`label[for="section-${name}"]`).textContent;
    const merged = el("textarea", { rows: "3", "data-merge": name, "aria-label": `Merged ${label}` });
    merged.value = mine[name] ?? "";
    holder.append(el("div", { class: "merge-section" },
      el("h3", {}, label),
      el("p", { class: "muted" }, `Other version (version ${current.version}):`),
      el("pre", {}, theirs || "(empty)"),
      el("p", { class: "muted" }, "Merged text (starts as yours):"),
      merged,
      el("button", { type: "button", onclick: () => { merged.value = theirs; } }, "Use the other version"),
    ));
  }
  conflictCard.hidden = false;
  say(`Not saved: the note was changed elsewhere (now version ${current.version}).`, "error");
}

function closeConflict(values) {
  const { current } = conflict;
  version = current.version;
  fill(values);
  conflict = null;
  conflictCard.hidden = true;
  if (current.status === "signed") lock(current);
}

document.getElementById("save-merge").addEventListener("click", () => {
  const merged = { ...conflict.current.sections };
  for (const t of fields()) {
    const box = conflictCard.querySelector(`textarea[data-merge="${t.dataset.section}"]`);
    if (box) merged[t.dataset.section] = box.value;
  }
  closeConflict(merged);
  schedule();
  save();
});

document.getElementById("take-theirs").addEventListener("click", () => {
  closeConflict(conflict.current.sections);
  dirty = false;
  say(`Loaded version ${version}.`);
});

if (editable) {
  form.addEventListener("input", schedule);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden" && dirty) save();
  });
  window.addEventListener("pagehide", () => {
    if (!dirty || conflict || noteStatus !== "draft") return;
    const pending = { version, sections: sections() };
    try {
      sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
    } catch (err) { /* storage full or disabled: the keepalive flush still runs */ }
    // keepalive lets the request outlive the page (reload, closed tab).
    fetch(`/api/notes/${noteId}`, {
      method: "PUT",
      keepalive: true,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(pending),
    });
  });
}

if (signButton) {
  signButton.addEventListener("click", async () => {
    if (!window.confirm("Sign this note? It will be locked; later corrections become addenda.")) return;
    signButton.disabled = true;
    await save();
    if (conflict) { signButton.disabled = false; return; }
    try {
      const note = await api("POST", `/api/notes/${noteId}/sign`, { version });
      version = note.version;
      lock(note);
    } catch (err) {
      if (err.status === 409 && err.code === "version_conflict") showConflict(err.detail.current, sections());
      else say(`Not signed: ${err.message}`, "error");
    }
    signButton.disabled = false;
  });
}

setupAddenda(noteId);

function takePending() {
  let pending = null;
  try {
    pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
    sessionStorage.removeItem(PENDING_KEY);
  } catch (err) { /* nothing usable kept */ }
  return pending;
}

// The page may have been served just before a flush from the previous page landed: take the
// newest version unless the user has started typing; text the previous page could not confirm
// is saved again (a 409 showing the same text means the flush landed after all).
async function refresh() {
  const pending = editable ? takePending() : null;
  if (pending && pending.version >= version) {
    version = pending.version;
    fill(pending.sections);
    schedule();
    save();
    return;
  }
  try {
    const note = await api("GET", `/api/notes/${noteId}`);
    if (!dirty && note.version > version) {
      version = note.version;
      fill(note.sections);
      say(`Saved at ${formatTimeOfDay(note.updated_at)}`, "notice");
    }
    if (note.status === "signed" && noteStatus !== "signed") lock(note);
  } catch (err) {
    say(err.message, "error");
  }
}

if (noteStatus === "draft") refresh();

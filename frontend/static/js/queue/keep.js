// What a re-render of the queue must not lose: half-typed messages, which message forms are
// open, and the focused field with its caret. The list is rebuilt on every change (a patient
// arrives, a device check lands); these survive it.

const drafts = new Map(); // field id -> text typed and not sent yet
const openForms = new Set(); // appointment ids whose message form is open

export function draftOf(id) {
  return drafts.get(id) || "";
}

export function keepDraft(input) {
  if (input.value) drafts.set(input.id, input.value);
  else drafts.delete(input.id);
}

export function forgetDraft(id) {
  drafts.delete(id);
}

export function isOpen(appointmentId) {
  return openForms.has(appointmentId);
}

export function setOpen(appointmentId, open) {
  if (open) openForms.add(appointmentId);
  else openForms.delete(appointmentId);
}

// Where focus is before a re-render: the element's id, and the caret when it is a text field.
export function focusBefore() {
  const active = document.activeElement;
  if (!active || !active.id || active === document.body) return null;
  const kept = { id: active.id };
  if (typeof active.selectionStart === "number") {
    kept.start = active.selectionStart;
    kept.end = active.selectionEnd;
    kept.direction = active.selectionDirection;
  }
  return kept;
}

export function focusAfter(kept) {
  if (!kept) return;
  const again = document.getElementById(kept.id);
  if (!again || again === document.activeElement) return;
  again.focus({ preventScroll: true });
  if (kept.start !== undefined && typeof again.setSelectionRange === "function") {
    again.setSelectionRange(kept.start, kept.end, kept.direction);
  }
}

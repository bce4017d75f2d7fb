// Email delivery on the scheduler page: status pills, one email's line, the undelivered banner
// (admins retry from it), and copying a join link.
import { api } from "../shared/api.js";
import { el } from "../shared/dom.js";

const WORDS = {
  queued: "email queued", retrying: "email retrying", sent: "email sent",
  failed: "email failed", withdrawn: "email withdrawn",
};
const KINDS = {
  confirmation: "Confirmation", rescheduled: "New time", link_resent: "New link",
  reminder: "Reminder", cancellation: "Cancellation",
};

// `channel` "text": the same states, said of a text message.
export function emailStatusPill(status, channel = "email") {
  if (!status) return "";
  const words = WORDS[status] || status;
  return el("span", { class: `pill ${status}` }, channel === "text" ? words.replace("email", "text") : words);
}

export function messageLine(m, when) {
  const text = m.channel === "sms";
  const parts = [el("strong", {}, `${KINDS[m.kind] || m.kind}${text ? " (text message)" : ""}`), ` to ${m.to}: `,
    emailStatusPill(m.status, text ? "text" : "email")];
  if (m.status === "sent" && m.sent_at) {
    const where = m.delivered_via === "dev_mailbox" ? " (kept in the development mailbox)" : "";
    parts.push(` ${when(m.sent_at)}${where}`);
  } else if (m.status === "queued") {
    parts.push(` due ${when(m.send_after)}`);
  }
  if (m.attempts) parts.push(` · ${m.attempts} attempt${m.attempts === 1 ? "" : "s"}`);
  if (m.last_error && m.status !== "sent") parts.push(el("br", {}), el("span", { class: "muted" }, `Reason: ${m.last_error}`));
  return parts;
}

export async function copyText(input, say) {
  input.focus();
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
    say("Link copied.");
  } catch {
    say("The link is selected: press Ctrl+C (or ⌘+C) to copy it.");
  }
}

export async function loadMailTrouble({ say, fail, when }) {
  const box = document.getElementById("mail-trouble");
  const isAdmin = box.dataset.role === "admin";
  const trouble = await api("GET", "/api/messages/undelivered");
  document.getElementById("dev-mailbox-note").hidden = !trouble.dev_mailbox;
  box.hidden = !trouble.messages.length;
  if (!trouble.messages.length) return;
  const counts = [];
  if (trouble.failed) counts.push(`${trouble.failed} email${trouble.failed === 1 ? "" : "s"} could not be delivered`);
  if (trouble.retrying) counts.push(`${trouble.retrying} being retried`);
  document.getElementById("mail-trouble-summary").textContent = `${counts.join("; ")}. ` + (isAdmin
    ? "Retry a failed email once the mail server works, or give the patient their link another way."
    : "Give the patient their link another way (open the appointment's \"Link and emails\"), or ask an admin to retry.");
  document.getElementById("mail-trouble-list").replaceChildren(...trouble.messages.map((m) => {
    const item = el("li", { "data-message": m.id },
      el("strong", {}, m.patient_name), ` (visit ${when(m.appointment_start)}) · `, ...messageLine(m, when));
    if (isAdmin && m.status === "failed") {
      item.append(" ", el("button", {
        type: "button",
        onclick: async () => {
          try {
            await api("POST", `/api/messages/${m.id}/retry`);
            say(`The email to ${m.patient_name} is queued again.`);
            await loadMailTrouble({ say, fail, when });
          } catch (err) { fail(err); }
        },
      }, `Retry email to ${m.patient_name}`));
    }
    return item;
  }));
}

// The provider's guest panel on the visit page: create guest links, see who waits, let them in.
import { api } from "../shared/api.js";
import { el } from "../shared/dom.js";

const STATUS_TEXT = {
  invited: "link not opened yet",
  "checking in": "checking in",
  waiting: "waiting to be let in",
  admitted: "in the visit",
  removed: "removed",
};

function devices(guest) {
  const check = guest.device_check;
  return check && guest.status === "waiting" ? ` (camera ${check.camera}, mic ${check.microphone})` : "";
}

export function setupGuests({ visitId, socket }) {
  const form = document.getElementById("guest-form");
  if (!form) return;
  const labelInput = document.getElementById("guest-label");
  const error = document.getElementById("guest-error");
  const list = document.getElementById("guest-list");
  const links = new Map(); // guest id -> link, from the invitations made on this page

  async function call(event, data) {
    const ack = await socket().timeout(5000).emitWithAck(event, data);
    if (ack.error) throw new Error(ack.error.message);
    return ack;
  }

  function linkRow(guest) {
    const url = links.get(guest.id);
    if (!url || guest.status !== "invited") return null;
    const id = `guest-link-${guest.id}`;
    const input = el("input", { id, readonly: "", value: url, size: "40" });
    const copied = el("span", { role: "status", class: "muted" });
    const copy = el("button", { type: "button", onclick: async () => {
      input.select();
      try {
        await navigator.clipboard.writeText(url);
        copied.textContent = "Copied";
      } catch {
        copied.textContent = "Press Ctrl+C (Cmd+C) to copy the selected link";
      }
    } }, "Copy link");
    return el("div", { class: "inline-form" },
      el("label", { for: id, class: "visually-hidden" }, `Link for the ${guest.label}`), input, copy, copied);
  }

  function actions(guest) {
    const who = guest.name ? `${guest.name} (${guest.label})` : guest.label;
    const buttons = [];
    if (guest.status === "waiting") {
      buttons.push(el("button", { type: "button", class: "primary", onclick: async (event) => {
        event.target.disabled = true;
        error.textContent = "";
        try { await call("admit_guest", { guest_id: guest.id }); } catch (e) {
          error.textContent = e.message;
          event.target.disabled = false;
        }
      } }, `Let ${who} in`));
    }
    if (guest.status !== "removed") {
      buttons.push(el("button", { type: "button", onclick: async () => {
        error.textContent = "";
        try { await call("remove_guest", { guest_id: guest.id }); } catch (e) { error.textContent = e.message; }
      } }, `Remove ${who}`));
    }
    return buttons;
  }

  function render(guests) {
    list.replaceChildren(...guests.filter((g) => g.status !== "removed").map((guest) => {
      const who = guest.name ? `${guest.name} (${guest.label})` : guest.label;
      return el("li", { "data-guest": guest.id, "data-status": guest.status },
        el("strong", {}, who), ` — ${STATUS_TEXT[guest.status] || guest.status}${devices(guest)} `,
        ...actions(guest), linkRow(guest) || "");
    }));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const label = labelInput.value.trim();
    if (!label) { error.textContent = "Say who the guest is, e.g. Interpreter."; labelInput.focus(); return; }
    try {
      const guest = await api("POST", `/api/visits/${visitId}/guests`, { label });
      labelInput.value = "";
      await refresh();
      const input = document.getElementById(`guest-link-${guest.id}`);
      if (input) input.focus();
    } catch (e) {
      error.textContent = e.message;
    }
  });

  async function refresh() {
    const known = await api("GET", `/api/visits/${visitId}/guests`);
    for (const guest of known.guests) links.set(guest.id, guest.url);
    render(known.guests);
  }

  refresh().catch(() => {});
  return { render };
}

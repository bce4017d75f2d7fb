// Admin page: staff list (unlock, MFA reset), adding staff, the clinic's MFA rule, the audit trail.
import { api } from "./shared/api.js";
import { el } from "./shared/dom.js";
import { formatLocal } from "./shared/format.js";

// Staff names by id, so the audit trail names people instead of showing ids.
const staffNames = new Map();

function who(id) {
  return staffNames.get(id) || id;
}

async function loadUsers() {
  const status = document.getElementById("users-status");
  const table = document.getElementById("users-table");
  try {
    const users = await api("GET", "/api/users");
    for (const u of users) staffNames.set(u.id, u.full_name);
    const rows = users.map((u) => {
      const locked = u.locked_until && new Date(u.locked_until) > new Date();
      const actions = [];
      if (locked) {
        actions.push(el("button", { type: "button", onclick: () => unlock(u) }, `Unlock ${u.full_name}`));
      }
      if (u.mfa_enabled) {
        actions.push(el("button", {
          type: "button", onclick: () => resetMfa(u),
          "aria-label": `Reset two-step sign-in of ${u.full_name}`,
        }, "Reset two-step sign-in"));
      }
      return el("tr", {}, el("td", {}, u.full_name), el("td", {}, u.email), el("td", {}, u.role),
        el("td", {}, locked ? `Locked until ${formatLocal(u.locked_until)}` : "Active"),
        el("td", {}, u.mfa_enabled ? "On" : "Off"),
        el("td", {}, el("div", { class: "stack" }, ...actions)));
    });
    table.tBodies[0].replaceChildren(...rows);
    table.hidden = false;
    status.textContent = `${users.length} staff members`;
  } catch (err) {
    status.textContent = err.message;
    status.className = "error";
  }
}

async function unlock(user) {
  const status = document.getElementById("users-status");
  try {
    await api("POST", `/api/users/${user.id}/unlock`);
    status.textContent = `${user.full_name} is unlocked.`;
    await loadUsers();
  } catch (err) {
    status.textContent = err.message;
  }
}

async function resetMfa(user) {
  const status = document.getElementById("users-status");
  const ok = window.confirm(`Reset two-step sign-in of ${user.full_name}? They are signed out `
    + "everywhere and set it up again at their next sign-in. Do this only after you have spoken to them.");
  if (!ok) return;
  status.textContent = "Resetting…";
  try {
    await api("POST", `/api/users/${user.id}/mfa/reset`);
    await loadUsers();
    status.textContent = `Two-step sign-in of ${user.full_name} is reset.`;
  } catch (err) {
    status.textContent = err.message;
  }
}

async function loadPolicy() {
  const box = document.getElementById("require-mfa");
  const status = document.getElementById("require-mfa-status");
  try {
    const me = await api("GET", "/api/me");
    box.checked = me.clinic.require_mfa;
    box.disabled = false;
    status.textContent = box.checked ? "Everyone signs in with a code." : "Only admins must sign in with a code.";
  } catch (err) {
    status.textContent = err.message;
    status.className = "error";
  }
}

document.getElementById("require-mfa").addEventListener("change", async (event) => {
  const box = event.target;
  const status = document.getElementById("require-mfa-status");
  box.disabled = true;
  status.textContent = "Saving…";
  try {
    const clinic = await api("PUT", "/api/clinic/security", { require_mfa: box.checked });
    box.checked = clinic.require_mfa;
    status.textContent = clinic.require_mfa
      ? "Saved: everyone signs in with a code. Staff without it set it up at their next sign-in."
      : "Saved: only admins must sign in with a code.";
    await loadUsers();
  } catch (err) {
    box.checked = !box.checked;
    status.textContent = err.message;
  } finally {
    box.disabled = false;
  }
});

async function loadAudit() {
  const status = document.getElementById("audit-status");
  const table = document.getElementById("audit-table");
  try {
    const events = await api("GET", "/api/audit-events?limit=50");
    table.tBodies[0].replaceChildren(...events.map((e) => el("tr", {},
      el("td", {}, formatLocal(e.at)), el("td", {}, e.action), el("td", {}, e.outcome),
      el("td", {}, e.actor_role ? `${who(e.actor_id)} (${e.actor_role})` : "anonymous"),
      el("td", {}, e.object_type ? `${e.object_type} ${who(e.object_id ?? "")}` : ""),
      el("td", {}, e.client_addr ?? ""))));
    table.hidden = false;
    status.textContent = `Newest ${events.length} events`;
  } catch (err) {
    status.textContent = err.message;
    status.className = "error";
  }
}

document.getElementById("new-user").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const status = document.getElementById("new-user-status");
  const body = Object.fromEntries(new FormData(form).entries());
  status.textContent = "Saving…";
  try {
    const user = await api("POST", "/api/users", body);
    status.textContent = `Added ${user.full_name}.`;
    form.reset();
    await loadUsers();
  } catch (err) {
    const details = Object.entries(err.fields).map(([k, v]) => `${k}: ${v}`).join("; ");
    status.textContent = details ? `${err.message} (${details})` : err.message;
  }
});

loadPolicy();
loadUsers().then(loadAudit);

// The clinic's phone number, which patient pages show.
async function loadClinic() {
  const status = document.getElementById("clinic-status");
  try {
    const me = await api("GET", "/api/me");
    document.getElementById("clinic-phone").value = me.clinic.phone || "";
    status.textContent = me.clinic.phone
      ? `${me.clinic.name}: patients see ${me.clinic.phone}.`
      : `${me.clinic.name}: no phone number yet; patients see none.`;
  } catch (err) {
    status.textContent = err.message;
    status.className = "error";
  }
}

document.getElementById("clinic-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("clinic-phone");
  const error = document.getElementById("clinic-phone-error");
  const status = document.getElementById("clinic-status");
  error.textContent = "";
  input.removeAttribute("aria-invalid");
  const phone = input.value.trim();
  try {
    const clinic = await api("PATCH", "/api/clinic", { phone: phone || null });
    status.textContent = clinic.phone
      ? `Saved: patients see ${clinic.phone}.`
      : "Saved: patients see no phone number.";
    status.className = "notice";
  } catch (err) {
    error.textContent = err.fields && err.fields.phone
      ? "Please enter a phone number: digits, spaces and + ( ) - only, for example +1 555 0100."
      : err.message;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
});

loadClinic();

// The provider's warm connection: while their queue is open and the browser already lets this
// site use the camera and microphone, the visit (visit/app.js) runs here in the provider's own
// lobby, out of sight: camera and microphone open, the connection to the relay made, nothing
// sent or received. At the admit this page becomes the visit without loading another one (the
// URL becomes /visit/<id>, so a reload opens the visit page); "Back to my queue" loads the queue.
// Without the permission (or with warm waiting switched off) the admit opens the visit page.
import { startVisit } from "../visit/app.js";

let visit = null;

async function allowed(name) {
  try {
    return (await navigator.permissions.query({ name })).state === "granted";
  } catch {
    return false; // a browser that cannot say: ask on the visit page, as before
  }
}

export async function warmUp() {
  const root = document.getElementById("visit-app");
  if (visit || !root || !window.RTCPeerConnection || !navigator.permissions) return;
  // Never a permission prompt on the queue: only a camera the provider has allowed already.
  if (!(await allowed("camera")) || !(await allowed("microphone"))) return;
  visit = startVisit({
    root,
    waiting: true,
    lobby: "provider",
    onWarmUnavailable: () => {
      // Switched off, or another tab of this provider holds the warm connection now.
      if (visit) visit.stop();
      visit = null;
    },
  });
}

// Whether the admit can start the visit right here.
export function canEnter() {
  return visit !== null;
}

// The notes aside and the patient's record link come from the visit page itself, once the
// visit has started (they are the visit page's own, with their own audit).
async function visitPageParts(visitId, root) {
  try {
    const response = await fetch(`/visit/${visitId}`, {
      credentials: "same-origin", headers: { Accept: "text/html" },
    });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const patientLine = page.querySelector(".visit-patient");
    const here = document.getElementById("visit-patient");
    if (patientLine && here) {
      here.replaceChildren(...patientLine.childNodes);
      here.hidden = false;
    }
    const notes = page.getElementById("visit-notes");
    if (notes) {
      notes.querySelectorAll("script").forEach((script) => script.remove());
      root.after(document.adoptNode(notes));
      await import("../visit_notes.js");
    }
  } catch {
    // The visit goes on; the notes open from the visit page (a reload).
  }
}

export function enterVisit(visitId, patientName) {
  performance.mark("provider-enter");
  const root = document.getElementById("visit-app");
  root.dataset.patientName = patientName;
  root.dataset.otherName = patientName;
  document.getElementById("remote-caption").textContent = `Waiting for ${patientName} to join…`;
  document.getElementById("visit-status").textContent =
    `The visit with ${patientName} has started. Connecting…`;
  document.getElementById("queue-view").hidden = true;
  root.hidden = false;
  document.title = "Video visit · OpenConsult";
  // A reload opens the visit page itself; back returns to the queue (loaded afresh).
  history.pushState({ visit: visitId }, "", `/visit/${visitId}`);
  window.addEventListener("popstate", () => window.location.reload());
  window.scrollTo(0, 0);
  document.getElementById("visit-title").focus({ preventScroll: true });
  visit.enter(visitId);
  visitPageParts(visitId, root);
}

// The waiting patient's warm connection: while they wait, the visit (visit/app.js) is started
// in waiting mode on this page, hidden: camera and microphone open, the connection to the
// clinic's relay made, nothing sent or received. At the admit this page becomes the visit
// without loading another one, and picture and sound start at once.
import { startVisit } from "../visit/app.js";

let visit = null;
let unavailable = false;

export function warmUp() {
  const root = document.getElementById("visit-app");
  if (visit || unavailable || !root || !window.RTCPeerConnection) return;
  visit = startVisit({
    root,
    waiting: true,
    onWarmUnavailable: () => {
      // The clinic switched it off: the admit opens the visit page instead.
      unavailable = true;
      if (visit) visit.stop();
      visit = null;
    },
  });
}

// The wait is over without a visit (released): close the camera and the connection.
export function coolDown() {
  if (visit) visit.stop();
  visit = null;
}

// Whether the admit can start the visit right here.
export function canEnter() {
  return visit !== null;
}

export function enterVisit(visitId) {
  const root = document.getElementById("visit-app");
  document.getElementById("checkin-card").hidden = true;
  root.hidden = false;
  document.title = "Video visit · OpenConsult";
  // A reload now opens the visit page itself.
  history.replaceState(null, "", `/visit/${visitId}`);
  window.scrollTo(0, 0); // the picture from its top (on a phone it fills the screen)
  document.getElementById("visit-title").focus({ preventScroll: true });
  visit.enter(visitId);
}

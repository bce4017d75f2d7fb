// "Waited" keeps counting on an open page: minutes since the server's arrival time, on the
// server's clock (the browser's may be off), refreshed every 15 seconds between queue updates.

let offsetMs = null; // server clock minus browser clock, taken from the first snapshot

export function learnServerClock(generatedAtIso) {
  if (offsetMs === null) offsetMs = Date.parse(generatedAtIso) - Date.now();
}

export function minutesSince(iso) {
  const now = Date.now() + (offsetMs || 0);
  return Math.max(0, Math.floor((now - Date.parse(iso)) / 60000));
}

export function waitedText(since) {
  return since ? `${minutesSince(since)} min` : "—";
}

export function tickWaited(root) {
  for (const cell of root.querySelectorAll("[data-waiting-since]")) {
    const text = waitedText(cell.dataset.waitingSince);
    if (cell.textContent !== text) cell.textContent = text;
  }
}

export function startTicking(root, everyMs = 15000) {
  return setInterval(() => tickWaited(root), everyMs);
}

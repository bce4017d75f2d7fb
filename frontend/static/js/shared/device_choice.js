// What the patient chose in the device check (camera, microphone, speaker, and whether to join
// muted or with the camera off), kept for this tab so the visit starts the way they chose.
const KEY = "openconsult.device-choice";

export function loadChoice() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY)) || {};
  } catch {
    return {};
  }
}

export function saveChoice(changes) {
  const choice = { ...loadChoice(), ...changes };
  try { sessionStorage.setItem(KEY, JSON.stringify(choice)); } catch { /* private mode: defaults */ }
  return choice;
}

// getUserMedia constraints for the chosen devices. Chromium ignores an "ideal" deviceId, so the
// choice is exact, and openMedia() falls back to the defaults when that device is gone.
export function constraints(choice = loadChoice(), exact = true) {
  const pick = (id) => (exact && id ? { deviceId: { exact: id } } : {});
  return {
    audio: exact && choice.microphone ? pick(choice.microphone) : true,
    video: { width: 640, height: 480, ...pick(choice.camera) },
  };
}

export async function openMedia(choice = loadChoice()) {
  try {
    return await navigator.mediaDevices.getUserMedia(constraints(choice));
  } catch (error) {
    const chosen = choice.microphone || choice.camera;
    if (!chosen || !["OverconstrainedError", "NotFoundError"].includes(error.name)) throw error;
    return navigator.mediaDevices.getUserMedia(constraints(choice, false));
  }
}

export const canChooseSpeaker = typeof HTMLMediaElement !== "undefined"
  && "setSinkId" in HTMLMediaElement.prototype;

// Route an <audio> or <video> element's sound to the chosen speaker, where the browser can.
export async function useSpeaker(element, choice = loadChoice()) {
  if (!canChooseSpeaker || !choice.speaker) return;
  try { await element.setSinkId(choice.speaker); } catch { /* gone: the default speaker plays */ }
}

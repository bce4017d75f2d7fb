// Your side of the call: the camera and microphone, and the switches for them (mute, camera
// off, audio only). The camera's picture goes out through OutgoingVideo (media.js). The devices
// and switches chosen in the device check are where the visit starts; the others in the visit
// are told when the microphone or camera is off.
import { loadChoice, openMedia } from "../shared/device_choice.js";

export function setupControls({ outgoing, socket, say }) {
  const muteButton = document.getElementById("mute-button");
  const cameraButton = document.getElementById("camera-button");
  const audioOnlyButton = document.getElementById("audio-only-button");
  const remoteGrid = document.getElementById("remote-grid");
  const choice = loadChoice();
  let media = null;
  let micOn = !choice.micOff;
  let cameraOn = !choice.cameraOff;

  let opening = null; // one getUserMedia at a time, however many ask

  async function open() {
    let stream;
    try {
      stream = await openMedia(choice);
    } catch (error) {
      stream = new MediaStream();
      say("We could not use your camera or microphone, so others cannot see or hear you. "
        + "Check your browser's permissions and reload the page.");
    }
    media = stream;
    applyMediaSwitches();
    outgoing.setCamera(media);
    return media;
  }

  function localMedia() {
    if (media) return Promise.resolve(media);
    if (!opening) opening = open().finally(() => { opening = null; });
    return opening;
  }

  function applyMediaSwitches() {
    if (!media) return;
    media.getAudioTracks().forEach((t) => { t.enabled = micOn; });
    media.getVideoTracks().forEach((t) => { t.enabled = cameraOn; });
    muteButton.textContent = micOn ? "Mute microphone" : "Unmute microphone";
    muteButton.setAttribute("aria-pressed", String(!micOn));
    cameraButton.textContent = cameraOn ? "Turn camera off" : "Turn camera on";
    cameraButton.setAttribute("aria-pressed", String(!cameraOn));
  }

  // Tell the others whether they can hear and see us (their captions say "microphone off").
  async function report() {
    const connection = socket();
    if (!connection || !connection.connected) return;
    try {
      await connection.timeout(5000).emitWithAck("media_state", { microphone: micOn, camera: cameraOn });
    } catch { /* sent again on the next join */ }
  }

  async function setAudioOnly(on) {
    audioOnlyButton.setAttribute("aria-pressed", String(on));
    remoteGrid.classList.toggle("audio-only", on);
    await outgoing.setAudioOnly(on);
    say(on ? "Audio only: you are not sending or receiving video." : "Video is back on.");
    const connection = socket();
    if (connection && connection.connected) {
      try {
        await connection.timeout(5000).emitWithAck("audio_only", { on });
      } catch (error) {
        say("The clinic did not confirm audio only; it applies when you reconnect.");
      }
    }
  }

  muteButton.addEventListener("click", () => {
    micOn = !micOn;
    applyMediaSwitches();
    report();
  });

  cameraButton.addEventListener("click", () => {
    cameraOn = !cameraOn;
    applyMediaSwitches();
    report();
  });

  audioOnlyButton.addEventListener("click", () => setAudioOnly(!outgoing.audioOnly));

  // The visit is over: camera and microphone off for good.
  function stop() {
    if (media) media.getTracks().forEach((t) => t.stop());
  }

  // What this page uses, for tests (window.openconsultVisit.devices()).
  function devices() {
    const mic = media && media.getAudioTracks()[0];
    const camera = media && media.getVideoTracks()[0];
    return {
      microphone: mic ? mic.getSettings().deviceId : null,
      camera: camera ? camera.getSettings().deviceId : null,
      micOn, cameraOn,
    };
  }

  applyMediaSwitches();
  return { localMedia, stop, report, devices };
}

// Step 3 of a check-in: camera, microphone, speaker and the connection to the clinic, with help
// in plain words when something is blocked or missing; the result is recorded for the provider.
// The devices chosen here, and whether to join muted or with the camera off, carry into the visit
// (shared/device_choice.js).
import { el } from "../shared/dom.js";
import {
  canChooseSpeaker, loadChoice, openMedia, saveChoice, useSpeaker,
} from "../shared/device_choice.js";
import { audio, call, show, startAudio } from "./checkin.js";

let media = null;
let checking = null; // the running check, so a device change waits for it

const HELP = {
  denied: "Your browser blocked the camera or microphone. Chrome and Edge: click the camera icon in " +
    "the address bar and choose Allow. Firefox: click the camera icon left of the address and remove " +
    "the block. Safari: Safari > Settings for This Website > Camera and Microphone > Allow. Then press " +
    "Test again.",
  missing: "No camera or microphone was found. Plug one in (or close other apps that use it), then " +
    "press Test again. You can still wait; your provider may call you instead.",
  unsupported: "This browser cannot make video calls. Please use a current Chrome, Edge, Firefox or Safari.",
};

const cameraSelect = document.getElementById("camera-select");
const microphoneSelect = document.getElementById("microphone-select");
const speakerSelect = document.getElementById("speaker-select");
const micOff = document.getElementById("join-mic-off");
const cameraOff = document.getElementById("join-camera-off");
const speakerStatus = document.getElementById("speaker-test-status");

function classify(error) {
  if (!error) return "ok";
  if (error.name === "NotAllowedError" || error.name === "SecurityError") return "denied";
  if (error.name === "NotFoundError" || error.name === "OverconstrainedError") return "missing";
  return "error";
}

async function networkCheck() {
  const times = [];
  for (let i = 0; i < 5; i += 1) {
    const start = performance.now();
    await call("GET", "/ping");
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return Math.round(times[2]);
}

function meter(stream) {
  const level = document.getElementById("mic-level");
  const audioContext = audio();
  if (!audioContext || stream.getAudioTracks().length === 0) return;
  audioContext.resume();
  const analyser = audioContext.createAnalyser();
  analyser.fftSize = 512;
  audioContext.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const tick = () => {
    if (media !== stream) return;
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    level.value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
    requestAnimationFrame(tick);
  };
  tick();
}

// Fill one list with the devices of a kind; the one in use (or chosen before) is selected.
function fill(select, devices, kind, current, noun) {
  const found = devices.filter((d) => d.kind === kind);
  select.replaceChildren(...found.map((device, i) =>
    el("option", { value: device.deviceId }, device.label || `${noun} ${i + 1}`)));
  if (current && found.some((d) => d.deviceId === current)) select.value = current;
  select.closest(".device-choice").hidden = found.length === 0;
}

async function listDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const devices = await navigator.mediaDevices.enumerateDevices();
  const choice = loadChoice();
  const video = media && media.getVideoTracks()[0];
  const mic = media && media.getAudioTracks()[0];
  fill(cameraSelect, devices, "videoinput", video ? video.getSettings().deviceId : choice.camera, "Camera");
  fill(microphoneSelect, devices, "audioinput", mic ? mic.getSettings().deviceId : choice.microphone, "Microphone");
  if (canChooseSpeaker) fill(speakerSelect, devices, "audiooutput", choice.speaker || "default", "Speaker");
  else speakerSelect.closest(".device-choice").hidden = true;
  saveChoice({
    camera: cameraSelect.value || null,
    microphone: microphoneSelect.value || null,
    speaker: canChooseSpeaker ? speakerSelect.value || null : null,
  });
}

async function check() {
  const results = document.getElementById("device-results");
  const help = document.getElementById("device-help");
  const proceed = document.getElementById("devices-continue");
  results.replaceChildren(el("li", {}, "Testing…"));
  help.hidden = true;
  proceed.disabled = true;
  stopMedia();
  let camera = "unsupported";
  let microphone = "unsupported";
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    try {
      media = await openMedia();
      camera = media.getVideoTracks().length ? "ok" : "missing";
      microphone = media.getAudioTracks().length ? "ok" : "missing";
      document.getElementById("preview").srcObject = media;
      meter(media);
    } catch (error) {
      camera = microphone = classify(error);
    }
    // Device names are only readable once the browser allowed the camera and microphone.
    try { await listDevices(); } catch { /* the lists stay as they were */ }
  }
  let rtt = null;
  try { rtt = await networkCheck(); } catch { rtt = null; }
  const network = rtt === null ? "Connection to the clinic failed" :
    `Connection to the clinic: ${rtt < 300 ? "good" : "slow"} (${rtt} ms)`;
  results.replaceChildren(
    el("li", {}, `Camera: ${camera === "ok" ? "working" : camera}`),
    el("li", {}, `Microphone: ${microphone === "ok" ? "working" : microphone}`),
    el("li", {}, network),
  );
  const problem = [camera, microphone].find((s) => s !== "ok");
  if (problem) {
    help.textContent = HELP[problem] || HELP.missing;
    help.hidden = false;
  }
  await call("POST", "/device-check", {
    camera, microphone, network_rtt_ms: rtt, browser: navigator.userAgent.slice(0, 200),
  });
  proceed.disabled = false;
}

export function startDeviceCheck() {
  show("devices");
  const choice = loadChoice();
  micOff.checked = Boolean(choice.micOff);
  cameraOff.checked = Boolean(choice.cameraOff);
  checking = check().finally(() => { checking = null; });
  return checking;
}

async function changeDevice(changes) {
  saveChoice(changes);
  if (checking) await checking;
  await startDeviceCheck();
}

// A short tone (no sound file) on the chosen speaker: the patient hears whether it is the right one.
async function playTestSound() {
  startAudio(); // the click is the user gesture the browser asks for
  const audioContext = audio();
  await audioContext.resume();
  const destination = audioContext.createMediaStreamDestination();
  const tone = audioContext.createOscillator();
  const gain = audioContext.createGain();
  tone.frequency.value = 440;
  const now = audioContext.currentTime;
  gain.gain.setValueAtTime(0, now);
  gain.gain.linearRampToValueAtTime(0.3, now + 0.05);
  gain.gain.setValueAtTime(0.3, now + 1.2);
  gain.gain.linearRampToValueAtTime(0, now + 1.5);
  tone.connect(gain).connect(destination);
  const player = document.getElementById("speaker-test-audio");
  player.srcObject = destination.stream;
  await useSpeaker(player);
  player.dataset.sink = player.sinkId || "";
  speakerStatus.textContent = "Playing a test sound… Did you hear it? If not, turn up the volume "
    + "or choose another speaker.";
  tone.start(now);
  tone.stop(now + 1.5);
  try { await player.play(); } catch {
    speakerStatus.textContent = "The test sound could not play in this browser.";
  }
}

cameraSelect.addEventListener("change", () => changeDevice({ camera: cameraSelect.value }));
microphoneSelect.addEventListener("change", () => changeDevice({ microphone: microphoneSelect.value }));
speakerSelect.addEventListener("change", () => {
  saveChoice({ speaker: speakerSelect.value });
  speakerStatus.textContent = "";
});
micOff.addEventListener("change", () => saveChoice({ micOff: micOff.checked }));
cameraOff.addEventListener("change", () => saveChoice({ cameraOff: cameraOff.checked }));
document.getElementById("speaker-test").addEventListener("click", () => playTestSound());

export function stopMedia() {
  if (media) for (const track of media.getTracks()) track.stop();
  media = null;
}

document.getElementById("devices-retry").addEventListener("click", () => startDeviceCheck());

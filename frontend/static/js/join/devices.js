// Step 3 of a check-in: camera, microphone and the connection to the clinic, with help in plain
// words when something is blocked or missing; the result is recorded for the provider.
import { el } from "../shared/dom.js";
import { audio, call, show } from "./checkin.js";

let media = null;

const HELP = {
  denied: "Your browser blocked the camera or microphone. Chrome and Edge: click the camera icon in " +
    "the address bar and choose Allow. Firefox: click the camera icon left of the address and remove " +
    "the block. Safari: Safari > Settings for This Website > Camera and Microphone > Allow. Then press " +
    "Test again.",
  missing: "No camera or microphone was found. Plug one in (or close other apps that use it), then " +
    "press Test again. You can still wait; your provider may call you instead.",
  unsupported: "This browser cannot make video calls. Please use a current Chrome, Edge, Firefox or Safari.",
};

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
    if (!media) return;
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    level.value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
    requestAnimationFrame(tick);
  };
  tick();
}

export async function startDeviceCheck() {
  show("devices");
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
      media = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
      camera = media.getVideoTracks().length ? "ok" : "missing";
      microphone = media.getAudioTracks().length ? "ok" : "missing";
      document.getElementById("preview").srcObject = media;
      meter(media);
    } catch (error) {
      camera = microphone = classify(error);
    }
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

export function stopMedia() {
  if (media) for (const track of media.getTracks()) track.stop();
  media = null;
}

document.getElementById("devices-retry").addEventListener("click", () => startDeviceCheck());

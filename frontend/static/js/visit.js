// The video visit: one peer connection to the clinic's media relay, signalled over Socket.IO.
// aiortc has no ICE restart, so every recovery (reload, dropped socket, failed peer) is a new
// RTCPeerConnection and a new offer; the relay replaces the participant's old connection.
import { io } from "/static/vendor/socket.io-4.8.1.esm.min.js";
import { QualityMeter } from "./visit/quality.js";
import { setupGuests } from "./visit/guests.js";
import { OutgoingVideo } from "./visit/media.js";
import { RemoteStage } from "./visit/stage.js";

const SLOTS = 3; // per kind: the one we send on, plus slots: up to 3 others (4 people a visit)
const OFFER_TIMEOUT_MS = 15000;
const GATHER_TIMEOUT_MS = 3000;
const DISCONNECTED_GRACE_MS = 1500; // "disconnected" already means seconds without ICE consent

const root = document.getElementById("visit-app");
const visitId = root.dataset.visitId;
const role = root.dataset.role;
const otherName = root.dataset.otherName;
const namesByRole = { provider: root.dataset.providerName, patient: root.dataset.patientName };
const heading = document.getElementById("visit-title");
const statusLine = document.getElementById("visit-status");
const remoteGrid = document.getElementById("remote-grid");
const selfVideo = document.getElementById("self-video");
const muteButton = document.getElementById("mute-button");
const cameraButton = document.getElementById("camera-button");
const audioOnlyButton = document.getElementById("audio-only-button");
const leaveButton = document.getElementById("leave-button");
const rejoinButton = document.getElementById("rejoin-button");
const endButton = document.getElementById("end-button");
const chatLog = document.getElementById("chat-log");
const chatForm = document.getElementById("chat-form");
const chatInput = document.getElementById("chat-input");
const chatError = document.getElementById("chat-error");

const state = {
  socket: null,
  pc: null,
  media: null,
  layout: {}, // mid -> remote participant id
  people: {}, // participant id -> { name, role, audio_only }
  streams: new Map(), // mid -> MediaStream of what that transceiver receives
  kinds: new Map(), // mid -> "audio" | "video"
  generation: 0, // bumps whenever the current peer connection is abandoned
  micOn: true,
  cameraOn: true,
  left: false,
  ended: false,
};

function say(text) {
  statusLine.textContent = text;
}

function nameOf(participant) {
  const known = state.people[participant];
  if (known) return known.name;
  return namesByRole[participant.split(":")[0]] || "a guest";
}

function listed(names) {
  return names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}

function othersThere() {
  return [...new Set(Object.values(state.layout))];
}

function describeConnection() {
  if (state.ended || state.left || !state.pc) return;
  const pcState = state.pc.connectionState;
  if (pcState === "connected") {
    const others = othersThere().map(nameOf);
    say(others.length
      ? `Connected. You can see and hear ${listed(others)}.`
      : `Connected. Waiting for ${otherName} to join…`);
  } else if (pcState === "new" || pcState === "connecting") {
    say("Connecting the video…");
  }
}

// ---- local camera and microphone -------------------------------------------------------

async function localMedia() {
  if (state.media) return state.media;
  try {
    state.media = await navigator.mediaDevices.getUserMedia({
      audio: true, video: { width: 640, height: 480 },
    });
  } catch (error) {
    state.media = new MediaStream();
    say("We could not use your camera or microphone, so others cannot see or hear you. "
      + "Check your browser's permissions and reload the page.");
  }
  applyMediaSwitches();
  outgoing.setCamera(state.media);
  return state.media;
}

function applyMediaSwitches() {
  if (!state.media) return;
  state.media.getAudioTracks().forEach((t) => { t.enabled = state.micOn; });
  state.media.getVideoTracks().forEach((t) => { t.enabled = state.cameraOn; });
  muteButton.textContent = state.micOn ? "Mute microphone" : "Unmute microphone";
  muteButton.setAttribute("aria-pressed", String(!state.micOn));
  cameraButton.textContent = state.cameraOn ? "Turn camera off" : "Turn camera on";
  cameraButton.setAttribute("aria-pressed", String(!state.cameraOn));
}

// ---- the peer connection to the relay -------------------------------------------------

async function iceServers() {
  const response = await fetch(`/api/visits/${visitId}/ice-servers`, {
    credentials: "same-origin", headers: { Accept: "application/json" },
  });
  if (!response.ok) throw new Error(`ICE servers refused (${response.status})`);
  return (await response.json()).ice_servers;
}

function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
    setTimeout(resolve, GATHER_TIMEOUT_MS);
  });
}

function closePeer() {
  if (state.pc) {
    state.pc.onconnectionstatechange = null;
    state.pc.ontrack = null;
    state.pc.close();
    state.pc = null;
  }
  outgoing.sender = null;
  state.streams.clear();
  state.kinds.clear();
  state.layout = {};
  render();
}

function canConnect() {
  return !state.left && !state.ended && state.socket && state.socket.connected;
}

function retry(generation, delay) {
  setTimeout(() => {
    if (generation === state.generation && canConnect()) startPeer();
  }, delay);
}

async function startPeer() {
  const generation = ++state.generation;
  closePeer();
  say("Connecting the video…");
  try {
    const media = await localMedia();
    const servers = await iceServers();
    if (generation !== state.generation) return;
    const pc = new RTCPeerConnection({ iceServers: servers, bundlePolicy: "max-bundle" });
    state.pc = pc;
    pc.addTransceiver(media.getAudioTracks()[0] || "audio", { direction: "sendrecv" });
    outgoing.sender = pc.addTransceiver(outgoing.track() || "video", { direction: "sendrecv" }).sender;
    for (let i = 1; i < SLOTS; i++) {
      pc.addTransceiver("audio", { direction: "recvonly" });
      pc.addTransceiver("video", { direction: "recvonly" });
    }
    pc.ontrack = (event) => {
      const mid = event.transceiver.mid;
      state.streams.set(mid, new MediaStream([event.track]));
      state.kinds.set(mid, event.track.kind);
      render();
    };
    pc.onconnectionstatechange = () => onPeerState(pc, generation);
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    if (generation !== state.generation) return;
    const answer = await state.socket.timeout(OFFER_TIMEOUT_MS)
      .emitWithAck("offer", { sdp: pc.localDescription.sdp });
    if (answer.error) {
      if (answer.error.code === "visit_ended") return showEnded();
      throw new Error(answer.error.message);
    }
    if (generation !== state.generation) return;
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    applyLayout(answer.layout);
  } catch (error) {
    if (generation !== state.generation || state.ended) return;
    say("The video could not connect; trying again…");
    retry(generation, 2000);
  }
}

function onPeerState(pc, generation) {
  if (generation !== state.generation) return;
  const pcState = pc.connectionState;
  if (pcState === "failed") {
    say("The video connection dropped; reconnecting…");
    retry(generation, 500);
  } else if (pcState === "disconnected") {
    say("The video connection is unstable; reconnecting…");
    setTimeout(() => {
      if (pc.connectionState !== "connected") retry(generation, 0);
    }, DISCONNECTED_GRACE_MS);
  } else {
    describeConnection();
  }
}

function applyLayout(layout) {
  state.layout = layout || {};
  render();
  describeConnection();
}

function caption(participant) {
  const name = nameOf(participant);
  const known = state.people[participant];
  return known && known.audio_only ? `${name} (audio only)` : name;
}

function render() {
  stage.render(state, caption);
}

// What this page sends and receives, per remote participant: used by the checks in tests.
async function remoteStats() {
  const remotes = {};
  for (const tile of stage.tiles()) {
    remotes[tile.dataset.participant] = {
      name: nameOf(tile.dataset.participant),
      videoWidth: tile.querySelector("video").videoWidth,
      videoHeight: tile.querySelector("video").videoHeight,
      framesDecoded: 0,
      audioBytes: 0,
    };
  }
  const widths = Object.values(remotes).map((r) => r.videoWidth);
  const out = {
    connection: state.pc ? state.pc.connectionState : "none",
    videoWidth: widths.length ? Math.min(...widths) : 0,
    framesDecoded: 0,
    audioBytes: 0,
    videoBytesSent: 0,
    remotes,
    quality: quality.latest,
  };
  if (!state.pc) return out;
  (await state.pc.getStats()).forEach((s) => {
    if (s.type === "outbound-rtp" && s.kind === "video") out.videoBytesSent += s.bytesSent || 0;
    if (s.type !== "inbound-rtp" || !(s.mid in state.layout)) return;
    const remote = remotes[state.layout[s.mid]] || { framesDecoded: 0, audioBytes: 0 };
    if (s.kind === "video") {
      out.framesDecoded += s.framesDecoded || 0;
      remote.framesDecoded += s.framesDecoded || 0;
    }
    if (s.kind === "audio") {
      out.audioBytes += s.bytesReceived || 0;
      remote.audioBytes += s.bytesReceived || 0;
    }
  });
  return out;
}

const stage = new RemoteStage({
  grid: remoteGrid,
  waiting: document.getElementById("remote-caption"),
  audio: document.getElementById("remote-audio"),
});
const outgoing = new OutgoingVideo({
  selfVideo, shareButton: document.getElementById("share-button"), say,
});
const quality = new QualityMeter({
  peer: () => state.pc,
  level: document.getElementById("quality-level"),
  detail: document.getElementById("quality-detail"),
  warning: document.getElementById("quality-warning"),
});
window.openconsultVisit = { remoteStats };

// ---- signalling ---------------------------------------------------------------------------

function connect() {
  const socket = io("/visit", {
    transports: ["websocket"], withCredentials: true, auth: { visit_id: visitId },
    reconnectionDelayMax: 3000,
  });
  state.socket = socket;
  socket.on("connect", () => startPeer());
  socket.on("disconnect", (reason) => {
    state.generation++;
    closePeer();
    if (state.left || state.ended) return;
    say("Connection to the clinic lost; reconnecting…");
    if (reason === "io server disconnect") setTimeout(() => canReconnect() && socket.connect(), 1000);
  });
  socket.on("connect_error", (error) => {
    const data = error && error.data;
    if (data && data.code === "visit_ended") return showEnded();
    if (data && data.code) {
      say(data.message || "You cannot join this visit.");
      return;
    }
    say("Cannot reach the clinic; retrying…");
  });
  socket.on("joined", (data) => {
    chatLog.replaceChildren();
    data.messages.forEach(addChat);
  });
  socket.on("layout", applyLayout);
  socket.on("people", (people) => {
    state.people = people || {};
    render();
    describeConnection();
  });
  socket.on("guests", (data) => { if (guestPanel) guestPanel.render(data.guests); });
  socket.on("removed", () => {
    leave("The provider has ended your part in this visit.");
    rejoinButton.hidden = true;
  });
  socket.on("chat", addChat);
  socket.on("ended", showEnded);
  socket.on("replaced", () => {
    leave("You joined this visit from another window or tab, so this one is paused.");
  });
}

function canReconnect() {
  return !state.left && !state.ended && state.socket && !state.socket.connected;
}

// ---- chat -----------------------------------------------------------------------------------

function addChat(message) {
  const item = document.createElement("li");
  const who = document.createElement("strong");
  who.textContent = message.from;
  const when = document.createElement("span");
  when.className = "muted";
  when.textContent = ` ${new Date(message.sent_at).toLocaleTimeString(undefined, { timeStyle: "short" })}: `;
  item.append(who, when, document.createTextNode(message.text));
  chatLog.append(item);
  chatLog.scrollTop = chatLog.scrollHeight;
}

chatForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  chatError.textContent = "";
  const text = chatInput.value.trim();
  if (!text || !state.socket || !state.socket.connected) {
    if (text) chatError.textContent = "Not connected; your message was not sent.";
    return;
  }
  try {
    const ack = await state.socket.timeout(5000).emitWithAck("chat", { text });
    if (ack.error) {
      chatError.textContent = ack.error.message;
      return;
    }
    chatInput.value = "";
  } catch (error) {
    chatError.textContent = "Your message was not sent; please try again.";
  }
});

// ---- controls -------------------------------------------------------------------------------

muteButton.addEventListener("click", () => {
  state.micOn = !state.micOn;
  applyMediaSwitches();
});

cameraButton.addEventListener("click", () => {
  state.cameraOn = !state.cameraOn;
  applyMediaSwitches();
});

function leave(message) {
  state.left = true;
  state.generation++;
  closePeer();
  if (state.socket) state.socket.disconnect();
  say(message);
  leaveButton.hidden = true;
  rejoinButton.hidden = false;
  rejoinButton.focus();
}

async function setAudioOnly(on) {
  audioOnlyButton.setAttribute("aria-pressed", String(on));
  remoteGrid.classList.toggle("audio-only", on);
  await outgoing.setAudioOnly(on);
  say(on ? "Audio only: you are not sending or receiving video." : "Video is back on.");
  if (state.socket && state.socket.connected) {
    try {
      await state.socket.timeout(5000).emitWithAck("audio_only", { on });
    } catch (error) {
      say("The clinic did not confirm audio only; it applies when you reconnect.");
    }
  }
}

audioOnlyButton.addEventListener("click", () => setAudioOnly(!outgoing.audioOnly));

leaveButton.addEventListener("click", () => {
  leave("You left the visit. You can rejoin while it is still open.");
});

rejoinButton.addEventListener("click", () => {
  state.left = false;
  rejoinButton.hidden = true;
  leaveButton.hidden = false;
  leaveButton.focus();
  say("Rejoining the visit…");
  state.socket.connect();
});

if (endButton) {
  endButton.addEventListener("click", async () => {
    if (!window.confirm("End the visit for everyone? Nobody can rejoin afterwards.")) return;
    try {
      const ack = await state.socket.timeout(10000).emitWithAck("end", {});
      if (ack.error && ack.error.code !== "visit_ended") {
        say(`The visit could not be ended: ${ack.error.message}`);
        return;
      }
      showEnded();
    } catch (error) {
      // The "ended" broadcast may arrive (and close the socket) before the acknowledgement.
      if (!state.ended) say("The visit could not be ended; please try again.");
    }
  });
}

function showEnded() {
  if (state.ended) return;
  state.ended = true;
  state.generation++;
  closePeer();
  if (state.media) state.media.getTracks().forEach((t) => t.stop());
  outgoing.stop();
  quality.stop();
  if (state.socket) state.socket.disconnect();
  heading.textContent = "Visit ended";
  say(role === "provider"
    ? "The visit has ended for everyone."
    : "The visit has ended. Thank you; you can close this page.");
  const summaryLink = document.getElementById("summary-link");
  if (summaryLink) summaryLink.hidden = false;
  root.querySelectorAll(".visit-controls button, #chat-form input, #chat-form button")
    .forEach((control) => { control.disabled = true; });
  document.querySelector(".visit-stage").hidden = true;
}

const guestPanel = role === "provider"
  ? setupGuests({ visitId, socket: () => state.socket })
  : null;
connect();
quality.start();

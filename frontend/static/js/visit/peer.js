// The peer connection to the clinic's media relay, signalled over the visit socket. aiortc has
// no ICE restart, so every recovery (reload, dropped socket, failed peer) is a new
// RTCPeerConnection and a new offer; the relay replaces the participant's old connection.

const SLOTS = 3; // per kind: the one we send on, plus slots: up to 3 others (4 people a visit)
const OFFER_TIMEOUT_MS = 15000;
const GATHER_TIMEOUT_MS = 3000;
const DISCONNECTED_GRACE_MS = 1500; // "disconnected" already means seconds without ICE consent

// A waiting page has no visit yet: its socket hands out the ICE servers instead.
async function iceServers(state) {
  if (state.iceServers) {
    // The page brought them: used once, a reconnect asks again (TURN credentials expire).
    const servers = state.iceServers;
    state.iceServers = null;
    return servers;
  }
  if (state.waiting) {
    const answer = await state.socket.timeout(OFFER_TIMEOUT_MS).emitWithAck("ice_servers", {});
    if (answer.error) throw new Error(answer.error.message);
    return answer.ice_servers;
  }
  const response = await fetch(`/api/visits/${state.visitId}/ice-servers`, {
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

// `state` is the page's: the socket, the peer connection (pc) and what it receives (layout,
// streams, kinds), the generation that bumps whenever the current peer connection is
// abandoned, and whether this person left or the visit ended.
//
// startPeer({ hold: true }) makes a waiting page's warm connection: the senders carry no track
// (nothing goes out) until release() hands them the microphone and camera at the admit.
export function setupPeer({
  state, outgoing, localMedia, say, render, describeConnection, onEnded,
}) {
  let audioSender = null;
  let held = null; // the microphone track kept back while the connection is held
  function closePeer() {
    if (state.pc) {
      state.pc.onconnectionstatechange = null;
      state.pc.ontrack = null;
      state.pc.close();
      state.pc = null;
    }
    outgoing.sender = null;
    audioSender = null;
    held = null;
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

  async function startPeer({ hold = false } = {}) {
    const generation = ++state.generation;
    closePeer();
    if (!hold) say("Connecting the video…");
    try {
      const media = await localMedia();
      const servers = await iceServers(state);
      if (generation !== state.generation) return;
      const pc = new RTCPeerConnection({ iceServers: servers, bundlePolicy: "max-bundle" });
      state.pc = pc;
      const microphone = media.getAudioTracks()[0] || null;
      // Admitted meanwhile (the page entered the visit): send at once.
      const holding = hold && state.waiting;
      audioSender = pc.addTransceiver((!holding && microphone) || "audio", { direction: "sendrecv" }).sender;
      outgoing.sender = pc.addTransceiver((!holding && outgoing.track()) || "video", { direction: "sendrecv" }).sender;
      held = holding ? { microphone } : null;
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
        if (answer.error.code === "visit_ended") return onEnded();
        throw new Error(answer.error.message);
      }
      if (generation !== state.generation) return;
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
      if (!holding) applyLayout(answer.layout);
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

  // The admit: the held connection sends the microphone and camera from now on.
  function release() {
    if (!held) return;
    const { microphone } = held;
    held = null;
    if (audioSender) audioSender.replaceTrack(microphone);
    outgoing.apply();
  }

  return { startPeer, closePeer, applyLayout, release };
}

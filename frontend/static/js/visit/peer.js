// The peer connection to the clinic's media relay, signalled over the visit socket. aiortc has
// no ICE restart, so every recovery (reload, dropped socket, failed peer) is a new
// RTCPeerConnection and a new offer; the relay replaces the participant's old connection.

const SLOTS = 3; // per kind: the one we send on, plus slots: up to 3 others (4 people a visit)
const OFFER_TIMEOUT_MS = 15000;
const GATHER_TIMEOUT_MS = 3000;
const DISCONNECTED_GRACE_MS = 1500; // "disconnected" already means seconds without ICE consent

async function iceServers(visitId) {
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

// `state` is the page's: the socket, the peer connection (pc) and what it receives (layout,
// streams, kinds), the generation that bumps whenever the current peer connection is
// abandoned, and whether this person left or the visit ended.
export function setupPeer({
  visitId, state, outgoing, localMedia, say, render, describeConnection, onEnded,
}) {
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
      const servers = await iceServers(visitId);
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
        if (answer.error.code === "visit_ended") return onEnded();
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

  return { startPeer, closePeer, applyLayout };
}

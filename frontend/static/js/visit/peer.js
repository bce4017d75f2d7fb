// The peer connection to the clinic's media relay, signalled over the visit socket. aiortc has
// no ICE restart, so every recovery (reload, dropped socket, failed peer) is a new
// RTCPeerConnection and a new offer; the relay replaces the participant's old connection.

const SLOTS = 3; // per kind: the one we send on, plus slots: up to 3 others (4 people a visit)
const OFFER_TIMEOUT_MS = 15000;
const GATHER_TIMEOUT_MS = 3000;
const FIRST_CANDIDATES_MS = 20; // after the first candidate, for its siblings
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
    state.iceTransportPolicy = answer.ice_transport_policy || "all";
    return answer.ice_servers;
  }
  const response = await fetch(`/api/visits/${state.visitId}/ice-servers`, {
    credentials: "same-origin", headers: { Accept: "application/json" },
  });
  if (!response.ok) throw new Error(`ICE servers refused (${response.status})`);
  const answer = await response.json();
  state.iceTransportPolicy = answer.ice_transport_policy || "all";
  return answer.ice_servers;
}

function connected(socket) {
  return new Promise((resolve) => {
    if (socket.connected) return resolve();
    socket.once("connect", resolve);
  });
}

// The offer goes with the first candidates, not after the whole gathering (100-200 ms): the
// browser checks from every candidate it finds anyway, and the relay (aioice) answers checks
// from addresses it was not told about (peer-reflexive), so later candidates are not needed.
function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
    pc.addEventListener("icecandidate", (event) => {
      if (event.candidate) setTimeout(resolve, FIRST_CANDIDATES_MS);
    });
    setTimeout(resolve, GATHER_TIMEOUT_MS);
  });
}

// `state` is the page's: the socket, the peer connection (pc) and what it receives (layout,
// streams, kinds), the generation that bumps whenever the current peer connection is
// abandoned, and whether this person left or the visit ended.
//
// The connection is negotiated while the camera and microphone open: the senders start without
// a track and get them when they are ready. startPeer({ hold: true }) makes a waiting page's
// warm connection: its senders stay without a track (nothing goes out) until release(), at the
// admit.
export function setupPeer({
  state, outgoing, localMedia, say, render, describeConnection, onEnded,
}) {
  let audioSender = null;
  let holding = false; // a waiting page's connection: nothing is sent yet
  let offering = null; // the generation whose offer is not sent yet (it waits for the socket)
  let layoutsSeen = 0; // "layout" messages received on the visit socket so far
  function closePeer() {
    if (state.pc) {
      state.pc.onconnectionstatechange = null;
      state.pc.ontrack = null;
      state.pc.close();
      state.pc = null;
    }
    outgoing.sender = null;
    audioSender = null;
    holding = false;
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
    offering = generation;
    closePeer();
    if (!hold) say("Connecting the video…");
    try {
      const servers = await iceServers(state);
      if (generation !== state.generation) return;
      const pc = new RTCPeerConnection({
        iceServers: servers,
        iceTransportPolicy: state.iceTransportPolicy || "all",
        bundlePolicy: "max-bundle",
      });
      state.pc = pc;
      // Admitted meanwhile (the page entered the visit): send at once.
      holding = hold && state.waiting;
      audioSender = pc.addTransceiver("audio", { direction: "sendrecv" }).sender;
      outgoing.sender = pc.addTransceiver("video", { direction: "sendrecv" }).sender;
      sendMedia(generation);
      for (let i = 1; i < SLOTS; i++) {
        pc.addTransceiver("audio", { direction: "recvonly" });
        pc.addTransceiver("video", { direction: "recvonly" });
      }
      pc.ontrack = (event) => {
        performance.mark(`track-${event.track.kind}`);
        const mid = event.transceiver.mid;
        state.streams.set(mid, new MediaStream([event.track]));
        state.kinds.set(mid, event.track.kind);
        render();
      };
      pc.onconnectionstatechange = () => onPeerState(pc, generation);
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      if (generation !== state.generation) return;
      // The page negotiates while its socket connects; the offer goes once it has.
      await connected(state.socket);
      offering = null;
      if (generation !== state.generation) return;
      const answer = await state.socket.timeout(OFFER_TIMEOUT_MS)
        .emitWithAck("offer", { sdp: pc.localDescription.sdp });
      if (answer.error) {
        if (answer.error.code === "visit_ended") return onEnded();
        throw new Error(answer.error.message);
      }
      if (generation !== state.generation) return;
      // A "layout" that arrives while the answer is applied is newer than the answer's own
      // (someone joined meanwhile): the answer's must not undo it.
      const layoutsBefore = layoutsSeen;
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
      if (generation !== state.generation) return;
      if (!hold && layoutsSeen === layoutsBefore) applyLayout(answer.layout);
      else if (!hold) describeConnection();
    } catch (error) {
      if (offering === generation) offering = null;
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
    if (layout && Object.keys(layout).length && !performance.getEntriesByName("first-layout").length) {
      performance.mark("first-layout");
    }
    state.layout = layout || {};
    render();
    describeConnection();
  }

  // The camera and microphone onto the senders, once open (unless the connection is held).
  async function sendMedia(generation) {
    const media = await localMedia();
    if (generation !== state.generation || holding || !audioSender) return;
    await audioSender.replaceTrack(media.getAudioTracks()[0] || null);
    await outgoing.apply();
    performance.mark("media-sending");
  }

  // The admit: the held connection sends the microphone and camera from now on.
  function release() {
    if (!holding) return;
    holding = false;
    sendMedia(state.generation);
  }

  // The socket (re)connected: offer, unless an offer already waits for exactly that.
  function onSocketConnected(options) {
    if (offering !== null && offering === state.generation) return;
    startPeer(options);
  }

  // A "layout" message from the relay (someone joined or left).
  function layoutChanged(layout) {
    layoutsSeen++;
    applyLayout(layout);
  }

  return { startPeer, closePeer, applyLayout, layoutChanged, release, onSocketConnected };
}

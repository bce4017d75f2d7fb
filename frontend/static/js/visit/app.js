// The video visit: one peer connection to the clinic's media relay (peer.js), signalled over
// the /visit socket. This module keeps the visit's state and status line, the socket, and
// leaving, rejoining and ending; the other parts are beside it in visit/.
//
// The visit page starts it at once (visit.js). A waiting patient's page starts it in waiting
// mode (`waiting`): the socket connects as "waiting", the peer connection to the relay is made
// and held with nothing sent or routed, and enter(visitId) at the admit moves that connection
// into the visit, so picture and sound start without a new negotiation. A provider's queue page
// does the same in the provider's own lobby (`lobby: "provider"`), and becomes the visit at
// their admit click (queue/warm_visit.js).
import { io } from "/static/vendor/socket.io-4.8.1.esm.min.js";
import { csrfToken } from "../shared/api.js";
import { setupChat } from "./chat.js";
import { setupControls } from "./controls.js";
import { setupGuests } from "./guests.js";
import { OutgoingVideo } from "./media.js";
import { setupPeer } from "./peer.js";
import { QualityMeter } from "./quality.js";
import { RemoteStage } from "./stage.js";
import { remoteStats } from "./stats.js";

export function startVisit({
  root, waiting = false, lobby = "waiting", onWarmUnavailable = () => {},
}) {
  let visitId = root.dataset.visitId || null;
  const role = root.dataset.role;
  // Read when needed: a queue page learns the patient's name at the admit.
  const otherName = () => root.dataset.otherName;
  const namesByRole = () => ({
    provider: root.dataset.providerName, patient: root.dataset.patientName,
  });
  const heading = document.getElementById("visit-title");
  const statusLine = document.getElementById("visit-status");
  const leaveButton = document.getElementById("leave-button");
  const rejoinButton = document.getElementById("rejoin-button");
  const endButton = document.getElementById("end-button");
  const remoteGrid = document.getElementById("remote-grid");
  const selfVideo = document.getElementById("self-video");

  const state = {
    visitId,
    iceServers: root.dataset.iceServers ? JSON.parse(root.dataset.iceServers) : null,
    // "relay": every candidate through TURN (OPENCONSULT_RTC_RELAY_ONLY); answers update it.
    iceTransportPolicy: root.dataset.iceTransportPolicy || "all",
    waiting, // true until this waiting page enters the visit
    socket: null,
    pc: null,
    layout: {}, // mid -> remote participant id
    people: {}, // participant id -> { name, role, audio_only }
    streams: new Map(), // mid -> MediaStream of what that transceiver receives
    kinds: new Map(), // mid -> "audio" | "video"
    generation: 0, // bumps whenever the current peer connection is abandoned
    left: false,
    ended: false,
  };

  function say(text) {
    statusLine.textContent = text;
  }

  function nameOf(participant) {
    const known = state.people[participant];
    if (known) return known.name;
    return namesByRole()[participant.split(":")[0]] || "a guest";
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
        : `Connected. Waiting for ${otherName()} to join…`);
    } else if (pcState === "new" || pcState === "connecting") {
      say("Connecting the video…");
    }
  }

  function caption(participant) {
    const name = nameOf(participant);
    const known = state.people[participant];
    if (!known) return name;
    const off = [];
    if (known.audio_only) off.push("audio only");
    if (known.microphone === false) off.push("microphone off");
    if (known.camera === false) off.push("camera off");
    return off.length ? `${name} (${off.join(", ")})` : name;
  }

  function render() {
    stage.render(state, caption);
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
    staff: role === "provider",
  });
  const controls = setupControls({ outgoing, socket: () => state.socket, say });
  const peer = setupPeer({
    state, outgoing, localMedia: controls.localMedia, say, render, describeConnection,
    onEnded: showEnded,
  });
  const chat = setupChat({ socket: () => state.socket });
  window.openconsultVisit = {
    remoteStats: () => remoteStats({ state, stage, nameOf, quality }),
    devices: () => ({
      ...controls.devices(),
      speakers: [...document.querySelectorAll("#remote-audio audio")].map((a) => a.sinkId),
    }),
  };

  // ---- signalling ---------------------------------------------------------------------------

  const warmAuth = lobby === "provider" ? { provider_lobby: true } : { waiting: true };

  // With many app nodes, a visit's media run on one of them, its owner: the visit's socket goes
  // to that node's own path, which the proxy routes there (deploy/nginx.conf). The page brings
  // the path; after a drop it asks placement again (the server re-places a visit whose node is
  // gone), and a node that does not run the visit answers `wrong_node` with the right path.
  // A warm connection waits on any node until the admit. With one process nothing changes:
  // the path names that process.
  let socketPath = root.dataset.socketPath || null;
  let reconnectTimer = null;
  let tries = 0; // reconnect attempts since the socket was last connected
  const BACKOFF_MS = [0, 300, 600, 1200, 2000, 3000];

  function connect() {
    const options = {
      transports: ["websocket"], withCredentials: true, forceNew: true, reconnection: false,
      auth: state.waiting ? warmAuth : { visit_id: state.visitId },
    };
    if (socketPath && !state.waiting) options.path = `${socketPath}/`;
    const socket = io("/visit", options);
    state.socket = socket;
    state.socketPath = options.path || "/socket.io/";
    socket.on("connect", () => {
      tries = 0;
      peer.onSocketConnected({ hold: state.waiting });
    });
    socket.on("disconnect", (reason) => {
      state.generation++;
      peer.closePeer();
      if (state.left || state.ended || reason === "io client disconnect") return;
      say("Reconnecting… the connection to the clinic was lost.");
      reconnect();
    });
    socket.on("connect_error", (error) => {
      const data = error && error.data;
      if (state.waiting) {
        // No warm connection (switched off, or the check-in is not finished): the waiting page
        // goes on without one and opens the visit page at the admit.
        if (data && data.code) {
          socket.disconnect();
          onWarmUnavailable(data.code);
          return;
        }
        reconnect();
        return;
      }
      if (data && data.code === "visit_ended") return showEnded();
      if (data && data.code === "wrong_node") {
        socketPath = data.socket_path;
        reconnect({ ask: false });
        return;
      }
      if (data && data.code === "try_again") {
        say(`Reconnecting… ${data.message}`);
        reconnect();
        return;
      }
      if (data && data.code) {
        say(data.message || "You cannot join this visit.");
        return;
      }
      say("Reconnecting… the clinic cannot be reached yet.");
      reconnect();
    });
    socket.on("joined", (data) => {
      chat.show(data.messages);
      controls.report();
    });
    socket.on("layout", peer.layoutChanged);
    socket.on("people", (people) => {
      state.people = people || {};
      render();
      describeConnection();
    });
    socket.on("guests", (data) => { if (guestPanel) guestPanel.render(data.guests); });
    // The patient added a photo or document: the provider's file list beside the note reloads.
    socket.on("attachments", (data) => document.dispatchEvent(new CustomEvent("visit:attachments", { detail: data })));
    socket.on("removed", () => {
      leave("The provider has ended your part in this visit.");
      rejoinButton.hidden = true;
    });
    socket.on("chat", chat.add);
    socket.on("ended", showEnded);
    socket.on("replaced", () => {
      if (state.waiting) {
        // Another tab of this patient waits warm now; this one opens the visit page at the admit.
        socket.disconnect();
        onWarmUnavailable("replaced");
        return;
      }
      leave("You joined this visit from another window or tab, so this one is paused.");
    });
  }

  // Where the visit runs now: its socket path, or null (with the reason shown) to retry later.
  async function placement() {
    let response = null;
    let body = null;
    try {
      response = await fetch(`/api/visits/${state.visitId}/placement`, {
        method: "POST", credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() },
      });
      body = await response.json().catch(() => null);
    } catch {
      response = null;
    }
    if (response && response.ok && body) return body.socket_path;
    const error = (body && body.error) || {};
    if (error.code === "visit_ended") showEnded();
    else if (error.code === "try_again") say(`Reconnecting… ${error.message}`);
    else say("Reconnecting… the clinic cannot be reached yet.");
    return null;
  }

  // A new socket, after a short backoff; to the visit's node, asked afresh unless just told.
  function reconnect({ ask = true } = {}) {
    if (reconnectTimer || !canReconnect()) return;
    const delay = BACKOFF_MS[Math.min(tries, BACKOFF_MS.length - 1)];
    tries++;
    reconnectTimer = setTimeout(async () => {
      reconnectTimer = null;
      if (!canReconnect()) return;
      if (ask && !state.waiting && state.visitId) {
        const path = await placement();
        if (!canReconnect()) return;
        if (!path) return reconnect();
        socketPath = path;
      }
      replaceSocket();
    }, delay);
  }

  // The old socket is dropped without a word (its handlers first), and so is its peer.
  function replaceSocket() {
    const old = state.socket;
    if (old) {
      old.off();
      old.disconnect();
    }
    state.generation++;
    peer.closePeer();
    connect();
  }

  function canReconnect() {
    return !state.left && !state.ended && !(state.socket && state.socket.connected);
  }

  // ---- leaving, rejoining and ending ------------------------------------------------------------

  function leave(message) {
    state.left = true;
    state.generation++;
    peer.closePeer();
    if (state.socket) state.socket.disconnect();
    say(message);
    leaveButton.hidden = true;
    rejoinButton.hidden = false;
    rejoinButton.focus();
  }

  leaveButton.addEventListener("click", () => {
    leave("You left the visit. You can rejoin while it is still open.");
  });

  rejoinButton.addEventListener("click", () => {
    state.left = false;
    rejoinButton.hidden = true;
    leaveButton.hidden = false;
    leaveButton.focus();
    say("Rejoining the visit…");
    tries = 0;
    reconnect();
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
    peer.closePeer();
    controls.stop();
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

  // The provider's guest panel, once there is a visit (a queue page has none until the admit).
  let guestPanel = null;
  function showGuests() {
    if (role === "provider" && visitId && !guestPanel) {
      guestPanel = setupGuests({ visitId, socket: () => state.socket });
    }
  }
  showGuests();

  // The provider admitted this waiting patient: the warm connection moves into the visit. The
  // page sends its camera and microphone now (nothing went out while waiting).
  async function enter(id) {
    state.visitId = id;
    visitId = id;
    root.dataset.visitId = id;
    state.waiting = false;
    showGuests();
    if (state.socket) state.socket.auth = { visit_id: id }; // a reconnect joins the visit itself
    quality.start();
    peer.release();
    if (!state.socket || !state.socket.connected) return; // the reconnect offers afresh
    let answer;
    performance.mark("visit-enter-sent");
    try {
      answer = await state.socket.timeout(10000).emitWithAck("enter", { visit_id: id });
      performance.mark("visit-entered");
    } catch {
      answer = { moved: false };
    }
    if (answer.error) {
      if (answer.error.code === "visit_ended") return showEnded();
      if (answer.error.code === "wrong_node") {
        // This warm connection waited on another node than the visit's: connect there.
        socketPath = answer.error.socket_path;
        replaceSocket();
        return;
      }
      say(answer.error.message);
      return;
    }
    if (answer.moved) peer.applyLayout(answer.layout);
    else peer.startPeer(); // the warm connection was not ready: connect the usual way
  }

  function stop() {
    state.left = true;
    state.generation++;
    peer.closePeer();
    controls.stop();
    if (state.socket) state.socket.disconnect();
  }

  // Camera, microphone and the peer connection get ready while the socket connects.
  controls.localMedia();
  connect();
  if (!waiting) peer.startPeer();
  if (!waiting) quality.start();
  return { enter, stop, state };
}

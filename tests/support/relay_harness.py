"""A bare offer/answer harness around a MediaRelay, for browser tests and the benchmark.

Not registered by `create_app`: the visit page (issue 4) signals over Socket.IO with
authorization. This exposes the relay with none, so only tests and bench/ serve it, on 127.0.0.1.

`python -m tests.support.relay_harness --port P [--udp-port U | --udp-ports LO-HI]
[--announced-ip A]` serves it alone in a process of its own (loopback candidates on), with
/healthz, for tests that look at the relay process itself (its sockets).
"""

from __future__ import annotations

import argparse

from aiohttp import web
from aiortc import RTCSessionDescription

from signaling.relay.relay import MediaRelay
from signaling.relay.room import RelayError
from signaling.relay.udp_mux import MediaPorts, parse_port_range

RELAY = web.AppKey("relay", MediaRelay)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>relay harness</title></head>
<body><div id="remote"></div>
<script type="module">
const params = new URLSearchParams(location.search);
const room = params.get("room");
const who = params.get("who");
const slots = Number(params.get("slots") || "3");
const harness = { state: "starting", error: null, layout: {}, joinedAt: null, connectedAt: null };
window.harness = harness;
try {
  const pc = new RTCPeerConnection({ iceServers: [] });
  harness.pc = pc;
  pc.onconnectionstatechange = () => {
    harness.state = pc.connectionState;
    if (pc.connectionState === "connected" && harness.connectedAt === null) {
      harness.connectedAt = performance.now();
    }
  };
  const media = await navigator.mediaDevices.getUserMedia({
    audio: true, video: { width: 640, height: 480 },
  });
  pc.addTransceiver(media.getAudioTracks()[0], { direction: "sendrecv" });
  pc.addTransceiver(media.getVideoTracks()[0], { direction: "sendrecv" });
  for (let i = 1; i < slots; i++) {
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addTransceiver("video", { direction: "recvonly" });
  }
  pc.ontrack = (event) => {
    const element = document.createElement(event.track.kind);
    element.autoplay = true;
    element.muted = true;
    element.playsInline = true;
    element.dataset.mid = event.transceiver.mid;
    element.srcObject = new MediaStream([event.track]);
    document.getElementById("remote").append(element);
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve();
    setTimeout(resolve, 3000);
  });
  harness.joinedAt = performance.now();
  const response = await fetch("offer", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ room, participant: who, sdp: pc.localDescription.sdp, type: "offer" }),
  });
  if (!response.ok) throw new Error(`offer refused: ${response.status}`);
  const answer = await response.json();
  harness.layout = answer.layout;
  await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
  harness.state = pc.connectionState;
} catch (error) {
  harness.state = "error";
  harness.error = String(error);
}

harness.remote = async (remoteId) => {
  // What this page receives from one remote participant. The layout changes as people join
  // (the visit page gets it over Socket.IO; the harness asks).
  const query = new URLSearchParams({ room, who });
  const current = await fetch(`layout?${query}`);
  if (current.ok) harness.layout = await current.json();
  const mids = Object.entries(harness.layout).filter(([, id]) => id === remoteId).map(([m]) => m);
  const out = {
    videoWidth: 0, framesDecoded: 0, audioBytes: 0, reportedSent: 0, outgoingBitrate: 0,
  };
  for (const el of document.querySelectorAll("video")) {
    if (mids.includes(el.dataset.mid)) out.videoWidth = Math.max(out.videoWidth, el.videoWidth);
  }
  const stats = await harness.pc.getStats();
  const ours = new Set();
  stats.forEach((s) => {
    if (s.type !== "inbound-rtp" || !mids.includes(s.mid)) return;
    ours.add(s.remoteId);
    if (s.kind === "video") out.framesDecoded += s.framesDecoded || 0;
    if (s.kind === "audio") out.audioBytes += s.bytesReceived || 0;
  });
  stats.forEach((s) => {
    // The relay's sender reports for these streams, as the browser read them.
    if (s.type === "remote-outbound-rtp" && ours.has(s.id)) out.reportedSent += s.packetsSent || 0;
    // The browser's own bandwidth estimate, fed by the relay's feedback (REMB, reports).
    if (s.type === "candidate-pair" && s.nominated && s.availableOutgoingBitrate) {
      out.outgoingBitrate = Math.max(out.outgoingBitrate, s.availableOutgoingBitrate);
    }
  });
  return out;
};
</script></body></html>
"""


async def _page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def _offer(request: web.Request) -> web.Response:
    body = await request.json()
    relay = request.app[RELAY]
    offer = RTCSessionDescription(sdp=str(body["sdp"]), type="offer")
    room, who = str(body["room"]), str(body["participant"])
    try:
        answer = await relay.join(room, who, offer)
    except RelayError as exc:
        return web.json_response({"error": {"code": "room_full", "message": str(exc)}}, status=409)
    participant = relay.participant(room, who)
    layout = participant.layout() if participant else {}
    return web.json_response({"sdp": answer.sdp, "type": answer.type, "layout": layout})


async def _layout(request: web.Request) -> web.Response:
    participant = request.app[RELAY].participant(
        request.query.get("room", ""), request.query.get("who", "")
    )
    if participant is None:
        return web.json_response({"error": {"code": "not_found", "message": "no such"}}, status=404)
    return web.json_response(participant.layout())


async def _leave(request: web.Request) -> web.Response:
    body = await request.json()
    await request.app[RELAY].leave(str(body["room"]), str(body["participant"]))
    return web.json_response({})


def harness_app(relay: MediaRelay) -> web.Application:
    """An app serving the harness page at /relay/ and the relay's offer/answer endpoint."""
    app = web.Application()
    app[RELAY] = relay

    async def close_relay(app: web.Application) -> None:
        await app[RELAY].close()

    app.on_cleanup.append(close_relay)
    app.router.add_get("/relay/", _page)
    app.router.add_post("/relay/offer", _offer)
    app.router.add_post("/relay/leave", _leave)
    app.router.add_get("/relay/layout", _layout)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--udp-port", type=int)
    parser.add_argument("--udp-ports")
    parser.add_argument("--announced-ip", action="append", default=[])
    args = parser.parse_args()
    ports = MediaPorts(
        udp_port=args.udp_port,
        port_range=parse_port_range(args.udp_ports) if args.udp_ports else None,
        announced_ips=args.announced_ip,
        loopback=True,
    )

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response(request.app[RELAY].media_ports.stats())

    async def make() -> web.Application:
        relay = MediaRelay(ice_servers=[], loopback=True, media_ports=ports)
        await relay.start()
        app = harness_app(relay)
        app.router.add_get("/healthz", healthz)
        return app

    web.run_app(make(), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()

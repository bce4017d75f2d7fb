// What this page sends and receives, per remote participant: used by the checks in tests
// (window.openconsultVisit.remoteStats()).

export async function remoteStats({ state, stage, nameOf, quality }) {
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
    socketPath: state.socketPath, // the node this page's visit socket goes to
    videoWidth: widths.length ? Math.min(...widths) : 0,
    framesDecoded: 0,
    audioBytes: 0,
    videoBytesSent: 0,
    remotes,
    quality: quality.latest,
    inboundPackets: 0, // everything received, shown or not (a waiting page's must stay 0)
    route: null, // the selected candidate pair: how this page reaches the relay
  };
  if (!state.pc) return out;
  const report = await state.pc.getStats();
  report.forEach((s) => {
    if (s.type !== "transport" || !s.selectedCandidatePairId) return;
    const pair = report.get(s.selectedCandidatePairId);
    const local = pair && report.get(pair.localCandidateId);
    const far = pair && report.get(pair.remoteCandidateId);
    if (!local || !far) return;
    out.route = {
      localType: local.candidateType,
      relayProtocol: local.relayProtocol || null, // how the browser reaches its TURN server
      protocol: local.protocol,
      remoteType: far.candidateType,
      remoteAddress: far.address,
      remotePort: far.port,
    };
  });
  report.forEach((s) => {
    if (s.type === "inbound-rtp") out.inboundPackets += s.packetsReceived || 0;
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

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
  };
  if (!state.pc) return out;
  (await state.pc.getStats()).forEach((s) => {
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

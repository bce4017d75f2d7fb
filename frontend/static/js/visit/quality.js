// Connection quality from RTCPeerConnection.getStats(): bitrates, packet loss and round-trip
// time, summed up as "Good", "Fair" or "Poor" and shown in plain words ("Good connection",
// "Weak connection…"); the figures behind it only for staff, who may need them for support.

const INTERVAL_MS = 2000;

// Thresholds after the usual guidance for interactive video: under 2 % loss and 300 ms RTT
// feels fine, past 8 % loss or 600 ms conversation breaks down.
export function classify({ lossRate, rttMs }) {
  if (lossRate > 0.08 || rttMs > 600) return "Poor";
  if (lossRate > 0.02 || rttMs > 300) return "Fair";
  return "Good";
}

function kbps(bytes, ms) {
  return ms > 0 ? Math.round((bytes * 8) / ms) : 0;
}

// One sample from two snapshots of the stats report: totals are counters, so rates are deltas.
export function sample(previous, current, ms) {
  const lost = current.packetsLost - previous.packetsLost;
  const received = current.packetsReceived - previous.packetsReceived;
  const expected = lost + received;
  const result = {
    sendKbps: kbps(current.bytesSent - previous.bytesSent, ms),
    receiveKbps: kbps(current.bytesReceived - previous.bytesReceived, ms),
    videoBytesSent: current.videoBytesSent,
    lossRate: expected > 0 ? Math.max(0, lost) / expected : 0,
    rttMs: current.rttMs,
  };
  result.level = classify(result);
  return result;
}

export function totals(report) {
  const out = {
    bytesSent: 0, bytesReceived: 0, videoBytesSent: 0, packetsLost: 0, packetsReceived: 0, rttMs: 0,
  };
  report.forEach((s) => {
    if (s.type === "outbound-rtp") {
      out.bytesSent += s.bytesSent || 0;
      if (s.kind === "video") out.videoBytesSent += s.bytesSent || 0;
    } else if (s.type === "inbound-rtp") {
      out.bytesReceived += s.bytesReceived || 0;
      out.packetsLost += s.packetsLost || 0;
      out.packetsReceived += s.packetsReceived || 0;
    } else if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
      out.rttMs = Math.round((s.currentRoundTripTime || 0) * 1000);
    } else if (s.type === "remote-inbound-rtp" && s.roundTripTime && !out.rttMs) {
      out.rttMs = Math.round(s.roundTripTime * 1000);
    }
  });
  return out;
}

export const WORDS = {
  Good: "Good connection",
  Fair: "Weak connection: the picture may stutter",
  Poor: "Weak connection: sound and picture may break up",
};

// Polls the current peer connection and shows the result; `latest` is kept for tests.
export class QualityMeter {
  constructor({ peer, level, detail, warning, staff = false }) {
    this.peer = peer;
    this.staff = staff;
    this.level = level;
    this.detail = detail;
    this.warning = warning;
    this.previous = null;
    this.latest = null;
    this.timer = null;
  }

  start() {
    if (!this.timer) this.timer = setInterval(() => this.measure(), INTERVAL_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.previous = null;
  }

  async measure() {
    const pc = this.peer();
    if (!pc || pc.connectionState !== "connected") {
      this.previous = null;
      return;
    }
    const now = performance.now();
    const current = totals(await pc.getStats());
    if (this.previous && this.previous.pc === pc) {
      this.show(sample(this.previous.totals, current, now - this.previous.at));
    }
    this.previous = { pc, totals: current, at: now };
  }

  show(result) {
    this.latest = result;
    this.level.textContent = WORDS[result.level];
    this.level.parentElement.parentElement.dataset.level = result.level.toLowerCase();
    if (!this.staff) return this.showWarning(result);
    this.detail.textContent = `(sending ${result.sendKbps} kbit/s, receiving ${result.receiveKbps} kbit/s, `
      + `${(result.lossRate * 100).toFixed(1)} % lost, ${result.rttMs} ms round trip)`;
    this.showWarning(result);
  }

  showWarning(result) {
    this.warning.hidden = result.level !== "Poor";
  }
}

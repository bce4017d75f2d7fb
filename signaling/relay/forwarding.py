"""A publisher's media fanned out to the viewers' senders, on one of three paths.

Which path a viewer's slot takes (`SlotTrack.bind`, chosen by `Room._bind`):

- packet (the default, `OPENCONSULT_RELAY_FORWARDING=packet`): both legs negotiated the same
  codec, VP8 or Opus. Each RTP packet goes out as it came in, its header rewritten for the
  viewer (packets.py), straight from the publisher's transport (hooks.PacketTap); no jitter
  buffer, no re-packetizing, payloads untouched. While only packet legs watch a track, its
  packets are handled synchronously in the datagram callback (hooks.PacketIngress.take): SRTP
  unprotect, header parse, rewrite, SRTP protect and sendto, no queue and no await.
- frame (`OPENCONSULT_RELAY_FORWARDING=frame`, or a slot whose sender parameters are unknown):
  same codec; aiortc's jitter buffer reassembles frames, which the viewer's sender only
  re-packetizes (`av.Packet` through `SlotTrack.recv`).
- transcode: the legs negotiated different codecs (or the relay was made with
  `forward=False`): decoded frames, encoded again by the viewer's sender.

A slot keeps its sequence numbers and timestamps continuous while it stays on the packet path
(publisher changes, reconnects, audio only and back). aiortc's own sending loop numbers the
frame and transcoding paths, so a slot moved between the packet path and another one (a
publisher with another codec) jumps once; receivers take that as a new run of packets.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from dataclasses import dataclass
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av.frame import Frame

from signaling.relay import hooks
from signaling.relay.packets import RtpView, ViewerStream, vp8_keyframe_start

logger = logging.getLogger(__name__)

# A viewer's PLI/FIR reaches the publisher at most this often; more would only cost bandwidth.
KEYFRAME_REQUEST_INTERVAL_S = 0.3
VIDEO_QUEUE_SIZE = 60
AUDIO_QUEUE_SIZE = 100
# Codecs whose keyframes the packet path can tell from a packet's payload descriptor.
PACKET_CODECS = frozenset({"video/vp8", "audio/opus"})


@dataclass
class RelayCounters:
    """What the relay forwarded and dropped since it started, across every visit (plain
    integers; /metrics reads them). Packets are the packet path's, frames the frame path's."""

    packets_forwarded: int = 0
    packets_dropped: int = 0  # a viewer still connecting, waiting for a keyframe, or too old
    frames_forwarded: int = 0
    frames_dropped: int = 0  # a viewer waiting for a keyframe, or its queue full
    frames_transcoded: int = 0
    bytes_forwarded: int = 0  # payload bytes, both paths
    keyframe_requests_received: int = 0  # PLI/FIR from viewers
    keyframe_requests_sent: int = 0  # PLI to publishers


def is_keyframe(codec_name: str, data: bytes) -> bool:
    """Whether an encoded frame can be decoded on its own (audio frames always can)."""
    name = codec_name.upper()
    if name == "VP8":
        # RFC 6386 section 9.1: bit 0 of the frame tag is 0 for a key frame.
        return len(data) > 0 and data[0] & 0x01 == 0
    if name == "H264":
        # aiortc depayloads H.264 to Annex B; an IDR slice (type 5) makes a keyframe.
        start = data.find(b"\x00\x00\x01")
        while start != -1 and start + 3 < len(data):
            if data[start + 3] & 0x1F == 5:
                return True
            start = data.find(b"\x00\x00\x01", start + 3)
        return False
    return True


def can_forward(source: RTCRtpCodecParameters | None, sink: RTCRtpCodecParameters | None) -> bool:
    """Whether frames encoded for `source` can be sent unchanged as `sink`."""
    if source is None or sink is None:
        return False
    if source.mimeType.lower() != sink.mimeType.lower() or source.clockRate != sink.clockRate:
        return False
    if (source.channels or 1) != (sink.channels or 1):
        return False
    if source.mimeType.lower() == "video/h264":
        for key in ("packetization-mode",):
            if str(source.parameters.get(key, "0")) != str(sink.parameters.get(key, "0")):
                return False
        # profile_idc and constraint flags must match; the level may differ.
        src_profile = str(source.parameters.get("profile-level-id", ""))[:4].lower()
        sink_profile = str(sink.parameters.get("profile-level-id", ""))[:4].lower()
        return src_profile == sink_profile
    return True


def can_forward_packets(
    source: RTCRtpCodecParameters | None, sink: RTCRtpCodecParameters | None
) -> bool:
    """Whether the packet path can carry `source` to `sink` (else the frame path)."""
    return (
        can_forward(source, sink)
        and source is not None
        and source.mimeType.lower() in PACKET_CODECS
    )


class SlotTrack(MediaStreamTrack):
    """What one viewer's sender sends: whichever publisher the relay binds to this slot."""

    def __init__(
        self,
        kind: str,
        codec: RTCRtpCodecParameters | None = None,
        counters: RelayCounters | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.codec = codec
        self.counters = counters or RelayCounters()
        self.source: PublishedTrack | None = None
        self.path: str | None = None  # "packet", "frame" or "transcode" while bound
        self.forwarding = False  # packet or frame path: the codec passes unchanged
        self.stream: ViewerStream | None = None  # the packet path's state, kept across binds
        self._sender: RTCRtpSender | None = None
        self.packets_forwarded = 0
        self.keyframes_forwarded = 0
        self.frames_transcoded = 0
        self.keyframe_requests_received = 0
        self._awaiting_keyframe = kind == "video"
        self._sending = False
        size = VIDEO_QUEUE_SIZE if kind == "video" else AUDIO_QUEUE_SIZE
        self._queue: asyncio.Queue[av.Packet[Any] | Frame | None] = asyncio.Queue(maxsize=size)
        # How many queued items ago the latest keyframe was queued (None: none queued).
        self._since_keyframe: int | None = None

    async def recv(self) -> av.Packet[Any] | Frame:
        if self.readyState != "live":
            raise MediaStreamError
        if not self._sending:
            # The viewer's connection is up only now. Start from the latest keyframe that
            # queued meanwhile (the one asked for at binding, usually a few frames old); only
            # without one, ask the publisher for a keyframe now.
            self._sending = True
            if self.kind == "video" and self.path == "frame":
                self._start_from_latest_keyframe()
        item = await self._queue.get()
        if item is None:
            raise MediaStreamError
        if isinstance(item, av.Packet):
            self.packets_forwarded += 1
            self.counters.frames_forwarded += 1
            self.counters.bytes_forwarded += item.size
        else:
            self.frames_transcoded += 1
            self.counters.frames_transcoded += 1
        return item

    def attach_sender(self, transceiver: RTCRtpTransceiver) -> None:
        """The viewer's sender this slot feeds (after negotiation): the packet path needs its
        SSRCs, payload types and header extension ids, and answers its NACKs."""
        params = hooks.stream_parameters(transceiver)
        if params is None:
            return
        self._sender = transceiver.sender
        self.stream = ViewerStream(self.kind, params)
        hooks.on_nack(transceiver.sender, self._retransmit)

    def bind(self, source: PublishedTrack, *, path: str = "frame") -> None:
        """Send `source` from now on; a video viewer waits for that source's next keyframe."""
        self.unbind()
        if path == "packet" and self.stream is None:
            path = "frame"  # no negotiated sender parameters to rewrite packets for
        self.source = source
        self.path = path
        self.forwarding = path != "transcode"
        self._awaiting_keyframe = self.kind == "video" and path == "frame"
        if path == "packet" and self.stream is not None:
            self.stream.restart()
        source.subscribe(self, path=path)

    def unbind(self) -> None:
        if self.source is not None:
            self.source.unsubscribe(self)
        self.source = None
        self.path = None
        self._clear()

    def send_packet(self, packet: RtpView, keyframe: bool, now: float, ntp: int) -> None:
        """The packet path: one publisher packet, rewritten for this viewer and sent."""
        stream, sender = self.stream, self._sender
        if stream is None or sender is None:
            return
        if not packet.payload:
            stream.skip(packet.sequence_number)  # padding only: nothing the viewer needs
            return
        if not hooks.is_connected(sender):
            self.counters.packets_dropped += 1
            return  # still connecting: its picture starts at a keyframe asked for then
        data = stream.rewrite(
            ssrc=packet.ssrc,
            sequence=packet.sequence_number,
            timestamp=packet.timestamp,
            marker=packet.marker,
            payload=packet.payload,
            keyframe=keyframe,
            now=now,
            abs_send_time=(ntp >> 14) & 0xFFFFFF,
            audio_level=packet.audio_level,
        )
        if data is None:
            self.counters.packets_dropped += 1
            if stream.awaiting_keyframe:
                self.request_keyframe()
            return
        if hooks.send_rtp_now(sender, data):
            hooks.record_sent(sender, ntp, stream.last_timestamp_sent, len(packet.payload))
            self.packets_forwarded += 1
            self.counters.packets_forwarded += 1
            self.counters.bytes_forwarded += len(packet.payload)
            if keyframe:
                self.keyframes_forwarded += 1
        else:
            self.counters.packets_dropped += 1

    async def _retransmit(self, sequence: int) -> bool:
        """A NACK from the viewer: answered from the packet path's history (False: not ours)."""
        if self.stream is None or self._sender is None or self.path != "packet":
            return False
        data = self.stream.retransmission(sequence)
        if data is not None:
            hooks.send_rtp_now(self._sender, data)
        return True

    def viewer_lost_picture(self) -> None:
        """The viewer sent a PLI or FIR: forwarded upstream (rate-limited by the publisher)."""
        self.keyframe_requests_received += 1
        self.counters.keyframe_requests_received += 1
        self.request_keyframe()

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (the viewer lost the picture, or starts one)."""
        if self.source is not None:
            self.source.request_keyframe()

    def push_packet(self, packet: av.Packet[Any], keyframe: bool) -> None:
        if self._awaiting_keyframe:
            if not keyframe:
                self.counters.frames_dropped += 1
                self.request_keyframe()
                return
            self._awaiting_keyframe = False
        if self._queue.full():
            # The viewer's sender fell behind. Dropping video breaks the chain of references,
            # so start over from a keyframe; audio just loses the oldest frame.
            if self.kind == "video":
                self.counters.frames_dropped += self._queue.qsize() + 1
                self._clear()
                self._awaiting_keyframe = True
                self.request_keyframe()
                return
            self._queue.get_nowait()
            self.counters.frames_dropped += 1
        if keyframe and self.kind == "video":
            self.keyframes_forwarded += 1
            self._since_keyframe = 0
        elif self._since_keyframe is not None:
            self._since_keyframe += 1
        self._queue.put_nowait(packet)

    def push_frame(self, frame: Frame) -> None:
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(frame)

    def stop(self) -> None:
        self.unbind()
        if self.readyState == "live":
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)
        super().stop()

    def _clear(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
        self._since_keyframe = None

    def _start_from_latest_keyframe(self) -> None:
        since = self._since_keyframe
        if since is None:
            self._clear()
            self._awaiting_keyframe = True
            self.request_keyframe()
            return
        while self._queue.qsize() > since + 1:
            self._queue.get_nowait()


class PublishedTrack:
    """One participant's incoming audio or video, handed on to the viewers bound to it."""

    def __init__(
        self,
        *,
        kind: str,
        receiver: RTCRtpReceiver,
        codec: RTCRtpCodecParameters | None,
        counters: RelayCounters | None = None,
    ):
        self.kind = kind
        self.codec = codec
        self.counters = counters or RelayCounters()
        self.keyframes_received = 0
        self.keyframe_requests_sent = 0
        self._receiver = receiver
        self._remote_track: MediaStreamTrack = receiver.track
        self._packets: set[SlotTrack] = set()
        self._forwarding: set[SlotTrack] = set()
        self._transcoding: set[SlotTrack] = set()
        self._reader: asyncio.Task[None] | None = None
        self._last_request = 0.0
        self._pending_request: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._closed = False
        self.tap = hooks.install_encoded_frame_tap(receiver, self._on_encoded_frame)
        self.packet_tap = hooks.install_packet_tap(receiver, self._on_packet)
        self._packet_keyframes = codec is not None and codec.mimeType.lower() == "video/vp8"

    @property
    def viewers(self) -> int:
        return len(self._packets) + len(self._forwarding) + len(self._transcoding)

    def subscribe(self, slot: SlotTrack, *, path: str) -> None:
        if path == "packet":
            self._packets.add(slot)
        elif path == "frame":
            self._forwarding.add(slot)
        else:
            self._transcoding.add(slot)
            self.tap.decode = True
            if self._reader is None:
                self._reader = asyncio.ensure_future(self._read_decoded())
        self._update_receive()
        if self.kind == "video":
            self.request_keyframe()

    def unsubscribe(self, slot: SlotTrack) -> None:
        self._packets.discard(slot)
        self._forwarding.discard(slot)
        self._transcoding.discard(slot)
        # Stop decoding as soon as no transcoding leg needs pictures.
        self.tap.decode = bool(self._transcoding)
        self._update_receive()

    def _update_receive(self) -> None:
        # aiortc's jitter buffer runs only while a frame or transcoding leg needs frames.
        self.packet_tap.full_receive = bool(self._forwarding or self._transcoding)

    def request_keyframe(self) -> None:
        """Send the publisher a PLI, coalescing requests that come in close together."""
        if self.kind != "video" or self._closed or self._pending_request is not None:
            return
        wait = self._last_request + KEYFRAME_REQUEST_INTERVAL_S - time.monotonic()
        if wait > 0:
            loop = asyncio.get_running_loop()
            self._pending_request = loop.call_later(wait, self._send_keyframe_request)
        else:
            self._send_keyframe_request()

    def close(self) -> None:
        """Stop handing frames on and release the incoming track."""
        self._closed = True
        for slot in [*self._packets, *self._forwarding, *self._transcoding]:
            slot.unbind()
        hooks.remove_packet_tap(self._receiver)
        self.tap.decode = False
        if self._pending_request is not None:
            self._pending_request.cancel()
            self._pending_request = None
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        self._remote_track.stop()

    def _send_keyframe_request(self) -> None:
        self._pending_request = None
        if self._closed:
            return
        self._last_request = time.monotonic()
        task = hooks.send_picture_loss(self._receiver)
        if task is not None:
            self.keyframe_requests_sent += 1
            self.counters.keyframe_requests_sent += 1
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _on_packet(
        self, packet: RtpView, codec: RTCRtpCodecParameters, arrival_time_ms: int
    ) -> None:
        keyframe = self._packet_keyframes and vp8_keyframe_start(packet.payload)
        if keyframe:
            self.keyframes_received += 1
        if not self._packets:
            return
        now, ntp = time.monotonic(), hooks.ntp_now()
        for slot in list(self._packets):
            slot.send_packet(packet, keyframe, now, ntp)

    def _on_encoded_frame(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        keyframe = is_keyframe(codec.name, frame.data)
        if keyframe and self.kind == "video" and not self._packet_keyframes:
            self.keyframes_received += 1  # VP8 keyframes are counted per packet already
        if not self._forwarding:
            return
        packet = av.Packet(frame.data)
        packet.pts = frame.timestamp
        packet.time_base = fractions.Fraction(1, codec.clockRate)
        for slot in list(self._forwarding):
            slot.push_packet(packet, keyframe)

    async def _read_decoded(self) -> None:
        # Only fed while a transcoding leg exists (tap.decode); otherwise it waits, idle.
        try:
            while True:
                frame = await self._remote_track.recv()
                if not isinstance(frame, Frame):
                    continue
                for slot in list(self._transcoding):
                    slot.push_frame(frame)
        except MediaStreamError:
            return

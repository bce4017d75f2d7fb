"""Every aiortc (and pylibsrtp) internal the relay relies on, in one place.

aiortc decodes everything it receives and encodes everything it sends; the relay needs the
packets (packet path) or the encoded frames (frame path) instead. aiortc is pinned exactly
(pyproject) and tests/signaling/test_aiortc_hooks.py fails if an upgrade moves anything used
here.

The packet path (aiortc#550, #627 point there): `PacketIngress` takes a publisher's RTP
before aiortc's receiver path, and a `PacketTap` per receiver keeps only the receiver's duties
a relay needs (RTCP receiver reports, NACKs and REMB to the publisher); the jitter buffer and
depayloading run only while a frame or transcoding leg needs frames. While only packet legs
watch a track, its SRTP datagrams never reach aiortc's or aioice's queues: the ICE
connection's datagram callback (`Connection.data_received`, and aioice's own sockets'
`datagram_received`) hands them to `PacketIngress.take`, which decrypts with the transport's
SRTP session, reads the header (`packets.parse_rtp`) and forwards synchronously; viewers'
packets are protected with their transport's SRTP session and handed to the nominated pair's
socket (`send_rtp_now`). Otherwise RTP goes through `RTCDtlsTransport._handle_rtp_data` as
aiortc has it. Their sender's counters are kept for its sender reports, and its NACK handling
is answered from the relay's own history. Not kept on the fast path: the DTLS transport's own
byte and packet counters (nothing here reads them).

Per packet, libsrtp is called on the transport's own SRTP sessions (`LeanSrtp`, pylibsrtp
pinned exactly), and each publisher's bitrate estimator runs with two of its parts replaced by
ones that give the same figures for less (`quicken_estimator`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pylibsrtp
from aioice.ice import StunProtocol
from aiortc import (
    RTCDtlsTransport,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    clock,
)
from aiortc.codecs import is_rtx
from aiortc.jitterbuffer import JitterFrame
from aiortc.rate import MIN_FRAME_PERIOD_HISTORY_LENGTH, OveruseEstimator, RateCounter
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, pack_remb_fci
from pylibsrtp._binding import ffi as srtp_ffi
from pylibsrtp._binding import lib as srtp_lib

from signaling.relay.packets import RtpView, StreamParameters, parse_rtp

logger = logging.getLogger(__name__)

AIORTC_VERSION = "1.16.0"
PYLIBSRTP_VERSION = "1.0.0"

# Name-mangled attributes of RTCRtpReceiver (see aiortc/rtcrtpreceiver.py).
DECODER_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"
RTX_SSRC_ATTR = "_RTCRtpReceiver__rtx_ssrc"
STARTED_ATTR = "_RTCRtpReceiver__started"
LOOPBACK_MARK = "_openconsult_loopback"
CODECS_ATTR = "_RTCRtpReceiver__codecs"
REMOTE_STREAMS_ATTR = "_RTCRtpReceiver__remote_streams"
ACTIVE_SSRC_ATTR = "_RTCRtpReceiver__active_ssrc"
NACK_GENERATOR_ATTR = "_RTCRtpReceiver__nack_generator"
BITRATE_ESTIMATOR_ATTR = "_RTCRtpReceiver__remote_bitrate_estimator"
RTCP_SSRC_ATTR = "_RTCRtpReceiver__rtcp_ssrc"
SENDER_PACKET_COUNT_ATTR = "_RTCRtpSender__packet_count"
SENDER_OCTET_COUNT_ATTR = "_RTCRtpSender__octet_count"
SENDER_NTP_ATTR = "_RTCRtpSender__ntp_timestamp"
SENDER_RTP_TIMESTAMP_ATTR = "_RTCRtpSender__rtp_timestamp"
INGRESS_MARK = "_openconsult_packet_ingress"
TX_SRTP_MARK = "_openconsult_tx_srtp"
EXTENSION_IDS_ATTR = "_HeaderExtensionsMap__ids"  # aiortc.rtp.HeaderExtensionsMap's ids
REMB_INTERVAL_S = 0.5
# 0.5 ms in abs-send-time units (6.18 fixed-point seconds): packets this close are one burst
# to aiortc's inter-arrival filter too (their send-time delta rounds to 0 ms).
BURST_TICKS = 131
NTP_EPOCH_OFFSET_S = 2_208_988_800  # 1900-01-01 to 1970-01-01

EncodedFrameHandler = Callable[[RTCRtpCodecParameters, JitterFrame], None]


class EncodedFrameTap(queue.Queue[Any]):
    """Stands in for a receiver's decoder queue.

    `RTCRtpReceiver._handle_rtp_packet` (on the event loop) puts each frame the jitter buffer
    completes, as `(codec, JitterFrame)`, into this queue, and a decoder thread reads it. The tap
    hands every frame to the relay instead, and to the decoder only while `decode` is set (a
    transcoding leg needs pictures). The `None` a stopping receiver puts goes through, so the
    decoder thread still ends and ends the remote track.
    """

    def __init__(self, on_frame: EncodedFrameHandler) -> None:
        super().__init__()
        self._on_frame = on_frame
        self.decode = False
        self.frames_tapped = 0
        self.frames_to_decoder = 0

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None, block, timeout)
            return
        codec, frame = item
        self.frames_tapped += 1
        try:
            self._on_frame(codec, frame)
        except Exception:  # a relay bug must not kill the receiver's RTP handling
            logger.exception("relay failed to forward an encoded frame")
        if self.decode:
            self.frames_to_decoder += 1
            super().put(item, block, timeout)


def install_encoded_frame_tap(
    receiver: RTCRtpReceiver, on_frame: EncodedFrameHandler
) -> EncodedFrameTap:
    """Route the receiver's encoded frames to `on_frame`; call before the receiver starts."""
    if getattr(receiver, STARTED_ATTR):
        raise RuntimeError("the receiver already started: install the tap before it connects")
    tap = EncodedFrameTap(on_frame)
    setattr(receiver, DECODER_QUEUE_ATTR, tap)
    return tap


def publisher_media_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC that carries the publisher's media, never its retransmission (RTX) SSRC."""
    rtx: dict[int, int] = getattr(receiver, RTX_SSRC_ATTR)
    if rtx:
        return next(iter(rtx.values()))
    sources = [s for s in receiver.getSynchronizationSources() if s.source not in rtx]
    if not sources:
        return None
    latest = max(sources, key=lambda s: s.timestamp)
    return int(latest.source)


def send_picture_loss(receiver: RTCRtpReceiver) -> asyncio.Task[None] | None:
    """Ask the publisher behind `receiver` for a keyframe (RTCP PLI)."""
    ssrc = publisher_media_ssrc(receiver)
    if ssrc is None:
        return None
    return asyncio.ensure_future(receiver._send_rtcp_pli(ssrc))


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call `callback` whenever the viewer behind `sender` sends a PLI or FIR.

    The sender's RTCP handler calls `self._send_keyframe()` for both; aiortc's own version only
    flags its encoder, which a forwarding sender never uses, so both are called.
    """
    original: Callable[[], None] = sender._send_keyframe

    def send_keyframe() -> None:
        original()
        callback()

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]


def negotiated_codec(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters | None:
    """The codec the transceiver sends with and expects first (RTX excluded)."""
    codecs: list[RTCRtpCodecParameters] = transceiver._codecs
    for codec in codecs:
        if codec.mimeType.lower() != "video/rtx":
            return codec
    return None


def offer_loopback_candidate(pc: RTCPeerConnection) -> None:
    """Make the connection's ICE agents also offer 127.0.0.1, which aioice skips.

    Test and development only (`OPENCONSULT_RTC_LOOPBACK`). Call after setRemoteDescription
    (the answerer) or addTransceiver (the offerer), before setLocalDescription gathers.
    """
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport.iceGatherer._connection
        if getattr(connection, LOOPBACK_MARK, False):
            continue
        original = connection.get_component_candidates

        async def with_loopback(
            component: int,
            addresses: list[str],
            timeout: int = 5,  # noqa: ASYNC109 (aioice's own signature)
            _orig: Any = original,
        ) -> Any:
            if "127.0.0.1" not in addresses:
                addresses = [*addresses, "127.0.0.1"]
            return await _orig(component=component, addresses=addresses, timeout=timeout)

        connection.get_component_candidates = with_loopback  # type: ignore[method-assign]
        setattr(connection, LOOPBACK_MARK, True)


# ---------------------------------------------------------------- the bitrate estimator

# aiortc's receive-side bandwidth estimator (aiortc/rate.py), as the relay runs it for every
# publisher's video: two of its parts cost time for nothing, and are replaced on the packet
# taps' estimators with versions that give the same figures.


class SparseRateCounter(RateCounter):
    """aiortc's `RateCounter` (the incoming bitrate over a 1 s window), counting by arrival.

    aiortc's keeps one bucket per millisecond and walks every millisecond that went by on each
    call (a thousand steps a second per publisher); this one keeps one entry per millisecond
    that had packets and drops those that left the window. Same `rate()` at every point.
    """

    def reset(self) -> None:
        self._entries: collections.deque[list[int]] = collections.deque()  # [ms, count, value]
        self._origin_index = 0
        self._origin_ms = None
        self._count = 0
        self._value = 0

    def add(self, value: int, now_ms: int) -> None:
        if self._origin_ms is None:
            self._origin_ms = now_ms
        else:
            self._erase_old(now_ms)
        entries = self._entries
        if entries and entries[-1][0] == now_ms:
            entries[-1][1] += 1
            entries[-1][2] += value
        else:
            entries.append([now_ms, 1, value])
        self._count += 1
        self._value += value

    def rate(self, now_ms: int) -> int | None:
        if self._origin_ms is not None:
            self._erase_old(now_ms)
            active_window_size = now_ms - self._origin_ms + 1
            if self._count > 0 and active_window_size > 1:
                return round(self._scale * self._value / active_window_size)
        return None

    def _erase_old(self, now_ms: int) -> None:
        new_origin_ms = now_ms - self._window_size + 1
        if self._origin_ms is None or self._origin_ms >= new_origin_ms:
            return
        entries = self._entries
        while entries and entries[0][0] < new_origin_ms:
            _, count, value = entries.popleft()
            self._count -= count
            self._value -= value
        self._origin_ms = new_origin_ms


class QuickOveruseEstimator(OveruseEstimator):
    """aiortc's `OveruseEstimator` with its smallest recent frame period taken by `min()`
    rather than a Python loop over the last 60 (the same value)."""

    def update_min_frame_period(self, ts_delta: float) -> float:
        history = self.ts_delta_hist
        if len(history) >= MIN_FRAME_PERIOD_HISTORY_LENGTH:
            history.pop(0)
        smallest = min(history, default=ts_delta)
        history.append(ts_delta)
        return ts_delta if ts_delta < smallest else smallest


def quicken_estimator(estimator: Any) -> None:
    """Give a `RemoteBitrateEstimator` the quick rate counter (while it has counted nothing
    yet) and overuse estimator (its state kept)."""
    counter = estimator.incoming_bitrate
    if type(counter) is RateCounter and counter._origin_ms is None:
        estimator.incoming_bitrate = SparseRateCounter(counter._window_size, counter._scale)
    if type(estimator.estimator) is OveruseEstimator:
        estimator.estimator.__class__ = QuickOveruseEstimator


# ---------------------------------------------------------------- SRTP, per packet


class LeanSrtp:
    """A pylibsrtp `Session`'s `protect` / `unprotect` for RTP, called once per packet.

    The same libsrtp calls on the session's own context and buffer, without what pylibsrtp
    adds to each call (a type check, a fresh length cell, an exception on failure): a packet
    that fails (authentication, replay) gives None and is dropped, as the receive loop drops
    it. Holds the session, so its libsrtp context lives as long as this.
    """

    __slots__ = ("_buffer", "_cdata", "_context", "_length", "_protect_limit", "session")

    def __init__(self, session: pylibsrtp.Session) -> None:
        self.session = session
        self._context = session._srtp[0]
        self._cdata = session._cdata
        self._buffer = session._buffer
        self._length = srtp_ffi.new("int *")
        self._protect_limit = len(session._buffer) - pylibsrtp.SRTP_MAX_TRAILER_LEN

    def protect(self, packet: bytes, _protect: Any = srtp_lib.srtp_protect) -> bytes | None:
        size = len(packet)
        if size > self._protect_limit:
            return None
        self._buffer[0:size] = packet
        length = self._length
        length[0] = size
        if _protect(self._context, self._cdata, length):
            return None
        return cast(bytes, self._buffer[0 : length[0]])

    def unprotect(self, packet: bytes, _unprotect: Any = srtp_lib.srtp_unprotect) -> bytes | None:
        size = len(packet)
        if size > len(self._buffer):
            return None
        self._buffer[0:size] = packet
        length = self._length
        length[0] = size
        if _unprotect(self._context, self._cdata, length):
            return None
        return cast(bytes, self._buffer[0 : length[0]])


def lean_srtp(holder: Any, session: pylibsrtp.Session, attr: str) -> LeanSrtp:
    """`holder`'s LeanSrtp for `session` (kept in `attr`, made again if the session changed)."""
    lean: LeanSrtp | None = holder.__dict__.get(attr)
    if lean is None or lean.session is not session:
        lean = LeanSrtp(session)
        holder.__dict__[attr] = lean
    return lean


# ---------------------------------------------------------------- the packet path

# (media packet with any RTX unwrapped, its codec, the packet's arrival time in NTP-epoch ms)
PacketHandler = Callable[[RtpView, RTCRtpCodecParameters, int], None]


def arrival_ms() -> int:
    """aiortc's `clock.current_ms()` (milliseconds since 1900), without its datetime."""
    return int(time.time() * 1000) + NTP_EPOCH_OFFSET_S * 1000


def rtp_view(packet: RtpPacket) -> RtpView:
    """An aiortc-parsed packet as the packet path sees packets."""
    return RtpView(
        ssrc=packet.ssrc,
        payload_type=packet.payload_type,
        sequence_number=packet.sequence_number,
        timestamp=packet.timestamp,
        marker=packet.marker,
        payload=packet.payload,
        padding_size=packet.padding_size,
        abs_send_time=packet.extensions.abs_send_time,
        audio_level=packet.extensions.audio_level,
    )


class PacketTap:
    """One receiver's RTP, taken before aiortc's receiver path.

    `full_receive` False (only packet legs, or nobody, watch this track): the tap does what a
    relay's receiver must and nothing more, synchronously in the datagram callback
    (`PacketIngress.take`): RTCP statistics (aiortc's own receiver-report loop sends them),
    NACKs for lost packets and REMB from the bitrate estimator. True (a frame or transcoding
    leg needs frames): the packets go through the transport's receive loop and aiortc's whole
    receiver path runs as well.
    """

    def __init__(self, receiver: RTCRtpReceiver, on_packet: PacketHandler) -> None:
        self.receiver = receiver
        self.on_packet = on_packet
        self.full_receive = False
        self.packets = 0
        self.retransmissions_received = 0
        self.nacks_sent = 0
        self._codecs: dict[int, RTCRtpCodecParameters] = getattr(receiver, CODECS_ATTR)
        self._rtx_ssrc: dict[int, int] = getattr(receiver, RTX_SSRC_ATTR)
        self._streams: dict[int, StreamStatistics] = getattr(receiver, REMOTE_STREAMS_ATTR)
        self._active: dict[int, Any] = getattr(receiver, ACTIVE_SSRC_ATTR)
        self._nack = getattr(receiver, NACK_GENERATOR_ATTR)
        self._estimator = getattr(receiver, BITRATE_ESTIMATOR_ATTR)
        if self._estimator is not None:
            quicken_estimator(self._estimator)
        self._remb_sent_at = 0.0
        self._remb_bitrate = 0
        # Packets sent in one burst (abs-send-times within BURST_TICKS of the burst's first)
        # go to the estimator as one call (the latest send time and arrival, the sizes
        # summed): its inter-arrival groups come out the same (a group may start up to
        # 0.5 ms of send time later) and its REMB as often, at a fraction of the calls.
        # [latest abs_send_time, its arrival_ms, summed size, ssrc, first abs_send_time]
        self._burst: list[int] | None = None
        self._background: set[asyncio.Future[Any]] = set()
        self._rtx: dict[int, tuple[RTCRtpCodecParameters, bool]] = {}  # is_rtx, by type

    def handle_now(self, packet: RtpView, arrival_time_ms: int) -> None:
        """A packet-only track's packet, in the datagram callback: forwarded, then accounted."""
        codec = self._forward(packet, arrival_time_ms)
        if codec is not None:
            self._receive_light(packet, codec, self._rtx[packet.payload_type][1], arrival_time_ms)

    async def handle(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        """A packet that came through the transport's receive loop (frame legs need frames)."""
        view = rtp_view(packet)
        if self.full_receive:
            if self._forward(view, arrival_time_ms) is not None:
                await self.receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms)
            return
        self.handle_now(view, arrival_time_ms)

    def _forward(self, packet: RtpView, arrival_time_ms: int) -> RTCRtpCodecParameters | None:
        if not self.receiver._enabled:
            return None
        codec = self._codecs.get(packet.payload_type)
        if codec is None:
            return None
        self.packets += 1
        known = self._rtx.get(packet.payload_type)
        if known is None or known[0] is not codec:
            known = self._rtx[packet.payload_type] = (codec, is_rtx(codec))
        if not known[1]:
            self.on_packet(packet, codec, arrival_time_ms)
            return codec
        original_ssrc = self._rtx_ssrc.get(packet.ssrc)
        apt = codec.parameters.get("apt")
        payload = packet.payload
        if original_ssrc is not None and len(payload) >= 2 and isinstance(apt, int):
            media_codec = self._codecs.get(apt)
            if media_codec is not None:
                # RFC 4588: the original sequence number, then the original payload.
                media = RtpView(
                    ssrc=original_ssrc,
                    payload_type=apt,
                    sequence_number=(payload[0] << 8) | payload[1],
                    timestamp=packet.timestamp,
                    marker=packet.marker,
                    payload=payload[2:],
                    abs_send_time=packet.abs_send_time,
                    audio_level=packet.audio_level,
                )
                self.retransmissions_received += 1
                self.on_packet(media, media_codec, arrival_time_ms)
                self._nack_add(media)
        # else padding (bandwidth probing) or an unknown RTX stream
        return codec

    def _remb_due(self, bitrate: int) -> bool:
        """REMB as libwebrtc paces it: at once when the estimate drops by 3 % or more,
        otherwise at most every REMB_INTERVAL_S (aiortc's estimator answers far more often)."""
        now = time.monotonic()
        if now - self._remb_sent_at < REMB_INTERVAL_S and bitrate >= 0.97 * self._remb_bitrate:
            return False
        self._remb_sent_at, self._remb_bitrate = now, bitrate
        return True

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _estimate(self, abs_send_time: int, arrival_time_ms: int, size: int, ssrc: int) -> None:
        burst = self._burst
        if burst is not None:
            if (abs_send_time - burst[4]) & 0xFFFFFF < BURST_TICKS and burst[3] == ssrc:
                burst[0], burst[1] = abs_send_time, arrival_time_ms
                burst[2] += size
                return
            remb = self._estimator.add(
                abs_send_time=burst[0], arrival_time_ms=burst[1], payload_size=burst[2],
                ssrc=burst[3],
            )  # fmt: skip
            rtcp_ssrc = getattr(self.receiver, RTCP_SSRC_ATTR)
            if rtcp_ssrc is not None and remb is not None and self._remb_due(remb[0]):
                fci = pack_remb_fci(*remb)
                self._spawn(
                    self.receiver._send_rtcp(
                        RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=fci)
                    )
                )
        self._burst = [abs_send_time, arrival_time_ms, size, ssrc, abs_send_time]

    def _receive_light(
        self, packet: RtpView, codec: RTCRtpCodecParameters, rtx: bool, arrival_time_ms: int
    ) -> None:
        """aiortc's `_handle_rtp_packet` minus depayloading, jitter buffer and decoder."""
        if self._estimator is not None and packet.abs_send_time is not None:
            self._estimate(
                packet.abs_send_time,
                arrival_time_ms,
                len(packet.payload) + packet.padding_size,
                packet.ssrc,
            )
        if self.packets & 0x1F == 1:  # "heard from" times, for getSynchronizationSources
            self._active[packet.ssrc] = clock.current_datetime()
        stream = self._streams.get(packet.ssrc)
        if stream is None:
            stream = self._streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stream.add(cast(RtpPacket, packet))
        if not rtx:
            self._nack_add(packet)

    def _nack_add(self, media: RtpView) -> None:
        if self._nack is not None and self._nack.add(cast(RtpPacket, media)):
            self.nacks_sent += 1
            self._spawn(self.receiver._send_rtcp_nack(media.ssrc, sorted(self._nack.missing)))


class _RouteKey:
    """What aiortc's RTP router reads of a packet: enough to route before decrypting."""

    __slots__ = ("payload_type", "ssrc")

    def __init__(self, ssrc: int, payload_type: int) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type


_SSRC = struct.Struct("!I")


class PacketIngress:
    """A publisher's transport handing decrypted RTP to packet taps, one per receiver.

    The fast path (`take`): the ICE connection's datagram callback (aioice's own sockets, or
    the shared media port's demultiplexer) hands an SRTP datagram of a packet-only track to
    its tap at once: routed on the clear header, decrypted, header parsed (`parse_rtp`),
    forwarded and accounted, with no queue, no task and no await. Everything else (DTLS,
    SRTCP, STUN, and RTP of tracks whose frames are needed) goes the usual way, through
    aioice's queue and the DTLS transport's receive loop (`handle_rtp_data`).
    """

    def __init__(self, transport: RTCDtlsTransport) -> None:
        self.transport = transport
        self.taps: dict[Any, PacketTap] = {}  # by receiver
        self.fast_packets = 0
        transport._handle_rtp_data = self.handle_rtp_data  # type: ignore[method-assign]
        self._connection = transport.transport._connection
        self._queue_datagram: Callable[[bytes, int], None] = self._connection.data_received
        self._connection.data_received = self.data_received  # type: ignore[method-assign]
        self._protocols_wrapped = False
        self._rx_lean: LeanSrtp | None = None
        # configure() fills in this object's ids; it is never replaced.
        self._extension_ids = getattr(transport._rtp_header_extensions_map, EXTENSION_IDS_ATTR)

    def data_received(self, data: bytes, component: int) -> None:
        """aioice's `Connection.data_received`: what its protocols hand on that is not STUN."""
        if not self._protocols_wrapped:
            self._wrap_protocols()
        if not self.take(data):
            self._queue_datagram(data, component)

    def _wrap_protocols(self) -> None:
        """aioice's own sockets try to parse every datagram as STUN first; media need not."""
        protocols = self._connection._protocols
        if not protocols:
            return
        self._protocols_wrapped = True
        for protocol in protocols:
            if type(protocol) is not StunProtocol:  # the shared port demultiplexes already
                continue
            original = protocol.datagram_received

            def datagram_received(
                data: bytes, addr: tuple[Any, ...], _original: Any = original
            ) -> None:
                if not (data and 127 < data[0] < 192 and self.take(data)):
                    _original(data, addr)

            protocol.datagram_received = datagram_received  # type: ignore[method-assign,assignment]

    def take(self, data: bytes) -> bool:
        """Forward an SRTP packet of a packet-only track now; False: not one, queue it."""
        if len(data) < 12 or not 127 < data[0] < 192 or 192 <= data[1] <= 223:
            return False  # not RTP (DTLS, STUN, or RTCP, RFC 5761)
        transport = self.transport
        srtp = transport._rx_srtp
        if srtp is None or transport._state is not DtlsState.CONNECTED:
            return False
        receiver = transport._rtp_router.route_rtp(
            _RouteKey(_SSRC.unpack_from(data, 8)[0], data[1] & 0x7F)  # type: ignore[arg-type]
        )
        if receiver is None:
            return False
        tap = self.taps.get(receiver)
        if tap is None or tap.full_receive:
            return False
        lean = self._rx_lean
        if lean is None or lean.session is not srtp:
            lean = self._rx_lean = LeanSrtp(srtp)
        plain = lean.unprotect(data)
        if plain is None:
            return True  # as the receive loop does: dropped
        ids = self._extension_ids
        packet = parse_rtp(plain, ids.abs_send_time, ids.audio_level)
        if packet is None:
            return True
        self.fast_packets += 1
        try:
            tap.handle_now(packet, arrival_ms())
        except Exception:  # a relay bug must not reach aioice's protocol
            logger.exception("relay failed to handle an RTP packet")
        return True

    async def handle_rtp_data(self, data: bytes, arrival_time_ms: int) -> None:
        # As RTCDtlsTransport._handle_rtp_data, with the taps in front of the receivers.
        transport = self.transport
        try:
            packet = RtpPacket.parse(data, transport._rtp_header_extensions_map)
        except ValueError:
            return
        receiver = transport._rtp_router.route_rtp(packet)
        if receiver is None:
            return
        tap = self.taps.get(receiver)
        try:
            if tap is None:
                await receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms)
            else:
                await tap.handle(packet, arrival_time_ms)
        except ConnectionError:
            raise
        except Exception:  # a relay bug must not end the transport's receive loop
            logger.exception("relay failed to handle an RTP packet")


def install_packet_tap(receiver: RTCRtpReceiver, on_packet: PacketHandler) -> PacketTap:
    """Hand the receiver's RTP packets to `on_packet` before aiortc's receiver path."""
    transport = receiver.transport
    ingress: PacketIngress | None = getattr(transport, INGRESS_MARK, None)
    if ingress is None:
        ingress = PacketIngress(transport)
        setattr(transport, INGRESS_MARK, ingress)
    tap = PacketTap(receiver, on_packet)
    ingress.taps[receiver] = tap
    return tap


def fast_packets(receiver: RTCRtpReceiver) -> int:
    """How many packets the receiver's transport took in the datagram callback."""
    ingress: PacketIngress | None = getattr(receiver.transport, INGRESS_MARK, None)
    return 0 if ingress is None else ingress.fast_packets


def remove_packet_tap(receiver: RTCRtpReceiver) -> None:
    ingress: PacketIngress | None = getattr(receiver.transport, INGRESS_MARK, None)
    if ingress is not None:
        ingress.taps.pop(receiver, None)


def stream_parameters(transceiver: RTCRtpTransceiver) -> StreamParameters | None:
    """What the transceiver's sender negotiated: SSRCs, payload types, header extension ids."""
    codec = negotiated_codec(transceiver)
    if codec is None or codec.payloadType is None:
        return None
    rtx_type = None
    for candidate in transceiver._codecs:
        if is_rtx(candidate) and candidate.parameters.get("apt") == codec.payloadType:
            rtx_type = candidate.payloadType
            break
    sender = transceiver.sender
    return StreamParameters(
        ssrc=sender._ssrc,
        payload_type=codec.payloadType,
        clock_rate=codec.clockRate,
        mid=transceiver.mid,
        rtx_ssrc=sender._rtx_ssrc if rtx_type is not None else None,
        rtx_payload_type=rtx_type,
        extension_ids={ext.uri: ext.id for ext in transceiver._headerExtensions},
    )


def ntp_now() -> int:
    """The 64-bit NTP time sender reports carry (aiortc's `clock.current_ntp_time`, cheaper)."""
    now = time.time()
    seconds = int(now)
    return ((seconds + NTP_EPOCH_OFFSET_S) << 32) | int((now - seconds) * (1 << 32))


def is_connected(sender: RTCRtpSender) -> bool:
    return sender.transport._state is DtlsState.CONNECTED


async def send_rtp(sender: RTCRtpSender, data: bytes) -> bool:
    """SRTP-protect `data` with the viewer's keys and send it on the viewer's transport."""
    try:
        await sender.transport._send_rtp(data)
    except ConnectionError:
        return False
    return True


_background_sends: set[asyncio.Future[Any]] = set()


def send_rtp_now(sender: RTCRtpSender, data: bytes) -> bool:
    """`send_rtp` without an await: SRTP-protect and hand the datagram to the socket now.

    As `RTCDtlsTransport._send_rtp` and aioice's `Connection.sendto` do, on the nominated
    pair of component 1 (bundled, RTCP multiplexed); a TURN pair's protocol wraps what it
    sends, so that one goes through its own (async) `send_data`.
    """
    transport = sender.transport
    if transport._state is not DtlsState.CONNECTED:
        return False
    pair = transport.transport._connection._nominated.get(1)
    if pair is None:
        return False
    protected = lean_srtp(transport, transport._tx_srtp, TX_SRTP_MARK).protect(data)
    if protected is None:
        return False
    protocol = pair.protocol
    if type(protocol).send_data is StunProtocol.send_data:
        protocol.transport.sendto(protected, pair.remote_addr)
    else:
        task = asyncio.ensure_future(protocol.send_data(protected, pair.remote_addr))
        _background_sends.add(task)
        task.add_done_callback(_background_sends.discard)
    return True


def record_sent(sender: RTCRtpSender, ntp: int, rtp_timestamp: int, octets: int) -> None:
    """Count a packet in the sender's own sender-report figures (aiortc's RTCP loop sends them).

    The NTP/RTP pair maps the packet's timestamp to the wall clock it left at, as aiortc's own
    sending loop does; the browser uses it for lip sync and its statistics.
    """
    state = sender.__dict__
    state[SENDER_PACKET_COUNT_ATTR] += 1
    state[SENDER_OCTET_COUNT_ATTR] += octets
    state[SENDER_NTP_ATTR] = ntp
    state[SENDER_RTP_TIMESTAMP_ATTR] = rtp_timestamp


NackHandler = Callable[[int], Awaitable[bool]]


def on_nack(sender: RTCRtpSender, handler: NackHandler) -> None:
    """Answer the viewer's NACKs with `handler(sequence)`; aiortc's own history when it
    returns False (the frame and transcoding paths fill that one)."""
    original: Callable[[int], Awaitable[None]] = sender._retransmit

    async def retransmit(sequence_number: int) -> None:
        if not await handler(sequence_number):
            await original(sequence_number)

    sender._retransmit = retransmit  # type: ignore[method-assign]

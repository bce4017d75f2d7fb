"""Every aiortc internal the relay relies on, in one place.

aiortc decodes everything it receives and encodes everything it sends; the relay needs the
packets (packet path) or the encoded frames (frame path) instead. aiortc is pinned exactly
(pyproject) and tests/signaling/test_aiortc_hooks.py fails if an upgrade moves anything used
here.

The packet path (aiortc#550, #627 point there): `PacketIngress` takes the decrypted RTP of a
publisher's `RTCDtlsTransport._handle_rtp_data` before aiortc's receiver path, and a
`PacketTap` per receiver keeps only the receiver's duties a relay needs (RTCP receiver reports,
NACKs and REMB to the publisher); the jitter buffer and depayloading run only while a frame or
transcoding leg needs frames. Viewers' packets go out through their transport's `_send_rtp`
(SRTP protect), their sender's counters are kept for its sender reports, and its NACK handling
is answered from the relay's own history.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import time
from collections.abc import Awaitable, Callable
from typing import Any

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
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, pack_remb_fci, unwrap_rtx

from signaling.relay.packets import StreamParameters

logger = logging.getLogger(__name__)

AIORTC_VERSION = "1.16.0"

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
REMB_INTERVAL_S = 0.5
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


# ---------------------------------------------------------------- the packet path

# (media packet with any RTX unwrapped, its codec, the packet's NTP arrival time)
PacketHandler = Callable[[RtpPacket, RTCRtpCodecParameters, int], Awaitable[None]]


class PacketTap:
    """One receiver's RTP, taken before aiortc's receiver path.

    `full_receive` False (only packet legs, or nobody, watch this track): the tap does what a
    relay's receiver must and nothing more: RTCP statistics (aiortc's own receiver-report loop
    sends them), NACKs for lost packets and REMB from the bitrate estimator. True (a frame or
    transcoding leg needs frames): aiortc's whole receiver path runs as well.
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
        self._remb_sent_at = 0.0
        self._remb_bitrate = 0

    async def handle(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        receiver = self.receiver
        if not receiver._enabled:
            return
        codec = self._codecs.get(packet.payload_type)
        if codec is None:
            return
        media: RtpPacket | None = packet
        media_codec = codec
        if is_rtx(codec):
            original_ssrc = self._rtx_ssrc.get(packet.ssrc)
            apt = codec.parameters.get("apt")
            if (
                original_ssrc is not None
                and len(packet.payload) >= 2
                and isinstance(apt, int)
                and apt in self._codecs
            ):
                media = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
                media_codec = self._codecs[apt]
                self.retransmissions_received += 1
            else:
                media = None  # padding (bandwidth probing) or an unknown RTX stream
        self.packets += 1
        if media is not None:
            await self.on_packet(media, media_codec, arrival_time_ms)
        if self.full_receive:
            await receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms)
            return
        await self._receive_light(packet, codec, media, arrival_time_ms)

    def _remb_due(self, bitrate: int) -> bool:
        """REMB as libwebrtc paces it: at once when the estimate drops by 3 % or more,
        otherwise at most every REMB_INTERVAL_S (aiortc's estimator answers far more often)."""
        now = time.monotonic()
        if now - self._remb_sent_at < REMB_INTERVAL_S and bitrate >= 0.97 * self._remb_bitrate:
            return False
        self._remb_sent_at, self._remb_bitrate = now, bitrate
        return True

    async def _receive_light(
        self,
        packet: RtpPacket,
        codec: RTCRtpCodecParameters,
        media: RtpPacket | None,
        arrival_time_ms: int,
    ) -> None:
        """aiortc's `_handle_rtp_packet` minus depayloading, jitter buffer and decoder."""
        receiver = self.receiver
        rtcp_ssrc = getattr(receiver, RTCP_SSRC_ATTR)
        if self._estimator is not None and packet.extensions.abs_send_time is not None:
            remb = self._estimator.add(
                abs_send_time=packet.extensions.abs_send_time,
                arrival_time_ms=arrival_time_ms,
                payload_size=len(packet.payload) + packet.padding_size,
                ssrc=packet.ssrc,
            )
            if rtcp_ssrc is not None and remb is not None and self._remb_due(remb[0]):
                fci = pack_remb_fci(*remb)
                await receiver._send_rtcp(
                    RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=fci)
                )
        if self.packets & 0x1F == 1:  # "heard from" times, for getSynchronizationSources
            self._active[packet.ssrc] = clock.current_datetime()
        stream = self._streams.get(packet.ssrc)
        if stream is None:
            stream = self._streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stream.add(packet)
        if media is not None and self._nack is not None and self._nack.add(media):
            self.nacks_sent += 1
            await receiver._send_rtcp_nack(media.ssrc, sorted(self._nack.missing))


class PacketIngress:
    """A publisher's transport handing decrypted RTP to packet taps, one per receiver."""

    def __init__(self, transport: RTCDtlsTransport) -> None:
        self.transport = transport
        self.taps: dict[Any, PacketTap] = {}  # by receiver
        transport._handle_rtp_data = self.handle_rtp_data  # type: ignore[method-assign]

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
    return bool(sender.transport.state == "connected")


async def send_rtp(sender: RTCRtpSender, data: bytes) -> bool:
    """SRTP-protect `data` with the viewer's keys and send it on the viewer's transport."""
    try:
        await sender.transport._send_rtp(data)
    except ConnectionError:
        return False
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

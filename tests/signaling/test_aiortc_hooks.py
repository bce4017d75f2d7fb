"""The aiortc internals the relay relies on: these fail first if an aiortc upgrade moves them."""

from __future__ import annotations

import asyncio
import fractions
import inspect
import queue
from typing import Any

import aiortc
import av
import pytest
from aioice import Connection
from aiortc import (
    RTCCertificate,
    RTCConfiguration,
    RTCDtlsTransport,
    RTCIceGatherer,
    RTCIceTransport,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
)
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket, RtpPacket

from signaling.relay import hooks
from signaling.relay.forwarding import SlotTrack

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=100)


def _transport() -> RTCDtlsTransport:
    ice = RTCIceTransport(RTCIceGatherer(iceServers=[]))
    return RTCDtlsTransport(ice, [RTCCertificate.generateCertificate()])


def test_aiortc_is_the_pinned_version() -> None:
    assert aiortc.__version__ == hooks.AIORTC_VERSION


async def test_private_attributes_and_signatures_exist() -> None:
    receiver = RTCRtpReceiver("video", _transport())
    assert isinstance(getattr(receiver, hooks.DECODER_QUEUE_ATTR), queue.Queue)
    assert getattr(receiver, hooks.RTX_SSRC_ATTR) == {}
    assert getattr(receiver, hooks.STARTED_ATTR) is False
    assert list(inspect.signature(receiver._handle_rtp_packet).parameters) == [
        "packet",
        "arrival_time_ms",
    ]
    assert list(inspect.signature(receiver._send_rtcp_pli).parameters) == ["media_ssrc"]
    # The decoder thread is handed the queue attribute when the receiver starts.
    assert "self.__decoder_queue" in inspect.getsource(RTCRtpReceiver.receive)
    assert "self.__decoder_queue.put((codec, encoded_frame))" in inspect.getsource(
        RTCRtpReceiver._handle_rtp_packet
    )

    sender = RTCRtpSender("video", _transport())
    assert list(inspect.signature(sender._send_keyframe).parameters) == []
    assert "self._send_keyframe()" in inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "self.__encoder.pack(data)" in inspect.getsource(RTCRtpSender._next_encoded_frame)

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver("video")
    assert isinstance(transceiver._codecs, list)
    connection = transceiver.receiver.transport.transport.iceGatherer._connection
    assert isinstance(connection, Connection)
    assert list(inspect.signature(connection.get_component_candidates).parameters) == [
        "component",
        "addresses",
        "timeout",
    ]
    await pc.close()


def _vp8_rtp(sequence: int, timestamp: int, frame: bytes, *, marker: int) -> RtpPacket:
    packet = RtpPacket(payload_type=VP8.payloadType, sequence_number=sequence, timestamp=timestamp)
    packet.ssrc = 1234
    packet.marker = marker
    packet.payload = b"\x10" + frame  # VP8 payload descriptor: start of partition 0
    return packet


async def test_tap_receives_encoded_frames_and_the_decoder_gets_nothing() -> None:
    receiver = RTCRtpReceiver("video", _transport())
    receiver._track = RemoteStreamTrack(kind="video")
    seen: list[tuple[str, JitterFrame]] = []
    tap = hooks.install_encoded_frame_tap(receiver, lambda c, f: seen.append((c.name, f)))
    await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8]))
    try:
        keyframe, interframe = b"\x00" + b"k" * 20, b"\x01" + b"i" * 20
        await receiver._handle_rtp_packet(_vp8_rtp(1, 3000, keyframe, marker=1), 0)
        await receiver._handle_rtp_packet(_vp8_rtp(2, 6000, interframe, marker=1), 0)
        await receiver._handle_rtp_packet(_vp8_rtp(3, 9000, interframe, marker=1), 0)
        # The jitter buffer completes a frame when the next one starts.
        assert [(name, f.data) for name, f in seen] == [("VP8", keyframe), ("VP8", interframe)]
        assert [f.timestamp for _, f in seen] == [0, 3000]
        assert tap.frames_tapped == 2 and tap.frames_to_decoder == 0 and tap.empty()
    finally:
        await receiver.stop()
    # Stopping still ends the decoder thread, which ends the remote track.
    await asyncio.wait_for(receiver.track._queue.get(), 2)


async def test_tap_refuses_a_started_receiver() -> None:
    receiver = RTCRtpReceiver("audio", _transport())
    receiver._track = RemoteStreamTrack(kind="audio")
    await receiver.receive(RTCRtpReceiveParameters(codecs=[]))
    try:
        with pytest.raises(RuntimeError):
            hooks.install_encoded_frame_tap(receiver, lambda c, f: None)
    finally:
        await receiver.stop()


@pytest.mark.parametrize("fmt", [RTCP_PSFB_PLI, RTCP_PSFB_FIR])
async def test_viewer_keyframe_requests_reach_the_callback(fmt: int) -> None:
    sender = RTCRtpSender("video", _transport())
    calls: list[int] = []
    hooks.on_keyframe_request(sender, lambda: calls.append(1))
    await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=fmt, ssrc=1, media_ssrc=sender._ssrc))
    assert calls == [1]


async def test_sender_packs_packets_without_encoding() -> None:
    slot = SlotTrack("video", VP8)
    sender = RTCRtpSender(slot, _transport())
    packet = av.Packet(b"\x00" + b"v" * 3000)
    packet.pts = 90000
    packet.time_base = fractions.Fraction(1, 90000)
    slot._queue.put_nowait(packet)
    frame = await sender._next_encoded_frame(VP8)
    assert frame is not None
    assert frame.timestamp == 90000
    assert len(frame.payloads) == 3  # re-packetized into MTU-sized RTP payloads
    assert b"".join(p[4:] for p in frame.payloads) == bytes(packet)  # 4-byte VP8 descriptor
    encoder: Any = getattr(sender, "_RTCRtpSender__encoder")
    assert isinstance(encoder, Vp8Encoder) and encoder.codec is None  # libvpx never opened
    slot.stop()


async def test_loopback_hook_offers_127_0_0_1() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio")
    hooks.offer_loopback_candidate(pc)
    await pc.setLocalDescription(await pc.createOffer())
    assert " 127.0.0.1 " in pc.localDescription.sdp
    await pc.close()

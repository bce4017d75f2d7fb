"""The aiortc internals the relay relies on: these fail first if an aiortc upgrade moves them."""

from __future__ import annotations

import asyncio
import fractions
import importlib.metadata
import inspect
import queue
import random
import re
from typing import Any

import aiortc
import av
import pytest
from aioice import Candidate, Connection
from aioice.ice import CandidatePair, StunProtocol, server_reflexive_candidate
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
from aiortc.rate import BandwidthUsage, OveruseEstimator, RateCounter, RemoteBitrateEstimator
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpRtxParameters,
)
from aiortc.rtcrtpreceiver import NackGenerator, RemoteStreamTrack, StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    wrap_rtx,
)
from pylibsrtp import Policy, Session

from signaling.relay import hooks, udp_mux
from signaling.relay.forwarding import SlotTrack
from signaling.relay.packets import ABS_SEND_TIME_URI, RtpView
from tests.support.media_ports import free_udp_port
from tests.support.waiting import wait_for

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


# ---------------------------------------------------------------- the packet path


async def test_packet_path_internals_exist() -> None:
    transport = _transport()
    assert list(inspect.signature(transport._handle_rtp_data).parameters) == [
        "data",
        "arrival_time_ms",
    ]
    assert "await self._handle_rtp_data(data, arrival_time_ms=arrival_time_ms)" in (
        inspect.getsource(RTCDtlsTransport._recv_next)
    )
    assert isinstance(transport._rtp_header_extensions_map, HeaderExtensionsMap)
    assert list(inspect.signature(transport._rtp_router.route_rtp).parameters) == ["packet"]
    assert list(inspect.signature(transport._send_rtp).parameters) == ["data"]

    for kind, nack in (("video", NackGenerator), ("audio", type(None))):
        receiver = RTCRtpReceiver(kind, transport)
        assert isinstance(getattr(receiver, hooks.CODECS_ATTR), dict)
        assert isinstance(getattr(receiver, hooks.REMOTE_STREAMS_ATTR), dict)
        assert isinstance(getattr(receiver, hooks.ACTIVE_SSRC_ATTR), dict)
        assert isinstance(getattr(receiver, hooks.NACK_GENERATOR_ATTR), nack)
        assert getattr(receiver, hooks.RTCP_SSRC_ATTR) is None
        estimator = getattr(receiver, hooks.BITRATE_ESTIMATOR_ATTR)
        assert estimator is None or isinstance(estimator, RemoteBitrateEstimator)
        assert receiver._enabled is True
    assert list(inspect.signature(receiver._send_rtcp_nack).parameters) == [
        "media_ssrc",
        "lost",
    ]
    # The receiver-report loop reads the statistics the light path keeps.
    assert "self.__remote_streams.items()" in inspect.getsource(RTCRtpReceiver._run_rtcp)

    sender = RTCRtpSender("video", transport)
    for name in (
        hooks.SENDER_PACKET_COUNT_ATTR,
        hooks.SENDER_OCTET_COUNT_ATTR,
        hooks.SENDER_NTP_ATTR,
        hooks.SENDER_RTP_TIMESTAMP_ATTR,
    ):
        assert sender.__dict__[name] == 0
    assert isinstance(sender._rtx_ssrc, int)
    assert list(inspect.signature(sender._retransmit).parameters) == ["sequence_number"]
    assert "await self._retransmit(seq)" in inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    sender_report = inspect.getsource(RTCRtpSender._run_rtcp)
    assert "packet_count=self.__packet_count" in sender_report
    assert "rtp_timestamp=self.__rtp_timestamp" in sender_report


RTX = RTCRtpCodecParameters(
    mimeType="video/rtx", clockRate=90000, payloadType=101, parameters={"apt": 100}
)


async def test_packet_tap_hands_on_packets_and_keeps_receiver_duties() -> None:
    transport = _transport()
    receiver = RTCRtpReceiver("video", transport)
    receiver._track = RemoteStreamTrack(kind="video")
    seen: list[tuple[int, bytes]] = []

    def on_packet(packet: RtpView, codec: RTCRtpCodecParameters, arrival: int) -> None:
        seen.append((packet.sequence_number, packet.payload))

    tap = hooks.install_packet_tap(receiver, on_packet)
    params = RTCRtpReceiveParameters(codecs=[VP8, RTX])
    params.encodings = [
        RTCRtpDecodingParameters(ssrc=1234, payloadType=100, rtx=RTCRtpRtxParameters(ssrc=5678))
    ]
    await receiver.receive(params)
    receiver._set_rtcp_ssrc(42)
    sent: list[Any] = []

    async def send_rtcp(packet: Any) -> None:
        sent.append(packet)

    receiver._send_rtcp = send_rtcp  # type: ignore[method-assign]
    try:
        frame = b"\x00" + b"k" * 20
        for sequence in (1, 2, 4):  # 3 is lost
            data = _vp8_rtp(sequence, 3000 * sequence, frame, marker=1).serialize()
            await transport._handle_rtp_data(data, arrival_time_ms=0)
        assert [s for s, _ in seen] == [1, 2, 4]
        assert seen[0][1] == b"\x10" + frame  # the payload as sent, descriptor and all
        # RTCP goes out from a task: the packet path itself never awaits.
        await wait_for(lambda: any(isinstance(p, RtcpRtpfbPacket) for p in sent), 5, "a NACK")
        nacks = [p for p in sent if isinstance(p, RtcpRtpfbPacket)]
        assert len(nacks) == 1 and nacks[0].lost == [3] and nacks[0].media_ssrc == 1234
        assert tap.nacks_sent == 1

        # The retransmission (RTX) is unwrapped and handed on as the original packet.
        rtx = wrap_rtx(_vp8_rtp(3, 9000, frame, marker=1), 101, 77, 5678)
        await transport._handle_rtp_data(rtx.serialize(), arrival_time_ms=0)
        assert seen[-1][0] == 3 and tap.retransmissions_received == 1

        # No frame was assembled (no jitter buffer on the light path); statistics were kept.
        # (aiortc's receiver-report loop sends these to the publisher.)
        streams = getattr(receiver, hooks.REMOTE_STREAMS_ATTR)
        assert streams[1234].packets_received == 3 and streams[1234].packets_lost == 1
        assert receiver.getSynchronizationSources()
    finally:
        await receiver.stop()
        hooks.remove_packet_tap(receiver)


async def test_the_light_path_feeds_the_bitrate_estimator_and_sends_remb() -> None:
    receiver = RTCRtpReceiver("video", _transport())
    receiver._track = RemoteStreamTrack(kind="video")
    tap = hooks.install_packet_tap(receiver, lambda packet, codec, arrival: None)
    params = RTCRtpReceiveParameters(codecs=[VP8])
    params.encodings = [RTCRtpDecodingParameters(ssrc=1234, payloadType=100)]
    await receiver.receive(params)
    receiver._set_rtcp_ssrc(42)
    sent: list[Any] = []

    async def send_rtcp(packet: Any) -> None:
        sent.append(packet)

    receiver._send_rtcp = send_rtcp  # type: ignore[method-assign]
    calls = []
    estimator = getattr(receiver, hooks.BITRATE_ESTIMATOR_ATTR)
    original = estimator.add
    estimator.add = lambda **kw: calls.append(kw) or original(**kw)
    try:
        # Five seconds of 20 fps video, 4 packets per frame sent together (one burst each).
        for frame in range(100):
            for index in range(4):
                tap.handle_now(
                    RtpView(
                        ssrc=1234, payload_type=100, sequence_number=4 * frame + index,
                        timestamp=4500 * frame, marker=int(index == 3), payload=b"\x00" * 1000,
                        abs_send_time=(frame * 13107 + index) & 0xFFFFFF,
                    ),
                    1000 + 50 * frame,
                )  # fmt: skip
        await wait_for(lambda: any(isinstance(p, RtcpPsfbPacket) for p in sent), 5, "a REMB packet")
        # One estimator call per burst, carrying the burst's bytes.
        assert len(calls) == 99 and {c["payload_size"] for c in calls} == {4000}
    finally:
        await receiver.stop()
        hooks.remove_packet_tap(receiver)


def test_the_quick_rate_counter_gives_aiortcs_figures() -> None:
    rng = random.Random(3)
    theirs, ours = RateCounter(1000, 8000), hooks.SparseRateCounter(1000, 8000)
    now = 5_000
    for step in range(5_000):
        # bursts, pauses longer than the window, several packets in one millisecond
        now += rng.choice([0, 0, 1, 3, 20, 50]) if step % 700 else 1_500
        size = rng.randrange(50, 1_200)
        assert ours.rate(now) == theirs.rate(now)
        theirs.add(size, now)
        ours.add(size, now)
        assert ours.rate(now) == theirs.rate(now)
    ours.reset()
    theirs.reset()
    assert ours.rate(now) is None and theirs.rate(now) is None


def test_the_quick_overuse_estimator_gives_aiortcs_figures() -> None:
    rng = random.Random(5)
    theirs, ours = OveruseEstimator(), hooks.QuickOveruseEstimator()
    for now in range(0, 200_000, 50):
        delta = rng.uniform(-5, 60)
        args = (rng.randrange(0, 80), delta, rng.randrange(-3_000, 3_000), BandwidthUsage.NORMAL)
        theirs.update(*args, now)
        ours.update(*args, now)
        assert (ours.offset(), ours.var_noise) == (theirs.offset(), theirs.var_noise)


async def test_a_tapped_receivers_estimator_is_the_quick_one() -> None:
    receiver = RTCRtpReceiver("video", _transport())
    hooks.install_packet_tap(receiver, lambda packet, codec, arrival: None)
    estimator = getattr(receiver, hooks.BITRATE_ESTIMATOR_ATTR)
    assert isinstance(estimator.incoming_bitrate, hooks.SparseRateCounter)
    assert isinstance(estimator.estimator, hooks.QuickOveruseEstimator)
    hooks.remove_packet_tap(receiver)


async def test_viewer_nacks_and_sender_reports_go_through_the_hooks() -> None:
    sender = RTCRtpSender("video", _transport())
    asked: list[int] = []

    async def answer(sequence: int) -> bool:
        asked.append(sequence)
        return True

    hooks.on_nack(sender, answer)
    nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=sender._ssrc)
    nack.lost = [10, 11]
    await sender._handle_rtcp_packet(nack)
    assert asked == [10, 11]

    hooks.record_sent(sender, ntp=123 << 32, rtp_timestamp=9000, octets=1000)
    [outbound] = [s for s in (await sender.getStats()).values() if s.type == "outbound-rtp"]
    assert outbound.packetsSent == 1 and outbound.bytesSent == 1000


async def test_fast_path_internals_exist() -> None:
    """What `PacketIngress.take` and `send_rtp_now` use, in place of the receive loop."""
    transport = _transport()
    assert transport._rx_srtp is None and transport._tx_srtp is None
    assert transport._state is DtlsState.NEW and DtlsState.CONNECTED.name == "CONNECTED"
    # The receive loop decrypts SRTP with _rx_srtp; _send_rtp encrypts with _tx_srtp and
    # sends on the ICE transport, whose _send is aioice's Connection.send (component 1).
    receive = inspect.getsource(RTCDtlsTransport._recv_next)
    assert "data = self._rx_srtp.unprotect(data)" in receive
    assert "data = await self.transport._recv()" in receive
    send = inspect.getsource(RTCDtlsTransport._send_rtp)
    assert "data = self._tx_srtp.protect(data)" in send
    assert "await self.transport._send(data)" in send
    ice_init = inspect.getsource(RTCIceTransport.__init__)
    assert "self._send = self._connection.send" in ice_init
    assert "await self.sendto(data, 1)" in inspect.getsource(Connection.send)
    sendto = inspect.getsource(Connection.sendto)
    assert "active_pair = self._nominated.get(component)" in sendto
    assert "await active_pair.protocol.send_data(data, active_pair.remote_addr)" in sendto
    assert "self.transport.sendto(data, addr)" in inspect.getsource(StunProtocol.send_data)
    assert "self._queue.put_nowait((data, component))" in inspect.getsource(
        Connection.data_received
    )
    connection = transport.transport._connection
    assert isinstance(connection, Connection)
    assert connection._nominated == {} and connection._protocols == []
    # The router reads only ssrc and payload_type of a packet.
    route = inspect.getsource(transport._rtp_router.route_rtp)
    assert "packet.ssrc" in route and "packet.payload_type" in route
    assert "packet." not in route.replace("packet.ssrc", "").replace("packet.payload_type", "")
    ids = getattr(transport._rtp_header_extensions_map, hooks.EXTENSION_IDS_ATTR)
    assert ids.abs_send_time is None and ids.audio_level is None
    # StreamStatistics and NackGenerator read only what RtpView carries.
    for method in (StreamStatistics.add, NackGenerator.add):
        used = set(re.findall(r"packet\.(\w+)", inspect.getsource(method)))
        assert used <= {"sequence_number", "timestamp"}, used


def _srtp_pair() -> tuple[Session, Session]:
    key = bytes(range(30))
    return (
        Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)),
        Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND)),
    )


def test_pylibsrtp_is_the_pinned_version() -> None:
    assert importlib.metadata.version("pylibsrtp") == hooks.PYLIBSRTP_VERSION


def test_lean_srtp_protects_and_unprotects_as_pylibsrtp_does() -> None:
    theirs_out, theirs_in = _srtp_pair()
    ours_out, ours_in = _srtp_pair()
    lean_out, lean_in = hooks.LeanSrtp(ours_out), hooks.LeanSrtp(ours_in)
    for sequence in range(50):
        packet = _vp8_rtp(sequence, 3000 * sequence, bytes([sequence]) * 900, marker=1).serialize()
        protected = lean_out.protect(packet)
        assert protected == theirs_out.protect(packet)  # same keys, same bytes on the wire
        assert lean_in.unprotect(protected) == theirs_in.unprotect(protected) == packet
        # A replayed packet and a tampered one are refused (None: dropped), as pylibsrtp refuses.
        assert lean_in.unprotect(protected) is None
        assert lean_in.unprotect(protected[:-1] + bytes([protected[-1] ^ 1])) is None
    assert lean_out.protect(b"\x80" * 1500) is None  # no room for the trailer
    # aiortc's RTCP still goes through the same session, between our calls.
    rtcp = bytes.fromhex("80c8000600000001") + b"\x00" * 20
    assert theirs_in.unprotect_rtcp(ours_out.protect_rtcp(rtcp)) == rtcp


async def test_fast_path_takes_srtp_in_the_datagram_callback_and_sends_at_once() -> None:
    transport = _transport()
    receiver = RTCRtpReceiver("video", transport)
    receiver._track = RemoteStreamTrack(kind="video")
    seen: list[RtpView] = []
    tap = hooks.install_packet_tap(receiver, lambda packet, codec, arrival: seen.append(packet))
    params = RTCRtpReceiveParameters(
        codecs=[VP8, RTX],
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=3, uri=ABS_SEND_TIME_URI),
        ],
    )
    params.encodings = [
        RTCRtpDecodingParameters(ssrc=1234, payloadType=100, rtx=RTCRtpRtxParameters(ssrc=5678))
    ]
    transport._rtp_header_extensions_map.configure(params)
    transport._register_rtp_receiver(receiver, params)
    await receiver.receive(params)
    publisher_srtp, transport._rx_srtp = _srtp_pair()
    transport._state = DtlsState.CONNECTED
    connection = transport.transport._connection
    queued: list[bytes] = []
    ingress = getattr(transport, hooks.INGRESS_MARK)
    ingress._queue_datagram = lambda data, component: queued.append(data)
    try:
        packet = _vp8_rtp(7, 21000, b"\x00" + b"k" * 20, marker=1)
        packet.extensions.abs_send_time = 0x123456
        wire = packet.serialize(transport._rtp_header_extensions_map)
        connection.data_received(publisher_srtp.protect(wire), 1)
        # Handed on synchronously, decrypted, with the header fields the relay uses.
        assert [(p.sequence_number, p.timestamp, p.marker, p.abs_send_time) for p in seen] == [
            (7, 21000, 1, 0x123456)
        ]
        assert seen[0].payload == packet.payload and ingress.fast_packets == 1
        assert queued == [] and tap.packets == 1
        # A frame leg needs aiortc's receiver: the datagram goes to the receive loop's queue.
        tap.full_receive = True
        protected = publisher_srtp.protect(_vp8_rtp(8, 24000, b"\x01", marker=1).serialize())
        connection.data_received(protected, 1)
        assert queued == [protected] and len(seen) == 1
        # RTCP and DTLS always go through the queue.
        connection.data_received(b"\x81\xc9" + b"\x00" * 30, 1)
        connection.data_received(b"\x16\xfe\xfd" + b"\x00" * 30, 1)
        assert len(queued) == 3
    finally:
        await receiver.stop()
        hooks.remove_packet_tap(receiver)

    # Sending: protected with the viewer's keys and handed to the nominated pair's socket.
    viewer = _transport()
    sender = RTCRtpSender("video", viewer)
    assert not hooks.send_rtp_now(sender, wire)  # not connected
    viewer._tx_srtp, viewer_rx = _srtp_pair()
    viewer._state = DtlsState.CONNECTED
    sent: list[tuple[bytes, Any]] = []

    class Socket:
        def sendto(self, data: bytes, addr: Any) -> None:
            sent.append((data, addr))

    protocol = StunProtocol(viewer.transport._connection)
    protocol.transport = Socket()  # type: ignore[assignment]
    pair = CandidatePair(protocol, Candidate("f", 1, "udp", 1, "127.0.0.1", 9, "host"))
    viewer.transport._connection._nominated[1] = pair
    assert hooks.send_rtp_now(sender, wire)
    [(data, addr)] = sent
    assert addr == ("127.0.0.1", 9) and viewer_rx.unprotect(data) == wire


# ---------------------------------------------------------------- aioice (udp_mux.py)


def test_aioice_is_the_pinned_version() -> None:
    assert importlib.metadata.version("aioice") == udp_mux.AIOICE_VERSION


def test_the_aioice_internals_the_media_ports_replace_are_where_they_were() -> None:
    gather = inspect.signature(Connection.get_component_candidates)
    assert list(gather.parameters) == ["self", "component", "addresses", "timeout"]
    # gather_candidates hands each component's host addresses to get_component_candidates.
    source = inspect.getsource(Connection.gather_candidates)
    assert "self.get_component_candidates(component=component, addresses=addresses)" in source
    connection = Connection(ice_controlling=False)
    assert connection.local_username == connection._local_username
    connection._local_username = "x" * udp_mux.UFRAG_LENGTH
    assert connection.local_username == "x" * udp_mux.UFRAG_LENGTH
    assert connection._protocols == [] and connection.stun_server is None
    assert isinstance(connection.local_password, str)
    # The closing connection closes every protocol in _protocols (our shared ones too).
    assert "for protocol in self._protocols:" in inspect.getsource(Connection.close)
    assert list(inspect.signature(Connection.data_received).parameters) == [
        "self", "data", "component",
    ]  # fmt: skip
    assert list(inspect.signature(StunProtocol.__init__).parameters) == ["self", "receiver"]
    assert list(inspect.signature(StunProtocol.request).parameters) == [
        "self", "request", "addr", "integrity_key", "retransmissions",
    ]  # fmt: skip
    # StunProtocol sends through self.transport and routes what it receives by class.
    sending = inspect.getsource(StunProtocol.send_stun) + inspect.getsource(StunProtocol.send_data)
    assert sending.count("self.transport.sendto(") == 2
    receiving = inspect.getsource(StunProtocol.datagram_received)
    assert "self.receiver.data_received(data, self.local_candidate.component)" in receiving
    assert "self.receiver.request_received(message, addr, self)" in receiving
    assert "self.transactions" in receiving
    assert "self.transport.close()" in inspect.getsource(StunProtocol.close)
    assert list(inspect.signature(server_reflexive_candidate).parameters) == [
        "protocol", "stun_server",
    ]  # fmt: skip
    assert isinstance(RTCIceGatherer(iceServers=[])._connection, Connection)


async def test_two_ice_agents_connect_through_a_shared_media_port() -> None:
    """End to end on aioice alone: gathering, checks both ways, data, close and forget."""
    shared = udp_mux.MediaPorts(udp_port=free_udp_port(), loopback=True)
    other = udp_mux.MediaPorts(announced_ips=("127.0.0.1",))  # its own socket, 127.0.0.1 only
    relay_side, client = Connection(ice_controlling=False), Connection(ice_controlling=True)
    shared.install_connection(relay_side)
    other.install_connection(client)
    try:
        await asyncio.gather(relay_side.gather_candidates(), client.gather_candidates())
        assert {c.port for c in relay_side.local_candidates} == {shared.udp_port}
        assert "127.0.0.1" in {c.host for c in relay_side.local_candidates}
        for a, b in ((relay_side, client), (client, relay_side)):
            for candidate in b.local_candidates:
                await a.add_remote_candidate(candidate)
            await a.add_remote_candidate(None)
            a.remote_username, a.remote_password = b.local_username, b.local_password
        async with asyncio.timeout(30):
            await asyncio.gather(relay_side.connect(), client.connect())
            await client.send(b"hello relay")
            assert await relay_side.recv() == b"hello relay"
            await relay_side.send(b"hello client")
            assert await client.recv() == b"hello client"
        assert shared.shared is not None
        assert shared.shared.ufrags == {relay_side.local_username}
        assert shared.shared.addresses  # the client's address, learned from its checks
    finally:
        await relay_side.close()
        await client.close()
    assert shared.shared.ufrags == frozenset() and shared.shared.addresses == frozenset()
    await asyncio.sleep(0)  # the client's own socket closes with its last protocol
    assert other.stats() == {}
    await shared.close()
    await other.close()

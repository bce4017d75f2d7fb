"""The relay's packet path: header rewriting, NACK repair, keyframe requests, reconnects."""

from __future__ import annotations

import asyncio
import itertools
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from app.core.config import Settings
from signaling.relay import MediaRelay, hooks
from signaling.relay.forwarding import SlotTrack
from signaling.relay.packets import (
    ABS_SEND_TIME_URI,
    AUDIO_LEVEL_URI,
    MID_URI,
    StreamParameters,
    ViewerStream,
    parse_rtp,
    vp8_keyframe_start,
)
from tests.signaling.peers import ClientPeer, Peers
from tests.support.media_ports import media_ports
from tests.support.waiting import wait_for

ROOM = "visit-packets"
VIDEO = StreamParameters(
    ssrc=0x11111111,
    payload_type=96,
    clock_rate=90000,
    mid="1",
    rtx_ssrc=0x22222222,
    rtx_payload_type=97,
    extension_ids={MID_URI: 4, ABS_SEND_TIME_URI: 5},
)
KEY = b"\x90\x80\x05" + b"\x00" + b"k" * 40  # X, S, picture id 5; VP8 tag bit 0 = 0: key
DELTA = b"\x90\x80\x06" + b"\x01" + b"d" * 40  # the same descriptor, an inter frame


@pytest.fixture
async def relay() -> AsyncIterator[MediaRelay]:
    relay = MediaRelay(ice_servers=[], forwarding="packet", media_ports=media_ports())
    yield relay
    await relay.close()


@pytest.fixture
async def peers(relay: MediaRelay) -> AsyncIterator[Peers]:
    async with Peers(relay, ROOM) as made:
        yield made


def _send(stream: ViewerStream, seq: int, ts: int, payload: bytes, **kw: Any) -> bytes | None:
    options: dict[str, Any] = {
        "ssrc": 1234,
        "marker": 1,
        "keyframe": vp8_keyframe_start(payload),
        "now": 100.0,
        "abs_send_time": 0x123456,
    }
    options.update(kw)
    return stream.rewrite(sequence=seq, timestamp=ts, payload=payload, **options)


def test_vp8_keyframes_are_told_from_the_payload_descriptor_alone() -> None:
    assert vp8_keyframe_start(KEY)
    assert not vp8_keyframe_start(DELTA)
    assert vp8_keyframe_start(b"\x10\x00rest")  # no extension bits
    assert not vp8_keyframe_start(b"\x00\x00rest")  # not the start of a partition
    assert not vp8_keyframe_start(b"\x11\x00rest")  # partition 1
    assert vp8_keyframe_start(b"\x90\xe0\x80\x05\x01\x00x")  # 15-bit picture id, L, T
    assert not vp8_keyframe_start(b"\x90")


def test_a_viewer_stream_rewrites_headers_and_leaves_the_payload_alone() -> None:
    stream = ViewerStream("video", VIDEO)
    assert _send(stream, 500, 9000, DELTA) is None  # waits for a keyframe
    data = _send(stream, 501, 12000, KEY)
    assert data is not None
    packet = RtpPacket.parse(data)
    assert packet.ssrc == VIDEO.ssrc and packet.payload_type == VIDEO.payload_type
    assert packet.payload == KEY and packet.marker == 1
    first_seq = packet.sequence_number
    # The viewer's own extension ids: mid "1" at id 4, abs-send-time at id 5.
    assert data[12:14] == b"\xbe\xde"
    extensions = data[16 : 16 + 4 * struct.unpack("!H", data[14:16])[0]]
    assert extensions.startswith(bytes([(4 << 4) | 0]) + b"1" + bytes([(5 << 4) | 2]))
    assert extensions[3:6] == b"\x12\x34\x56"

    second = RtpPacket.parse(_send(stream, 502, 15000, DELTA) or b"")
    assert second.sequence_number == (first_seq + 1) & 0xFFFF
    assert second.timestamp - packet.timestamp == 3000
    # Padding only: the viewer sees no gap.
    stream.skip(503)
    third = RtpPacket.parse(_send(stream, 504, 18000, DELTA) or b"")
    assert third.sequence_number == (first_seq + 2) & 0xFFFF


def test_nacks_are_answered_from_history_as_rtx_and_old_packets_are_gone() -> None:
    stream = ViewerStream("video", VIDEO)
    original = _send(stream, 10, 0, KEY)
    assert original is not None
    seq = RtpPacket.parse(original).sequence_number
    rtx = stream.retransmission(seq)
    assert rtx is not None
    parsed = RtpPacket.parse(rtx)
    assert parsed.payload_type == VIDEO.rtx_payload_type and parsed.ssrc == VIDEO.rtx_ssrc
    assert parsed.payload == struct.pack("!H", seq) + KEY  # RFC 4588: OSN, then the payload
    assert stream.retransmission((seq + 1) & 0xFFFF) is None  # never sent

    plain = ViewerStream("audio", StreamParameters(ssrc=7, payload_type=111, clock_rate=48000))
    sent = _send(plain, 1, 960, b"opus", keyframe=False)  # audio never waits
    assert sent is not None
    assert plain.retransmission(RtpPacket.parse(sent).sequence_number) == sent
    for n in range(2, 2 + 600):  # the bounded history forgets
        _send(plain, n, 960 * n, b"opus", keyframe=False)
    assert plain.retransmission(RtpPacket.parse(sent).sequence_number) is None


def test_sequence_and_timestamps_continue_across_publishers_and_keyframe_waits() -> None:
    stream = ViewerStream("video", VIDEO)
    last = RtpPacket.parse(_send(stream, 100, 1000, KEY, now=10.0) or b"")
    stream.restart()  # another publisher (or the same one reconnected)
    assert _send(stream, 40000, 777, DELTA, ssrc=99, now=10.5) is None
    resumed = RtpPacket.parse(_send(stream, 40001, 780, KEY, ssrc=99, now=10.5) or b"")
    assert resumed.sequence_number == (last.sequence_number + 1) & 0xFFFF
    assert resumed.ssrc == last.ssrc
    # Half a second later in wall-clock time: the timestamp advanced by as much.
    assert (resumed.timestamp - last.timestamp) & 0xFFFFFFFF == 45000
    # A late packet from before the new start is not sent: the viewer never had its frame.
    assert _send(stream, 39990, 700, DELTA, ssrc=99) is None
    # A new SSRC from the same publisher restarts at its next keyframe, still continuous.
    assert _send(stream, 5, 5, DELTA, ssrc=100) is None
    again = RtpPacket.parse(_send(stream, 6, 6, KEY, ssrc=100, now=10.6) or b"")
    assert again.sequence_number == (resumed.sequence_number + 1) & 0xFFFF


def _video_sender(peer: ClientPeer) -> RTCRtpSender:
    return next(t.sender for t in peer.pc.getTransceivers() if t.kind == "video" and t.sender.track)


def _receiver_of(peer: ClientPeer, relay: MediaRelay, remote: str) -> RTCRtpReceiver:
    seen = peer.video_from(relay, ROOM, remote)
    mid = next(m for m, r in peer.received.items() if r is seen)
    return next(t.receiver for t in peer.pc.getTransceivers() if t.mid == mid)


def _slot_showing(relay: MediaRelay, viewer: str, publisher: str) -> SlotTrack:
    viewer_side = relay.participant(ROOM, viewer)
    publisher_side = relay.participant(ROOM, publisher)
    assert viewer_side is not None and publisher_side is not None
    source = publisher_side.published["video"]
    return next(s for s in viewer_side.all_slot_tracks() if s.source is source)


def test_the_light_header_parse_reads_what_aiortc_reads() -> None:
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri=MID_URI),
                RTCRtpHeaderExtensionParameters(id=3, uri=ABS_SEND_TIME_URI),
                RTCRtpHeaderExtensionParameters(id=14, uri=AUDIO_LEVEL_URI),
            ]
        )
    )
    for csrc, padding, level in itertools.product((0, 2), (0, 7), (None, (True, 42))):
        packet = RtpPacket(payload_type=111, sequence_number=65535, timestamp=0xFFFFFFFE)
        packet.ssrc, packet.marker, packet.payload = 0xDEADBEEF, 1, b"opus" * 10
        packet.csrc = list(range(csrc))
        packet.padding_size = padding
        packet.extensions.mid = "0"
        packet.extensions.abs_send_time = 0xABCDEF
        packet.extensions.audio_level = level
        data = packet.serialize(extensions)
        view = parse_rtp(data, abs_send_time_id=3, audio_level_id=14)
        assert view is not None
        parsed = RtpPacket.parse(data, extensions)
        for name in ("ssrc", "payload_type", "sequence_number", "timestamp", "marker", "payload"):
            assert getattr(view, name) == getattr(parsed, name), name
        assert view.padding_size == parsed.padding_size
        assert view.abs_send_time == parsed.extensions.abs_send_time
        assert view.audio_level == parsed.extensions.audio_level
    # Malformed: too short, wrong version, extension or padding past the end.
    assert parse_rtp(b"\x80" * 11, 3, 14) is None
    assert parse_rtp(b"\x40" + b"\x00" * 20, 3, 14) is None
    assert parse_rtp(b"\x90\x00" + b"\x00" * 10 + b"\xbe\xde\x00\x09", 3, 14) is None
    assert parse_rtp(b"\xa0\x00" + b"\x00" * 10 + b"\x40", 3, 14) is None


async def test_five_percent_loss_on_the_publishers_leg_is_repaired_by_nack(
    relay: MediaRelay, peers: Peers
) -> None:
    patient, provider = await peers.join("patient", "provider")
    seen = provider.video_from(relay, ROOM, "patient")
    await wait_for(lambda: seen.frames >= 10, 15, "the provider's first pictures")

    # Every 20th first transmission of the patient's video is lost on the way to the relay;
    # retransmissions (RTX, another payload type) get through.
    sender = _video_sender(patient)
    transport = sender.transport
    original = transport._send_rtp
    dropped = [0, 0]  # media packets seen, dropped

    async def lossy(data: bytes) -> None:
        if len(data) > 12 and not 72 <= data[1] & 0x7F <= 76:  # RTP, not RTCP
            ssrc = struct.unpack("!I", data[8:12])[0]
            if ssrc == sender._ssrc:
                dropped[0] += 1
                if dropped[0] % 20 == 0:
                    dropped[1] += 1
                    return
        await original(data)

    transport._send_rtp = lossy  # type: ignore[method-assign]
    patient_side = relay.participant(ROOM, "patient")
    assert patient_side is not None
    tap = patient_side.published["video"].packet_tap
    slot = _slot_showing(relay, "provider", "patient")
    frames, requests, keyframes = seen.frames, slot.keyframe_requests_received, seen.keyframes
    await wait_for(
        lambda: seen.frames >= frames + 200 and dropped[1] >= 10, 60, "pictures under loss"
    )
    assert tap.nacks_sent > 0 and tap.retransmissions_received > 0
    # Every lost packet came back in time: the provider's decoder never lost the picture
    # (no PLI, no new keyframe needed) and decoded every frame.
    assert slot.keyframe_requests_received == requests
    assert seen.keyframes == keyframes
    assert slot.stream is not None and slot.stream.packets_sent > 0
    # Taken in the datagram callback (no frame leg watches it), not the receive loop.
    assert hooks.fast_packets(tap.receiver) > 0


async def test_a_viewers_keyframe_request_reaches_the_publisher(
    relay: MediaRelay, peers: Peers
) -> None:
    patient, provider = await peers.join("patient", "provider")
    seen = provider.video_from(relay, ROOM, "patient")
    await wait_for(lambda: seen.frames >= 10, 15, "the provider's first pictures")
    await asyncio.sleep(0.5)  # past the relay's keyframe-request coalescing window

    sender = _video_sender(patient)
    asked = [0]
    original = sender._send_keyframe

    def counted() -> None:
        asked[0] += 1
        original()

    sender._send_keyframe = counted  # type: ignore[method-assign]
    slot = _slot_showing(relay, "provider", "patient")
    keyframes, frames = slot.keyframes_forwarded, seen.frames
    receiver = _receiver_of(provider, relay, "patient")
    [source] = receiver.getSynchronizationSources()
    await receiver._send_rtcp_pli(source.source)
    await wait_for(lambda: asked[0] >= 1, 5, "the patient's sender asked for a keyframe")
    await wait_for(lambda: slot.keyframes_forwarded > keyframes, 5, "a new keyframe forwarded")
    await wait_for(lambda: seen.frames > frames + 10, 5, "the provider keeps decoding")


async def test_sequence_numbers_stay_continuous_across_a_publishers_reconnect(
    relay: MediaRelay, peers: Peers
) -> None:
    _patient, provider = await peers.join("patient", "provider")
    seen = provider.video_from(relay, ROOM, "patient")
    await wait_for(lambda: seen.frames >= 10, 15, "the provider's first pictures")
    receiver = _receiver_of(provider, relay, "patient")
    arrived: list[tuple[int, int, int]] = []
    original = receiver._handle_rtp_packet

    async def recording(packet: RtpPacket, arrival_time_ms: int) -> None:
        arrived.append((packet.ssrc, packet.sequence_number, packet.timestamp))
        await original(packet, arrival_time_ms)

    receiver._handle_rtp_packet = recording  # type: ignore[method-assign]
    await wait_for(lambda: len(arrived) >= 20, 10, "packets before the reconnect")

    # The patient's page reloads: a new connection under the same name.
    [again] = await peers.join("patient")
    assert _receiver_of(provider, relay, "patient") is receiver  # the same slot shows them
    before = len(arrived)
    frames = seen.frames
    await wait_for(lambda: again.connected_at is not None, 10, "the patient reconnected")
    await wait_for(lambda: seen.frames >= frames + 20, 20, "pictures from the new connection")
    assert len(arrived) > before

    # One media SSRC throughout (anything else is the relay's RTX stream, if it had to resend).
    ssrcs = [ssrc for ssrc, _, _ in arrived]
    media_ssrc = max(set(ssrcs), key=ssrcs.count)
    media = [a for a in arrived if a[0] == media_ssrc]
    assert media[-1] in arrived[before:]
    sequences = sorted({seq for _, seq, _ in media}, key=lambda s: (s - media[0][1]) & 0xFFFF)
    gaps = [(a, b) for a, b in itertools.pairwise(sequences) if (b - a) & 0xFFFF != 1]
    assert gaps == []
    # Timestamps only move forward across the reconnect.
    stamps = [ts for _, _, ts in media]
    assert all(0 <= (b - a) & 0xFFFFFFFF < 1 << 31 for a, b in itertools.pairwise(stamps))


async def test_the_setting_chooses_the_path_for_legs_that_agree(
    settings_factory: Callable[..., Settings],
) -> None:
    for forwarding in ("packet", "frame"):
        relay = MediaRelay.from_settings(
            settings_factory(rtc_loopback=True, relay_forwarding=forwarding)
        )
        async with Peers(relay, ROOM) as peers:
            _patient, provider = await peers.join("patient", "provider")
            seen = provider.video_from(relay, ROOM, "patient")
            await wait_for(lambda s=seen: s.frames >= 5, 15, f"pictures on the {forwarding} path")
            slot = _slot_showing(relay, "provider", "patient")
            assert slot.path == forwarding
        await relay.close()

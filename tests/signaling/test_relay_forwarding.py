"""The relay between aiortc peers in one process: forwarding, keyframes, fallback, cleanup."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator

import av
import pytest

from signaling.relay import MediaRelay, RoomFull
from signaling.relay.forwarding import SlotTrack
from tests.signaling.peers import Peers
from tests.support.media_ports import media_ports
from tests.support.waiting import wait_for

ROOM = "visit-1"


@pytest.fixture
async def relay(request: pytest.FixtureRequest) -> AsyncIterator[MediaRelay]:
    # Packet forwarding (the default) unless a test asks for the frame path.
    forwarding = getattr(request, "param", "packet")
    relay = MediaRelay(ice_servers=[], forwarding=forwarding, media_ports=media_ports())
    yield relay
    await relay.close()


@pytest.fixture
async def peers(relay: MediaRelay) -> AsyncIterator[Peers]:
    async with Peers(relay, ROOM) as made:
        yield made


def _slots(relay: MediaRelay, who: str) -> list[SlotTrack]:
    participant = relay.participant(ROOM, who)
    assert participant is not None
    return participant.all_slot_tracks()


@pytest.mark.parametrize("relay", ["packet", "frame"], indirect=True)
async def test_two_participants_see_and_hear_each_other_without_transcoding(
    relay: MediaRelay, peers: Peers
) -> None:
    patient, provider = await peers.join("patient", "provider")

    for viewer, remote in ((patient, "provider"), (provider, "patient")):
        video = viewer.video_from(relay, ROOM, remote)
        audio = viewer.audio_from(relay, ROOM, remote)
        await wait_for(lambda v=video: v.frames >= 20, 15, f"{viewer.name}'s video frames")
        await wait_for(lambda a=audio: a.frames >= 50, 10, f"{viewer.name}'s audio frames")
        assert video.width == 640

    # The relay handed on packets or encoded frames: nothing was decoded or encoded. On the
    # packet path aiortc's jitter buffer never even assembled a frame.
    packet_path = relay._forwarding == "packet"
    for who in ("patient", "provider"):
        participant = relay.participant(ROOM, who)
        assert participant is not None
        for published in participant.published.values():
            assert published.packet_tap.packets > 0
            assert published.packet_tap.full_receive is not packet_path
            assert (published.tap.frames_tapped == 0) is packet_path
            assert published.tap.frames_to_decoder == 0
            assert published.tap.decode is False
        bound = [s for s in participant.all_slot_tracks() if s.source is not None]
        assert {s.kind for s in bound} == {"audio", "video"}
        for slot in bound:
            assert slot.forwarding
            assert slot.path == relay._forwarding
            assert slot.packets_forwarded > 0
            assert slot.frames_transcoded == 0


async def test_late_joiner_gets_a_picture(relay: MediaRelay, peers: Peers) -> None:
    _patient, provider = await peers.join("patient", "provider")
    first = provider.video_from(relay, ROOM, "patient")
    await wait_for(lambda: first.frames >= 30, 15, "provider's first frames")
    patient_side = relay.participant(ROOM, "patient")
    assert patient_side is not None
    keyframes_before = patient_side.published["video"].keyframes_received

    # aiortc's encoder makes a keyframe only every 3000 frames: without a keyframe request
    # passed back to the patient, the interpreter would never decode a picture.
    [interpreter] = await peers.join("interpreter")
    late = interpreter.video_from(relay, ROOM, "patient")
    await wait_for(lambda: interpreter.connected_at is not None, 10, "interpreter connected")
    # Waited for generously and the time printed: tests never assert a duration.
    await wait_for(lambda: late.frames > 0, 30, "interpreter's first picture")
    assert interpreter.connected_at is not None and late.first_frame_at is not None
    elapsed = late.first_frame_at - interpreter.connected_at
    print(f"late joiner first frame {elapsed:.2f}s after connecting")
    # The picture started from a keyframe the patient made on request, not from the first one.
    assert patient_side.published["video"].keyframes_received > keyframes_before
    interpreter_side = relay.participant(ROOM, "interpreter")
    assert interpreter_side is not None
    slot = next(
        s for s in interpreter_side.all_slot_tracks() if s.source is patient_side.published["video"]
    )
    assert slot.keyframes_forwarded >= 1


async def test_viewer_picture_loss_indication_reaches_the_publisher(
    relay: MediaRelay, peers: Peers
) -> None:
    _patient, provider = await peers.join("patient", "provider")
    seen = provider.video_from(relay, ROOM, "patient")
    await wait_for(lambda: seen.frames >= 30, 15, "provider's frames")
    await asyncio.sleep(0.5)  # past the relay's keyframe-request coalescing window

    patient_side = relay.participant(ROOM, "patient")
    assert patient_side is not None
    published = patient_side.published["video"]
    provider_side = relay.participant(ROOM, "provider")
    assert provider_side is not None
    slot = next(s for s in provider_side.all_slot_tracks() if s.source is published)
    keyframes_before, forwarded_before = published.keyframes_received, slot.keyframes_forwarded
    frames_before = seen.frames

    # The provider's own receiver sends a PLI for the relay's video SSRC, as after loss.
    mid = next(m for m, r in provider.received.items() if r is seen)
    receiver = next(t.receiver for t in provider.pc.getTransceivers() if t.mid == mid)
    sources = receiver.getSynchronizationSources()
    assert sources
    await receiver._send_rtcp_pli(sources[0].source)

    await wait_for(
        lambda: published.keyframes_received > keyframes_before, 2, "publisher's new keyframe"
    )
    await wait_for(lambda: slot.keyframes_forwarded > forwarded_before, 2, "keyframe forwarded")
    await wait_for(lambda: seen.frames > frames_before + 10, 2, "viewer keeps decoding")


async def test_codec_mismatch_falls_back_to_transcoding_for_that_leg(
    relay: MediaRelay, peers: Peers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="signaling.relay.room")
    [patient] = await peers.join("patient")  # VP8
    [provider] = await peers.join("provider", video_codec="video/H264")

    h264_seen = provider.video_from(relay, ROOM, "patient")
    vp8_seen = patient.video_from(relay, ROOM, "provider")
    await wait_for(lambda: h264_seen.frames >= 10, 20, "provider's transcoded frames")
    await wait_for(lambda: vp8_seen.frames >= 10, 20, "patient's transcoded frames")

    messages = [r.getMessage() for r in caplog.records]
    assert any("transcoding video from patient to provider" in m for m in messages)
    assert any("transcoding video from provider to patient" in m for m in messages)
    for who in ("patient", "provider"):
        side = relay.participant(ROOM, who)
        assert side is not None
        assert side.published["video"].tap.frames_to_decoder > 0
        # Audio agrees (Opus both ways) and is still forwarded.
        assert side.published["audio"].tap.frames_to_decoder == 0
        video = [s for s in side.all_slot_tracks() if s.kind == "video" and s.source]
        assert video and all(not s.forwarding and s.frames_transcoded > 0 for s in video)
        audio = [s for s in side.all_slot_tracks() if s.kind == "audio" and s.source]
        assert audio and all(s.forwarding and s.frames_transcoded == 0 for s in audio)


async def test_leaving_and_ending_close_every_connection(relay: MediaRelay, peers: Peers) -> None:
    a, _b, _c = await peers.join("a", "b", "c")
    await wait_for(lambda: a.video_from(relay, ROOM, "c").frames > 0, 15, "a sees c")
    c_side = relay.participant(ROOM, "c")
    assert c_side is not None

    await relay.leave(ROOM, "c")
    assert c_side.pc.connectionState == "closed"
    assert relay.participant(ROOM, "c") is None
    a_side = relay.participant(ROOM, "a")
    assert a_side is not None and "c" not in a_side.routes
    assert all(s.readyState == "ended" for s in c_side.all_slot_tracks())
    assert all(t._remote_track.readyState == "ended" for t in c_side.all_published())

    remaining = [relay.participant(ROOM, who) for who in ("a", "b")]
    await relay.end(ROOM)
    assert ROOM not in relay.rooms
    for participant in remaining:
        assert participant is not None and participant.pc.connectionState == "closed"


async def test_a_visit_holds_four_participants_at_most(relay: MediaRelay, peers: Peers) -> None:
    await peers.join("patient", "provider", "interpreter", "family")
    with pytest.raises(RoomFull):
        await peers.join("extra")
    family = relay.participant(ROOM, "family")
    assert family is not None
    assert set(family.layout().values()) == {"patient", "provider", "interpreter"}


async def test_a_failed_connection_leaves_the_visit(relay: MediaRelay, peers: Peers) -> None:
    patient, _provider = await peers.join("patient", "provider")
    await wait_for(lambda: patient.connected_at is not None, 10, "patient connected")
    participant = relay.participant(ROOM, "patient")
    assert participant is not None
    # The browser vanishing looks like this to the relay: its side of the connection ends.
    await participant.pc.close()
    await wait_for(lambda: relay.participant(ROOM, "patient") is None, 5, "patient removed")
    assert ROOM in relay.rooms and relay.participant(ROOM, "provider") is not None
    provider_side = relay.participant(ROOM, "provider")
    assert provider_side is not None and "patient" not in provider_side.routes
    await provider_side.pc.close()
    await wait_for(lambda: ROOM not in relay.rooms, 5, "the empty visit forgotten")


def _own_threads() -> int:
    # The loop's default executor (aiortc's encoders run there) is a bounded, lazily grown pool.
    return sum(1 for t in threading.enumerate() if not t.name.startswith("asyncio_"))


async def test_sequential_visits_leave_no_threads_rooms_or_tasks(relay: MediaRelay) -> None:
    async def visit(index: int) -> None:
        async with Peers(relay, f"visit-{index}") as peers:
            _, provider = await peers.join("patient", "provider")
            seen = provider.video_from(relay, f"visit-{index}", "patient")
            await wait_for(lambda: seen.frames > 0, 15, "a picture")
            await relay.end(f"visit-{index}")

    await visit(0)  # warm-up: codec libraries, thread pools
    await asyncio.sleep(0.5)
    threads, tasks = _own_threads(), len(asyncio.all_tasks())
    for index in range(1, 6):
        await visit(index)
    await asyncio.sleep(0.5)
    assert relay.rooms == {}
    # Every receiver's decoder thread ended; no relay or aiortc task outlived its visit.
    assert not [t.name for t in threading.enumerate() if t.name.endswith("-decoder")]
    assert _own_threads() <= threads
    assert len(asyncio.all_tasks()) <= tasks


async def test_four_participants_each_get_the_other_three(relay: MediaRelay, peers: Peers) -> None:
    names = ("patient", "provider", "interpreter", "family")
    await peers.join(*names)
    for viewer in peers:
        for remote in names:
            if remote == viewer.name:
                continue
            video = viewer.video_from(relay, ROOM, remote)
            audio = viewer.audio_from(relay, ROOM, remote)
            await wait_for(
                lambda v=video, a=audio: v.frames >= 5 and a.frames >= 20,
                15,
                f"{viewer.name}'s picture and sound of {remote}",
            )


async def test_audio_only_stops_and_restarts_the_video_a_viewer_gets(
    relay: MediaRelay, peers: Peers
) -> None:
    patient, provider = await peers.join("patient", "provider")
    video = patient.video_from(relay, ROOM, "provider")
    audio = patient.audio_from(relay, ROOM, "provider")
    await wait_for(lambda: video.frames >= 10, 15, "the patient's first pictures")

    await relay.receive_video(ROOM, "patient", False)
    await asyncio.sleep(0.5)  # frames already queued or on the wire
    frames, sounds = video.frames, audio.frames
    await asyncio.sleep(1.5)
    assert video.frames - frames <= 1
    assert audio.frames > sounds + 20
    # The provider still gets the patient's video: audio only is the viewer's own choice.
    seen = provider.video_from(relay, ROOM, "patient").frames
    await wait_for(
        lambda: provider.video_from(relay, ROOM, "patient").frames > seen + 5, 5, "provider's view"
    )

    await relay.receive_video(ROOM, "patient", True)
    frames = video.frames
    await wait_for(lambda: video.frames > frames + 10, 10, "the patient's pictures again")


class _Source:
    """Stands in for a publisher: counts the keyframes asked of it."""

    def __init__(self) -> None:
        self.keyframe_requests = 0

    def subscribe(self, slot: SlotTrack, *, path: str) -> None:
        pass

    def unsubscribe(self, slot: SlotTrack) -> None:
        pass

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1


def _packet(data: bytes) -> av.Packet:
    return av.Packet(data)


async def test_a_viewer_whose_connection_comes_up_starts_from_the_keyframe_already_queued() -> None:
    # VP8: bit 0 of the first byte is 0 on a keyframe, 1 on an inter frame.
    keyframe, delta = b"\x00keyframe", b"\x01delta"
    slot = SlotTrack("video")
    source = _Source()
    slot.bind(source, path="frame")  # type: ignore[arg-type]
    asked = source.keyframe_requests
    for data, is_key in ((delta, False), (keyframe, True), (delta, False), (delta, False)):
        slot.push_packet(_packet(data), is_key)
    # Connected now: the picture starts at the queued keyframe, no new keyframe is asked for.
    first = await asyncio.wait_for(slot.recv(), 5)
    assert bytes(first) == keyframe
    assert source.keyframe_requests == asked + 1  # the one delta before any keyframe asked
    assert bytes(await slot.recv()) == delta

    # Without a queued keyframe, the viewer waits for a fresh one, asked for at once.
    other = SlotTrack("video")
    other.bind(source, path="frame")  # type: ignore[arg-type]
    before = source.keyframe_requests
    reader = asyncio.ensure_future(other.recv())
    await asyncio.sleep(0)
    assert source.keyframe_requests == before + 1
    other.push_packet(_packet(delta), False)
    other.push_packet(_packet(keyframe), True)
    assert bytes(await asyncio.wait_for(reader, 5)) == keyframe
    slot.stop()
    other.stop()

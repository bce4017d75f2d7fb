"""aiortc client peers for relay tests: synthetic camera and microphone, every track read."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack
from av import VideoFrame

from signaling.relay import MediaRelay, hooks


class SizedVideoTrack(VideoStreamTrack):
    """Black frames of one size: a visit told apart from another by what its viewers decode."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self.width, self.height = width, height

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=self.width, height=self.height)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts, frame.time_base = pts, time_base
        return frame


@dataclass
class Received:
    kind: str
    frames: int = 0
    keyframes: int = 0
    width: int = 0
    first_frame_at: float | None = None


@dataclass
class ClientPeer:
    """A participant: one sending transceiver per kind plus receive-only slots."""

    name: str
    extra_slots: int = 2
    video_codec: str | None = None
    # False: the sending transceivers carry no track (a waiting page's held connection).
    sending: bool = True
    # (width, height) of the video it sends; None: aiortc's 640x480 test pattern.
    video_size: tuple[int, int] | None = None
    pc: RTCPeerConnection = field(init=False)
    received: dict[str, Received] = field(default_factory=dict)
    connected_at: float | None = None
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.pc.addTransceiver(
            AudioStreamTrack() if self.sending else "audio", direction="sendrecv"
        )
        camera = SizedVideoTrack(*self.video_size) if self.video_size else VideoStreamTrack()
        videos = [self.pc.addTransceiver(camera if self.sending else "video", direction="sendrecv")]
        for _ in range(self.extra_slots):
            self.pc.addTransceiver("audio", direction="recvonly")
            videos.append(self.pc.addTransceiver("video", direction="recvonly"))
        if self.video_codec:
            caps = RTCRtpReceiver.getCapabilities("video").codecs
            for video in videos:
                video.setCodecPreferences([c for c in caps if c.mimeType == self.video_codec])
        hooks.offer_loopback_candidate(self.pc)

        @self.pc.on("connectionstatechange")  # type: ignore[misc]
        def on_state() -> None:
            if self.pc.connectionState == "connected" and self.connected_at is None:
                self.connected_at = time.monotonic()

    async def join(self, relay: MediaRelay, room: str) -> None:
        await self.join_sdp(relay, room)

    async def join_sdp(self, relay: MediaRelay, room: str) -> str:
        """Join and return the relay's answer SDP."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await relay.join(room, self.name, self.pc.localDescription)
        await self.answered(answer.sdp)
        return str(answer.sdp)

    async def join_over_http(self, session: aiohttp.ClientSession, url: str, room: str) -> str:
        """Join a relay served by tests/support/relay_harness.py at `url`; the answer SDP."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        body = {"room": room, "participant": self.name, "sdp": self.pc.localDescription.sdp}
        async with session.post(f"{url}/relay/offer", json=body) as response:
            response.raise_for_status()
            answer = await response.json()
        await self.answered(answer["sdp"])
        return str(answer["sdp"])

    def video_widths(self) -> set[int]:
        """The widths of the video this peer decoded, over all its transceivers."""
        return {r.width for r in self.received.values() if r.kind == "video" and r.frames}

    async def answered(self, sdp: str) -> None:
        """Take the relay's answer (however it came) and read every incoming track."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        for transceiver in self.pc.getTransceivers():
            track = transceiver.receiver.track
            if track is not None:
                stats = Received(kind=track.kind)
                self.received[transceiver.mid] = stats
                self._readers.append(asyncio.ensure_future(self._read(track, stats)))

    async def packets_received(self) -> int:
        """RTP packets that reached this peer, on every transceiver (decoded or not)."""
        total = 0
        for transceiver in self.pc.getTransceivers():
            for stats in (await transceiver.receiver.getStats()).values():
                if stats.type == "inbound-rtp":
                    total += stats.packetsReceived
        return total

    def video_from(self, relay: MediaRelay, room: str, remote: str) -> Received:
        return self._from(relay, room, remote, "video")

    def audio_from(self, relay: MediaRelay, room: str, remote: str) -> Received:
        return self._from(relay, room, remote, "audio")

    def _from(self, relay: MediaRelay, room: str, remote: str, kind: str) -> Received:
        participant = relay.participant(room, self.name)
        assert participant is not None
        for mid, remote_id in participant.layout().items():
            if remote_id == remote and self.received[mid].kind == kind:
                return self.received[mid]
        raise AssertionError(f"{self.name} has no {kind} slot showing {remote}")

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        for task in self._readers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.pc.close()

    @staticmethod
    async def _read(track: object, stats: Received) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()  # type: ignore[attr-defined]
                stats.frames += 1
                if stats.first_frame_at is None:
                    stats.first_frame_at = time.monotonic()
                if isinstance(frame, VideoFrame):
                    stats.width = frame.width
                    if frame.key_frame:
                        stats.keyframes += 1


class Peers:
    """The peers of one room of a relay, made and joined by name; all closed at the end."""

    def __init__(self, relay: MediaRelay, room: str) -> None:
        self.relay, self.room = relay, room
        self.made: list[ClientPeer] = []

    def __iter__(self) -> Iterator[ClientPeer]:
        return iter(self.made)

    async def join(self, *names: str, **options: Any) -> list[ClientPeer]:
        """New peers (`options` go to each ClientPeer), joined one after the other."""
        peers = [ClientPeer(name, **options) for name in names]
        self.made += peers
        for peer in peers:
            await peer.join(self.relay, self.room)
        return peers

    async def __aenter__(self) -> Peers:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for peer in self.made:
            await peer.close()

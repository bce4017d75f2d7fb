"""Visits ("rooms") of up to four participants, each with one peer connection to the relay.

A participant's offer carries, per kind, one transceiver it sends on and further receive-only
ones: every transceiver the relay can send on is a slot that shows one other participant, so
people joining and leaving never need a renegotiation.

A connection can also wait in a room of its own (a patient in the waiting room: ICE and DTLS
done, nothing routed) and later move, unchanged, into a visit's room (`detach` / `attach`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from signaling.relay import hooks
from signaling.relay.forwarding import (
    PublishedTrack,
    SlotTrack,
    can_forward,
    can_forward_packets,
)
from signaling.relay.udp_mux import MediaPorts, NoFreeMediaPort

logger = logging.getLogger(__name__)

KINDS = ("audio", "video")
# The codecs the relay forwards; offered first so that every leg of a visit agrees.
FORWARDING_CODECS = {"audio": ("audio/opus",), "video": ("video/VP8", "video/rtx")}
MAX_PARTICIPANTS = 4


class RelayError(Exception):
    """A participant cannot join as asked."""


class RoomFull(RelayError):
    """The visit already has its maximum number of participants."""


class NoMediaPort(RelayError):
    """Every port of the relay's media port range is in use."""


@dataclass
class Participant:
    """One participant's connection: what they publish and the slots they watch."""

    id: str
    pc: RTCPeerConnection
    published: dict[str, PublishedTrack] = field(default_factory=dict)
    slots: dict[str, list[tuple[str, SlotTrack]]] = field(default_factory=dict)
    # remote participant id -> kind -> slot index
    routes: dict[str, dict[str, int]] = field(default_factory=dict)
    extra_tracks: list[PublishedTrack] = field(default_factory=list)
    # Audio only: the slots that would show others' video stay reserved but carry nothing.
    video_paused: bool = False

    def layout(self) -> dict[str, str]:
        """Which remote participant each transceiver (by mid) shows."""
        result = {}
        for remote_id, kinds in self.routes.items():
            for kind, index in kinds.items():
                result[self.slots[kind][index][0]] = remote_id
        return result

    def free_slot(self, kind: str) -> int | None:
        taken = {kinds[kind] for kinds in self.routes.values() if kind in kinds}
        for index in range(len(self.slots.get(kind, []))):
            if index not in taken:
                return index
        return None

    def all_slot_tracks(self) -> list[SlotTrack]:
        return [slot for slots in self.slots.values() for _, slot in slots]

    def all_published(self) -> list[PublishedTrack]:
        return [*self.published.values(), *self.extra_tracks]


def _offered_media(sdp: str) -> list[tuple[str, str]]:
    """(kind, m-section text) for each m-line of an offer, in order."""
    sections = re.split(r"^(?=m=)", sdp, flags=re.MULTILINE)[1:]
    return [(section[2:].split(" ", 1)[0], section) for section in sections]


def _preferences(kind: str, section: str) -> list[RTCRtpCodecCapability]:
    """The forwarding codecs, if this m-line offers them; else none (that leg transcodes)."""
    wanted = FORWARDING_CODECS[kind]
    primary = wanted[0].split("/")[1].lower()
    if f" {primary}/" not in section.lower():
        return []
    capabilities = RTCRtpReceiver.getCapabilities(kind)
    if capabilities is None:
        return []
    return [c for c in capabilities.codecs if c.mimeType in wanted]


class Room:
    """One visit's participants and the routes between them."""

    def __init__(
        self,
        room_id: str,
        *,
        ice_servers: Sequence[RTCIceServer],
        media_ports: MediaPorts,
        forward: bool,
        forwarding: str = "packet",
        max_participants: int = MAX_PARTICIPANTS,
        on_empty: Callable[[Room], None] | None = None,
    ) -> None:
        self.id = room_id
        self._on_empty = on_empty
        self.participants: dict[str, Participant] = {}
        self._ice_servers = list(ice_servers)
        self._media_ports = media_ports
        self._forward = forward
        self._forwarding = forwarding
        self._max = max_participants
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()

    async def join(
        self, participant_id: str, offer: RTCSessionDescription
    ) -> RTCSessionDescription:
        """Connect a participant (again, after a reload) and route media both ways."""
        async with self._lock:
            if participant_id in self.participants:
                await self._remove(participant_id)
            if len(self.participants) >= self._max:
                raise RoomFull(f"visit {self.id} already has {self._max} participants")
            participant = await self._connect(participant_id, offer)
            for other in self.participants.values():
                self._route(other, participant)
                self._route(participant, other)
            self.participants[participant_id] = participant
            assert participant.pc.localDescription is not None
            return participant.pc.localDescription

    async def detach(self, participant_id: str) -> Participant | None:
        """Take a participant out of this room with their connection still open, unrouted."""
        async with self._lock:
            participant = self.participants.pop(participant_id, None)
            if participant is None:
                return None
            for other in self.participants.values():
                for kind, index in other.routes.pop(participant_id, {}).items():
                    other.slots[kind][index][1].unbind()
            participant.routes.clear()
            for slot in participant.all_slot_tracks():
                slot.unbind()
        if not self.participants and self._on_empty is not None:
            self._on_empty(self)
        return participant

    async def attach(self, participant: Participant) -> None:
        """Bring an open connection (detached from another room) in, routed both ways."""
        async with self._lock:
            if participant.id in self.participants:
                await self._remove(participant.id)
            if len(self.participants) >= self._max:
                raise RoomFull(f"visit {self.id} already has {self._max} participants")
            for other in self.participants.values():
                self._route(other, participant)
                self._route(participant, other)
            self.participants[participant.id] = participant
            self._watch(participant)

    async def leave(self, participant_id: str, pc: RTCPeerConnection | None = None) -> None:
        """Disconnect a participant; `pc` limits it to that connection (not a newer one)."""
        async with self._lock:
            current = self.participants.get(participant_id)
            if current is None or (pc is not None and current.pc is not pc):
                return
            await self._remove(participant_id)
        if not self.participants and self._on_empty is not None:
            self._on_empty(self)

    async def end(self) -> None:
        """Close everyone's connection."""
        async with self._lock:
            for participant_id in list(self.participants):
                await self._remove(participant_id)
        for task in list(self._background):
            task.cancel()

    async def receive_video(self, participant_id: str, wanted: bool) -> None:
        """Start or stop sending a participant the others' video (their audio-only switch)."""
        async with self._lock:
            viewer = self.participants.get(participant_id)
            if viewer is None or viewer.video_paused is not wanted:
                return
            viewer.video_paused = not wanted
            for publisher_id, kinds in viewer.routes.items():
                index = kinds.get("video")
                publisher = self.participants.get(publisher_id)
                if index is None or publisher is None:
                    continue
                slot = viewer.slots["video"][index][1]
                source = publisher.published.get("video")
                if wanted and source is not None:
                    self._bind(slot, source, publisher, viewer)
                else:
                    slot.unbind()

    async def _connect(self, participant_id: str, offer: RTCSessionDescription) -> Participant:
        # max-bundle: with aiortc's default (balanced), transceivers made before
        # setRemoteDescription keep a stale per-kind transport and never send.
        config = RTCConfiguration(
            iceServers=list(self._ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
        )
        pc = RTCPeerConnection(configuration=config)
        participant = Participant(id=participant_id, pc=pc)
        try:
            await self._negotiate(participant, offer)
        except Exception as exc:
            for track in participant.all_published():
                track.close()
            for slot in participant.all_slot_tracks():
                slot.stop()
            await pc.close()
            if isinstance(exc, NoFreeMediaPort):
                raise NoMediaPort(str(exc)) from None
            raise

        self._watch(participant)
        return participant

    def _watch(self, participant: Participant) -> None:
        """A failed or closed connection leaves this room (the one it is in now)."""
        pc = participant.pc
        pc.remove_all_listeners("connectionstatechange")

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                logger.info("participant %s connection %s", participant.id, pc.connectionState)
                task = asyncio.ensure_future(self.leave(participant.id, pc))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _negotiate(self, participant: Participant, offer: RTCSessionDescription) -> None:
        pc = participant.pc
        # Transceivers made before setRemoteDescription take codec preferences; the offer's
        # m-lines then pair with them in order, kind by kind.
        for kind, section in _offered_media(offer.sdp):
            if kind in KINDS:
                transceiver = pc.addTransceiver(kind, direction="sendrecv")
                preferences = _preferences(kind, section)
                if preferences:
                    transceiver.setCodecPreferences(preferences)
        await pc.setRemoteDescription(offer)

        for transceiver in pc.getTransceivers():
            kind = transceiver.kind
            codec = hooks.negotiated_codec(transceiver)
            if transceiver.receiver.track is not None:
                published = PublishedTrack(kind=kind, receiver=transceiver.receiver, codec=codec)
                if kind in participant.published:
                    # Only one track per kind is relayed; the tap still drains the others.
                    participant.extra_tracks.append(published)
                else:
                    participant.published[kind] = published
            slot = SlotTrack(kind, codec)
            transceiver.sender.replaceTrack(slot)
            hooks.on_keyframe_request(transceiver.sender, slot.viewer_lost_picture)
        self._media_ports.install(pc)

        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        for transceiver in pc.getTransceivers():
            sending = transceiver.sender.track
            if not isinstance(sending, SlotTrack):
                continue
            if transceiver.currentDirection in ("sendonly", "sendrecv") and transceiver.mid:
                slots = participant.slots.setdefault(transceiver.kind, [])
                slots.append((transceiver.mid, sending))
                sending.attach_sender(transceiver)
            else:
                sending.stop()

    def _route(self, publisher: Participant, viewer: Participant) -> None:
        """Show `publisher` in a free slot of `viewer`, per kind."""
        kinds: dict[str, int] = {}
        for kind, source in publisher.published.items():
            index = viewer.free_slot(kind)
            if index is None:
                logger.warning("participant %s has no free %s slot", viewer.id, kind)
                continue
            kinds[kind] = index
            if kind == "video" and viewer.video_paused:
                continue
            self._bind(viewer.slots[kind][index][1], source, publisher, viewer)
        viewer.routes[publisher.id] = kinds

    def _bind(
        self, slot: SlotTrack, source: PublishedTrack, publisher: Participant, viewer: Participant
    ) -> None:
        """Which path runs (forwarding.py): packet when both legs agree on VP8 or Opus and the
        relay forwards packets; frame when they agree but the relay forwards frames (or on
        another common codec); transcode when the codecs differ or forwarding is off."""
        forward = self._forward and can_forward(source.codec, slot.codec)
        path = "transcode"
        if forward:
            packets = self._forwarding == "packet"
            path = (
                "packet" if packets and can_forward_packets(source.codec, slot.codec) else "frame"
            )
        if self._forward and not forward:
            logger.warning(
                "transcoding %s from %s to %s: codecs %s and %s differ",
                source.kind,
                publisher.id,
                viewer.id,
                source.codec.mimeType if source.codec else None,
                slot.codec.mimeType if slot.codec else None,
            )
        slot.bind(source, path=path)

    async def _remove(self, participant_id: str) -> None:
        participant = self.participants.pop(participant_id)
        for other in self.participants.values():
            for kind, index in other.routes.pop(participant_id, {}).items():
                other.slots[kind][index][1].unbind()
        await self.close_participant(participant)

    @staticmethod
    async def close_participant(participant: Participant) -> None:
        """Stop what a participant published and watched, and close their connection."""
        for track in participant.all_published():
            track.close()
        for slot in participant.all_slot_tracks():
            slot.stop()
        await participant.pc.close()

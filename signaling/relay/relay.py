"""The media relay the app owns: visits by id, created on first join, gone when empty."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Literal

from aiohttp import web
from aiortc import RTCIceServer, RTCSessionDescription

from app.core.config import Settings
from signaling.relay.ice import relay_ice_servers
from signaling.relay.room import MAX_PARTICIPANTS, Participant, RelayError, Room
from signaling.relay.udp_mux import MediaPorts, parse_port_range


class MediaRelay:
    """Forwards each participant's audio and video to the others in the same visit.

    `forwarding`: "packet" rewrites and forwards RTP packets, "frame" reassembles frames and
    re-packetizes them; either falls back to transcoding for a leg whose codec differs
    (forwarding.py says which path runs when). `forward=False` transcodes everything.
    `media_ports`: the UDP port(s) and announced addresses of its connections (udp_mux.py);
    by default aioice's own, plus 127.0.0.1 with `loopback`.
    """

    def __init__(
        self,
        *,
        ice_servers: Sequence[RTCIceServer],
        loopback: bool = False,
        forward: bool = True,
        forwarding: Literal["packet", "frame"] = "packet",
        max_participants: int = MAX_PARTICIPANTS,
        media_ports: MediaPorts | None = None,
    ) -> None:
        self.media_ports = media_ports or MediaPorts(loopback=loopback)
        # An explicit list, even empty: aiortc falls back to a public STUN server on None.
        self._ice_servers = list(ice_servers)
        self._forward = forward
        self._forwarding = forwarding
        self._max = max_participants
        self.rooms: dict[str, Room] = {}

    @classmethod
    def from_settings(cls, settings: Settings, *, forward: bool = True) -> MediaRelay:
        return cls(
            ice_servers=relay_ice_servers(settings),
            loopback=settings.rtc_loopback,
            forward=forward,
            forwarding=settings.relay_forwarding,
            media_ports=MediaPorts(
                udp_port=settings.rtc_udp_port,
                port_range=(
                    parse_port_range(settings.rtc_udp_ports) if settings.rtc_udp_ports else None
                ),
                announced_ips=settings.rtc_announced_ips,
                loopback=settings.rtc_loopback,
            ),
        )

    async def start(self) -> None:
        """Bind the shared media port (if any) now: a port in use stops the app at start."""
        await self.media_ports.start()

    async def join(
        self, room_id: str, participant_id: str, offer: RTCSessionDescription
    ) -> RTCSessionDescription:
        """Answer a participant's offer; they see and hear everyone else in the visit."""
        room = self._room(room_id)
        try:
            return await room.join(participant_id, offer)
        finally:
            self._forget_if_empty(room)

    def _room(self, room_id: str) -> Room:
        room = self.rooms.get(room_id)
        if room is None:
            room = Room(
                room_id,
                ice_servers=self._ice_servers,
                media_ports=self.media_ports,
                forward=self._forward,
                forwarding=self._forwarding,
                max_participants=self._max,
                on_empty=self._forget_if_empty,
            )
            self.rooms[room_id] = room
        return room

    async def move(self, from_room: str, participant_id: str, to_room: str) -> bool:
        """Move a connected participant into another room, its connection untouched (no new
        offer): whoever waited alone in `from_room` now sees and hears everyone in `to_room`.
        False if there was no such connection to move."""
        source = self.rooms.get(from_room)
        participant = await source.detach(participant_id) if source is not None else None
        if participant is None:
            return False
        room = self._room(to_room)
        try:
            await room.attach(participant)
        except RelayError:
            await Room.close_participant(participant)
            raise
        finally:
            self._forget_if_empty(room)
        return True

    def participant(self, room_id: str, participant_id: str) -> Participant | None:
        room = self.rooms.get(room_id)
        return room.participants.get(participant_id) if room else None

    async def leave(self, room_id: str, participant_id: str) -> None:
        room = self.rooms.get(room_id)
        if room is not None:
            await room.leave(participant_id)

    async def receive_video(self, room_id: str, participant_id: str, wanted: bool) -> None:
        """Audio only for one participant: stop (or start again) sending them video."""
        room = self.rooms.get(room_id)
        if room is not None:
            await room.receive_video(participant_id, wanted)

    async def end(self, room_id: str) -> None:
        """End the visit: close every participant's connection."""
        room = self.rooms.pop(room_id, None)
        if room is not None:
            await room.end()

    async def close(self) -> None:
        """Close every visit (app shutdown)."""
        rooms = list(self.rooms.values())
        self.rooms.clear()
        await asyncio.gather(*(room.end() for room in rooms))
        await self.media_ports.close()

    def _forget_if_empty(self, room: Room) -> None:
        if not room.participants and self.rooms.get(room.id) is room:
            self.rooms.pop(room.id)


MEDIA_RELAY = web.AppKey("media_relay", MediaRelay)


def setup_media_relay(app: web.Application, settings: Settings) -> None:
    """Give the app its relay (`app[MEDIA_RELAY]`), closed with every visit on shutdown."""

    async def relay_lifetime(app: web.Application) -> AsyncIterator[None]:
        relay = MediaRelay.from_settings(settings)
        await relay.start()
        app[MEDIA_RELAY] = relay
        yield
        await app[MEDIA_RELAY].close()

    app.cleanup_ctx.append(relay_lifetime)

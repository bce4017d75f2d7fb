"""The media relay: forwards encoded audio and video between the participants of a visit."""

from signaling.relay.relay import MEDIA_RELAY, MediaRelay, setup_media_relay
from signaling.relay.room import Participant, RelayError, Room, RoomFull
from signaling.relay.udp_mux import MediaPorts

__all__ = [
    "MEDIA_RELAY",
    "MediaPorts",
    "MediaRelay",
    "Participant",
    "RelayError",
    "Room",
    "RoomFull",
    "setup_media_relay",
]

"""The media relay: forwards encoded audio and video between the participants of a visit."""

from signaling.relay.forwarding import RelayCounters
from signaling.relay.relay import MEDIA_RELAY, MediaRelay, setup_media_relay
from signaling.relay.room import Participant, RelayError, Room, RoomFull

__all__ = [
    "MEDIA_RELAY",
    "MediaRelay",
    "Participant",
    "RelayCounters",
    "RelayError",
    "Room",
    "RoomFull",
    "setup_media_relay",
]

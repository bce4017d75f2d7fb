"""Signaling: Socket.IO namespaces (waiting room, visit), queue, presence and the media relay."""

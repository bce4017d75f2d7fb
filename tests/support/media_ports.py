"""Which media ports the relay uses in tests: one shared UDP port unless told otherwise.

The single port is the production configuration, so relay tests run through it by default.
`TEST_RELAY_MEDIA_PORTS=range` gives every connection a port of its own from a range, `stock`
leaves aioice's own random ports (and its per-interface sockets) in place.
"""

from __future__ import annotations

import os
import random
import socket
from typing import Any

from signaling.relay import MediaPorts

MODES = ("port", "range", "stock")


def mode() -> str:
    chosen = os.environ.get("TEST_RELAY_MEDIA_PORTS", "port")
    if chosen not in MODES:
        raise ValueError(f"TEST_RELAY_MEDIA_PORTS={chosen!r}: one of {', '.join(MODES)}")
    return chosen


def free_udp_port() -> int:
    """A UDP port free on every interface now (the relay's media socket binds 0.0.0.0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", 0))
        port: int = sock.getsockname()[1]
        return port


def port_range() -> tuple[int, int]:
    """Fifty ports somewhere below the ephemeral range (taken ones are skipped by the relay)."""
    low = random.randrange(20000, 30000)
    return low, low + 49


def media_port_settings() -> dict[str, Any]:
    """Settings overrides for the mode in force."""
    match mode():
        case "port":
            return {"rtc_udp_port": free_udp_port()}
        case "range":
            low, high = port_range()
            return {"rtc_udp_ports": f"{low}-{high}"}
    return {}


def media_ports(*, loopback: bool = True) -> MediaPorts:
    """A relay's MediaPorts for the mode in force."""
    match mode():
        case "port":
            return MediaPorts(udp_port=free_udp_port(), loopback=loopback)
        case "range":
            return MediaPorts(port_range=port_range(), loopback=loopback)
    return MediaPorts(loopback=loopback)

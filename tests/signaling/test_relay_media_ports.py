"""The relay's media ports: every connection on one UDP port, a port range, announced addresses."""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aioice import stun

from app.core.config import Settings, SettingsError
from signaling.relay import MediaPorts, MediaRelay
from signaling.relay.room import NoMediaPort
from tests.signaling.peers import ClientPeer, Peers
from tests.support.media_ports import free_udp_port
from tests.support.servers import free_port, serving
from tests.support.waiting import wait_for

ROOM = "visit-ports"
VISITS = 10
ANNOUNCED = "203.0.113.7"  # TEST-NET-3: nobody's address


def candidates(sdp: str) -> list[tuple[str, int, str]]:
    """(address, port, type) of every candidate line of an SDP."""
    found = re.findall(r"^a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ (\w+)", sdp, re.MULTILINE)
    return [(host, int(port), kind) for host, port, kind in found]


def udp_ports_of(pid: int) -> list[int]:
    """The local port of every UDP socket process `pid` holds (its fds against /proc/net/udp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = []
    for table in ("udp", "udp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def test_twenty_participants_share_one_udp_port_and_see_only_their_own_visit() -> None:
    http_port, media_port = free_port(), free_udp_port()
    command = [
        sys.executable, "-m", "tests.support.relay_harness",
        "--port", str(http_port), "--udp-port", str(media_port),
    ]  # fmt: skip
    # Each visit's video has its own width: a viewer decoding another visit's would show it.
    width = {visit: 96 + 16 * visit for visit in range(VISITS)}
    peers = {
        (visit, who): ClientPeer(who, extra_slots=1, video_size=(width[visit], 64))
        for visit in range(VISITS)
        for who in ("patient", "provider")
    }
    with serving(command, port=http_port, env=dict(os.environ)) as server:
        try:
            async with aiohttp.ClientSession() as session:
                answers = await asyncio.gather(
                    *(
                        peer.join_over_http(session, server.url, f"visit-{visit}")
                        for (visit, _), peer in peers.items()
                    )
                )
                for answer in answers:
                    assert {port for _, port, _ in candidates(answer)} == {media_port}
                await wait_for(
                    lambda: all(len(p.video_widths()) > 0 for p in peers.values()),
                    120,
                    "every participant decoding the other one of their visit",
                )
                for (visit, who), peer in peers.items():
                    assert peer.video_widths() == {width[visit]}, (visit, who)
                # The relay process holds one UDP socket: the media port.
                assert udp_ports_of(server.pid) == [media_port]
                async with session.get(f"{server.url}/healthz") as response:
                    stats = await response.json()
                assert stats["ufrags"] == 2 * VISITS
                assert stats["addresses"] >= 2 * VISITS

                for visit, who in peers:
                    body = {"room": f"visit-{visit}", "participant": who}
                    async with session.post(f"{server.url}/relay/leave", json=body) as response:
                        response.raise_for_status()

                async def forgotten() -> bool:
                    async with session.get(f"{server.url}/healthz") as response:
                        stats = await response.json()
                    return bool(stats["ufrags"] == 0 and stats["addresses"] == 0)

                await wait_for(forgotten, 20, "closed connections give back ufrags and addresses")
        finally:
            await asyncio.gather(*(peer.close() for peer in peers.values()))


async def test_strangers_are_dropped_and_counted_and_a_closed_connection_is_forgotten() -> None:
    media_port = free_udp_port()
    ports = MediaPorts(udp_port=media_port, loopback=True)
    relay = MediaRelay(ice_servers=[], media_ports=ports)
    await relay.start()
    try:
        async with Peers(relay, ROOM) as peers:
            _patient, provider = await peers.join("patient", "provider")
            seen = provider.video_from(relay, ROOM, "patient")
            await wait_for(lambda: seen.frames >= 5, 30, "the provider's first pictures")
            shared = ports.shared
            assert shared is not None
            assert len(shared.ufrags) == 2
            patient_side = relay.participant(ROOM, "patient")
            assert patient_side is not None
            patient_ufrag = patient_side.pc.getTransceivers()[0].receiver.transport.transport
            patient_ufrag = patient_ufrag.iceGatherer.getLocalParameters().usernameFragment
            assert patient_ufrag in shared.ufrags
            learned = set(shared.addresses)
            assert learned

            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
                stranger.bind(("127.0.0.1", 0))
                # RTP-looking bytes from an address no check came from.
                stranger.sendto(b"\x80\x60" + bytes(40), ("127.0.0.1", media_port))
                request = stun.Message(
                    message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST
                )
                request.attributes["USERNAME"] = "nobodyknowsthisufrag:x"
                request.add_message_integrity(b"wrong password")
                stranger.sendto(bytes(request), ("127.0.0.1", media_port))
                await wait_for(
                    lambda: (
                        ports.stats().get("dropped_unknown_address", 0) >= 1
                        and ports.stats().get("dropped_unknown_ufrag", 0) >= 1
                    ),
                    10,
                    "the stranger's datagrams dropped and counted",
                )
                assert stranger.getsockname() not in shared.addresses

            await relay.leave(ROOM, "patient")
            await wait_for(lambda: patient_ufrag not in shared.ufrags, 10, "the ufrag given back")
            assert len(shared.ufrags) == 1
            assert shared.addresses < learned
    finally:
        await relay.close()


async def test_a_taken_media_port_stops_the_relay_at_start_with_a_clear_message() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("0.0.0.0", 0))
        relay = MediaRelay(ice_servers=[], media_ports=MediaPorts(udp_port=taken.getsockname()[1]))
        with pytest.raises(OSError, match="OPENCONSULT_RTC_UDP_PORT"):
            await relay.start()
        await relay.close()


async def test_a_port_range_gives_each_connection_a_port_inside_it() -> None:
    low = random.randrange(41000, 48000)
    ports = MediaPorts(port_range=(low, low + 19), loopback=True)
    relay = MediaRelay(ice_servers=[], media_ports=ports)
    try:
        async with Peers(relay, ROOM) as peers:
            patient, provider = ClientPeer("patient"), ClientPeer("provider")
            peers.made += [patient, provider]
            used = set()
            for peer in (patient, provider):
                answer = await peer.join_sdp(relay, ROOM)
                found = {port for _, port, _ in candidates(answer)}
                assert len(found) == 1 and low <= min(found) <= low + 19
                used |= found
            assert len(used) == 2  # a port of its own per connection
            seen = provider.video_from(relay, ROOM, "patient")
            await wait_for(lambda: seen.frames >= 5, 30, "pictures through ranged ports")
    finally:
        await relay.close()
    assert ports.stats() == {}


async def test_a_full_port_range_refuses_the_next_connection_clearly() -> None:
    only = free_udp_port()
    relay = MediaRelay(ice_servers=[], media_ports=MediaPorts(port_range=(only, only)))
    try:
        async with Peers(relay, ROOM) as peers:
            await peers.join("patient")
            with pytest.raises(NoMediaPort, match=f"{only}-{only}"):
                await peers.join("provider")
            assert relay.participant(ROOM, "provider") is None
    finally:
        await relay.close()


async def test_host_candidates_carry_the_announced_address(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(
        rtc_loopback=True, rtc_udp_port=free_udp_port(), rtc_announced_ips=ANNOUNCED
    )
    relay = MediaRelay.from_settings(settings)
    await relay.start()
    try:
        async with Peers(relay, ROOM) as peers:
            patient, provider = ClientPeer("patient"), ClientPeer("provider")
            peers.made += [patient, provider]
            answer = await patient.join_sdp(relay, ROOM)
            await provider.join(relay, ROOM)
            hosts = {host for host, _, kind in candidates(answer) if kind == "host"}
            # The announced address, and (tests only) loopback; not the interfaces' own.
            assert hosts == {ANNOUNCED, "127.0.0.1"}
            seen = provider.video_from(relay, ROOM, "patient")
            await wait_for(lambda: seen.frames >= 5, 30, "pictures over loopback")
    finally:
        await relay.close()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rtc_udp_ports": "40099-40000"}, "low <= high"),
        ({"rtc_udp_ports": "0-10"}, "1 <= low"),
        ({"rtc_udp_ports": "40000-70000"}, "65535"),
        ({"rtc_udp_ports": "40000"}, "RTC_UDP_PORTS|rtc_udp_ports"),
        ({"rtc_udp_ports": "40000-40099", "rtc_udp_port": 10000}, "not both"),
        ({"rtc_announced_ips": "198.51.100.4,relay.example"}, "not an IP address"),
        ({"rtc_announced_ips": "2001:db8::1"}, "IPv4"),
        ({"rtc_udp_port": 0}, "rtc_udp_port|RTC_UDP_PORT"),
    ],
)
def test_bad_media_port_settings_stop_the_app(
    settings_factory: Callable[..., Settings], overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        settings_factory(**overrides)


def test_media_port_settings_reach_the_relay(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(
        rtc_udp_ports="40000-40099", rtc_announced_ips="198.51.100.4, 198.51.100.5"
    )
    ports = MediaRelay.from_settings(settings).media_ports
    assert ports.port_range == (40000, 40099) and ports.udp_port is None
    assert ports.announced_ips == ("198.51.100.4", "198.51.100.5")
    assert MediaRelay.from_settings(settings_factory()).media_ports.stock

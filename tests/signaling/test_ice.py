"""ICE servers from settings: explicit lists, TURN REST credentials, the coturn config."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.core.config import Settings, SettingsError
from signaling.relay import MediaRelay
from signaling.relay.ice import browser_ice_servers, relay_ice_servers, turn_credentials
from signaling.visit.pages import ice_transport_policy
from tests.signaling.peers import ClientPeer

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_turn_credentials_follow_the_turn_rest_scheme() -> None:
    username, credential = turn_credentials("s3cret", "participant-7", ttl_seconds=600, now=1000.5)
    assert username == "1600:participant-7"
    expected = base64.b64encode(hmac.new(b"s3cret", b"1600:participant-7", hashlib.sha1).digest())
    assert credential == expected.decode()
    with pytest.raises(ValueError):
        turn_credentials("s3cret", "a:b", ttl_seconds=600, now=0)


def test_browsers_get_stun_and_short_lived_turn(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(
        stun_urls="stun:stun.clinic.example:3478",
        turn_urls="turn:turn.clinic.example:3478?transport=udp,turns:turn.clinic.example:5349",
        turn_secret="a-long-turn-secret",
        turn_ttl_seconds=900,
    )
    servers = browser_ice_servers(settings, "p1", now=10_000)
    assert servers[0] == {"urls": ["stun:stun.clinic.example:3478"]}
    turn = servers[1]
    assert turn["urls"] == [
        "turn:turn.clinic.example:3478?transport=udp",
        "turns:turn.clinic.example:5349",
    ]
    assert turn["username"] == "10900:p1"
    assert (
        turn["credential"]
        == turn_credentials("a-long-turn-secret", "p1", ttl_seconds=900, now=10_000)[1]
    )


def test_nothing_configured_means_no_ice_servers_not_a_public_one(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    assert browser_ice_servers(settings, "p1") == []
    assert relay_ice_servers(settings) == []


async def test_relay_peer_connections_never_use_the_public_stun_fallback(
    settings_factory: Callable[..., Settings],
) -> None:
    relay = MediaRelay.from_settings(settings_factory(rtc_loopback=True))
    peer = ClientPeer("patient")
    try:
        answer = await peer.join_sdp(relay, "visit")
        participant = relay.participant("visit", "patient")
        assert participant is not None
        for transceiver in participant.pc.getTransceivers():
            gatherer = transceiver.receiver.transport.transport.iceGatherer
            assert gatherer._connection.stun_server is None
        assert "typ srflx" not in answer
        assert " 127.0.0.1 " in answer  # the test-only loopback candidate
    finally:
        await peer.close()
        await relay.close()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stun_urls": "http://stun.example"}, "STUN"),
        ({"turn_urls": "stun:turn.example"}, "TURN"),
        ({"turn_urls": "turn:turn.example"}, "TURN_SECRET"),
        ({"rtc_loopback": True, "env": "production", "secret_key": "k" * 40}, "LOOPBACK"),
    ],
)
def test_bad_rtc_settings_stop_the_app(
    settings_factory: Callable[..., Settings], overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        settings_factory(**overrides)


def test_loopback_is_off_by_default(settings_factory: Callable[..., Settings]) -> None:
    assert settings_factory().rtc_loopback is False


def test_relay_only_tells_browsers_to_use_turn_candidates_only(
    settings_factory: Callable[..., Settings],
) -> None:
    assert ice_transport_policy(settings_factory()) == "all"
    assert ice_transport_policy(settings_factory(rtc_relay_only=True)) == "relay"


def _denied_ranges(text: str) -> list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]]:
    ranges = []
    for line in text.splitlines():
        if line.startswith("denied-peer-ip="):
            value = line.split("=", 1)[1]
            low, _, high = value.partition("-")
            ranges.append((ipaddress.ip_address(low), ipaddress.ip_address(high or low)))
    return ranges


def test_coturn_denies_loopback_and_private_peers() -> None:
    text = (DEPLOY / "coturn" / "turnserver.conf").read_text()
    lines = {line.strip() for line in text.splitlines()}
    assert {"use-auth-secret", "no-loopback-peers", "no-multicast-peers"} <= lines
    assert not any(line.startswith("static-auth-secret=") for line in lines), "no secret in git"
    ranges = _denied_ranges(text)
    for address in (
        "127.0.0.1", "10.1.2.3", "172.20.0.5", "192.168.1.10", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "::1", "fd00::2", "fe80::1", "::ffff:10.0.0.1",
    ):  # fmt: skip
        ip = ipaddress.ip_address(address)
        assert any(
            low.version == ip.version and low <= ip <= high  # type: ignore[operator]
            for low, high in ranges
        ), f"{address} is not denied"
    public = ipaddress.ip_address("8.8.8.8")
    assert not any(low.version == 4 and low <= public <= high for low, high in ranges)  # type: ignore[operator]


async def test_the_app_owns_one_relay_closed_on_shutdown(
    settings_factory: Callable[..., Settings], aiohttp_server: Any
) -> None:
    from aiohttp import web

    from signaling.relay import MEDIA_RELAY, setup_media_relay

    app = web.Application()
    setup_media_relay(app, settings_factory(rtc_loopback=True))
    server = await aiohttp_server(app, host="127.0.0.1")
    relay = app[MEDIA_RELAY]
    peer = ClientPeer("patient")
    try:
        await peer.join(relay, "visit")
        participant = relay.participant("visit", "patient")
        assert participant is not None
    finally:
        await peer.close()
    await server.close()
    assert relay.rooms == {}
    assert participant.pc.connectionState == "closed"

"""A malformed WebRTC offer is the sender's mistake: a 400-style refusal with a code, never an
internal error with a traceback in the log."""

from __future__ import annotations

import logging

import pytest
from aiortc import RTCSessionDescription

from tests.signaling.conftest import WaitingFactory, admit_patient, cookie_header
from tests.signaling.peers import ClientPeer


def _malformed(good: str) -> dict[str, str]:
    """Offers that look like SDP with audio and video, each broken in one way."""
    lines = good.split("\r\n")
    return {
        "m-lines that are not media": "v=0\r\nm=audio x y z\r\nm=video a b c\r\n",
        "an unknown DTLS role": good.replace("a=setup:actpass", "a=setup:sideways"),
        "a cut candidate": good.replace("a=ice-pwd", "a=candidate:1 1 udp nope\r\na=ice-pwd", 1),
        "a payload type that is not a number": good.replace("a=rtpmap:", "a=rtpmap:x", 1),
        "two sections with one mid": good.replace("a=mid:1\r\n", "a=mid:0\r\n"),
        "no ICE credentials": "\r\n".join(x for x in lines if not x.startswith("a=ice-")),
    }


async def test_malformed_offers_are_refused_as_bad_input(
    server, http_clients, waiting: WaitingFactory, sockets, caplog: pytest.LogCaptureFixture
):
    v = await waiting.visitable()
    http = http_clients()
    visit_id, _ = await admit_patient(server, http, v, sockets)
    url = str(server.make_url("/"))
    patient = await sockets(url, "/visit", cookie_header(http), {"visit_id": visit_id})
    peer = ClientPeer("patient")
    try:
        await peer.pc.setLocalDescription(await peer.pc.createOffer())
        good = peer.pc.localDescription.sdp
        with caplog.at_level(logging.WARNING):
            for broken, sdp in _malformed(good).items():
                ack = await patient.call("offer", {"sdp": sdp})
                assert "error" in ack, broken
                assert ack["error"]["code"] == "invalid_input", (broken, ack)
                assert "sdp" in ack["error"].get("fields", {}), (broken, ack)
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        assert errors == [], [r.getMessage() for r in errors]

        # The same participant's good offer is still answered.
        ack = await patient.call("offer", {"sdp": good})
        assert ack["type"] == "answer", ack
        await peer.pc.setRemoteDescription(RTCSessionDescription(ack["sdp"], ack["type"]))
    finally:
        await peer.close()

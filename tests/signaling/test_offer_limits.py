"""Offers are bounded before anything parses them: no more media sections than a participant
can use, and a small number of offers per participant per second (issue 15, Medium 2)."""

from __future__ import annotations

import uuid

from aiortc import RTCSessionDescription

from signaling.server import SOCKET_SERVER
from signaling.visit.offer_limits import MAX_MEDIA_SECTIONS, OFFER_BURST, OfferLimits, limits_of
from tests.signaling.conftest import WaitingFactory, admit_patient, cookie_header
from tests.signaling.peers import ClientPeer


def many_sections(good: str, count: int) -> str:
    """The good offer's session lines, then `count` small media sections (a valid SDP shape of
    about 100 bytes each, as an attacker would send)."""
    head = good.split("\r\nm=", 1)[0]
    head = "\r\n".join(x for x in head.split("\r\n") if not x.startswith("a=group:"))
    sections = "".join(
        f"\r\nm={'audio' if i % 2 == 0 else 'video'} 9 UDP/TLS/RTP/SAVPF 96\r\n"
        f"c=IN IP4 0.0.0.0\r\na=mid:{i}\r\na=sendrecv\r\na=rtpmap:96 opus/48000/2"
        for i in range(count)
    )
    return head + sections + "\r\n"


async def test_an_offer_with_too_many_media_sections_is_refused_before_parsing(
    server, http_clients, waiting: WaitingFactory, sockets
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
        huge = many_sections(good, 400)
        assert huge.count("\r\nm=") == 400 and len(huge) < 60_000
        ack = await patient.call("offer", {"sdp": huge})
        assert ack["error"]["code"] == "too_many_media_sections", ack
        assert "sdp" in ack["error"]["fields"]
        # One section too many is refused even when it would not parse: the count comes first.
        broken = many_sections(good, MAX_MEDIA_SECTIONS + 1).replace("a=rtpmap:96", "a=rtpmap:x")
        ack = await patient.call("offer", {"sdp": broken})
        assert ack["error"]["code"] == "too_many_media_sections", ack
        # What the visit page offers (MAX_MEDIA_SECTIONS, as this peer does) is answered.
        assert good.count("\r\nm=") == MAX_MEDIA_SECTIONS
        ack = await patient.call("offer", {"sdp": good})
        assert ack.get("type") == "answer", ack
    finally:
        await peer.close()


async def test_offers_of_one_participant_are_rate_limited(
    server, http_clients, waiting: WaitingFactory, sockets
):
    v = await waiting.visitable()
    http = http_clients()
    visit_id, provider_headers = await admit_patient(server, http, v, sockets)
    url = str(server.make_url("/"))
    patient = await sockets(url, "/visit", cookie_header(http), {"visit_id": visit_id})
    # No refill while the test runs, however slow the machine (the refill is tested below).
    limits_of(server.app[SOCKET_SERVER].namespace_handlers["/visit"]).rate = 1e-6
    cheap = {"sdp": "v=0\r\nm=audio 9 x 0\r\nm=video 9 y 0\r\n"}  # refused as malformed
    codes = [(await patient.call("offer", cheap))["error"]["code"] for _ in range(int(OFFER_BURST))]
    assert codes == ["invalid_input"] * int(OFFER_BURST)
    ack = await patient.call("offer", cheap)
    assert ack["error"]["code"] == "offer_rate_limited", ack
    # A second socket of the same participant shares the bound.
    again = await sockets(url, "/visit", cookie_header(http), {"visit_id": visit_id})
    assert (await again.call("offer", cheap))["error"]["code"] == "offer_rate_limited"
    # Another participant of the visit is not held back by it.
    provider = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})
    peer = ClientPeer("provider")
    try:
        await peer.pc.setLocalDescription(await peer.pc.createOffer())
        ack = await provider.call("offer", {"sdp": peer.pc.localDescription.sdp})
        assert ack.get("type") == "answer", ack
        await peer.pc.setRemoteDescription(RTCSessionDescription(ack["sdp"], ack["type"]))
    finally:
        await peer.close()


def test_the_bucket_refills_with_time() -> None:
    now = [1000.0]
    limits = OfferLimits(burst=3, rate=0.5, clock=lambda: now[0])
    key = (uuid.uuid4(), "patient")
    assert [limits.take(key) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limits.take(key) == 2.0  # one offer every two seconds
    now[0] += 1.0
    assert limits.take(key) == 1.0
    now[0] += 1.0
    assert limits.take(key) == 0.0
    assert limits.take((uuid.uuid4(), "patient")) == 0.0  # another participant, another bucket

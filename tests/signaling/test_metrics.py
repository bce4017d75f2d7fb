"""/metrics during a real visit: the waiting room, the visit and its relay move the figures,
and the scrape names nobody."""

from __future__ import annotations

from tests.signaling.conftest import (
    WaitingFactory,
    check_in,
    cookie_header,
    staff_headers,
)
from tests.signaling.peers import ClientPeer
from tests.support.metrics import Scrape, dashboard_metric_names
from tests.support.waiting import wait_for


async def _scrape(http) -> Scrape:
    resp = await http.get("/metrics")
    assert resp.status == 200
    return Scrape(await resp.text())


def _video_frames(peer: ClientPeer) -> int:
    return sum(r.frames for r in peer.received.values() if r.kind == "video")


async def test_a_visit_with_media_moves_the_metrics_and_names_nobody(
    server, http_clients, waiting: WaitingFactory, sockets
):
    scraper = http_clients()
    before = await _scrape(scraper)
    assert before.value("openconsult_visits_live") == 0
    assert before.value("openconsult_participants") == 0
    assert before.value("openconsult_waiting_patients") == 0

    v = await waiting.visitable()
    url = str(server.make_url("/"))
    http = http_clients()
    await check_in(http, v.token)
    waiting_room = await sockets(url, "/waiting", cookie_header(http))
    await wait_for(
        lambda: _scrape_value(scraper, "openconsult_waiting_patients", 1), 10, "a waiting patient"
    )

    provider_headers = await staff_headers(url.rstrip("/"), v.provider)
    clinic = await sockets(url, "/clinic", provider_headers)
    admitted = await clinic.call("admit", {"appointment_id": str(v.appointment.id)})
    visit_id = admitted["visit_id"]
    await clinic.client.disconnect()
    await waiting_room.wait_for("admitted")
    await waiting_room.client.disconnect()  # the page leaves the waiting room at the admit

    provider = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})
    patient = await sockets(url, "/visit", cookie_header(http), {"visit_id": visit_id})
    peers = [ClientPeer("provider"), ClientPeer("patient")]
    try:
        for listener, peer in zip((provider, patient), peers, strict=True):
            await peer.pc.setLocalDescription(await peer.pc.createOffer())
            ack = await listener.call("offer", {"sdp": peer.pc.localDescription.sdp})
            assert ack["type"] == "answer", ack
            await peer.answered(ack["sdp"])
        await wait_for(
            lambda: all(_video_frames(peer) >= 10 for peer in peers), 60, "pictures both ways"
        )
        during = await _scrape(scraper)
    finally:
        for peer in peers:
            await peer.close()

    assert during.value("openconsult_visits_live") == 1
    assert during.value("openconsult_participants") == 2
    assert during.value("openconsult_waiting_patients") == 0
    assert during.value("openconsult_socketio_connections", namespace="/visit") == 2
    forwarded = during.value("openconsult_relay_packets_forwarded_total")
    assert forwarded > before.value("openconsult_relay_packets_forwarded_total")
    assert during.value("openconsult_relay_bytes_forwarded_total") > 0
    assert during.value("openconsult_audit_events_written_total", action="visit.join") >= 2
    routes = during.label_values("openconsult_http_request_duration_seconds_count", "route")
    assert {"/api/join/{token}/identity", "/api/join/{token}/consent"} <= routes, routes

    # Nobody is named: no id, token, name, email or address of the visit's people.
    people = [
        visit_id,
        str(v.appointment.id),
        str(v.patient.id),
        str(v.provider.user.id),
        str(v.clinic.id),
        v.token,
        v.patient.given_name,
        v.patient.family_name,
        v.patient.email or "",
        v.provider.user.email,
        v.provider.user.full_name,
        v.clinic.name,
    ]
    for secret in people:
        assert secret and secret not in during.text, secret

    # Every metric the shipped Grafana dashboard queries is in a real scrape.
    served = set(during.samples)
    missing = {name for name in dashboard_metric_names() if name not in served}
    assert missing == set(), missing


async def _scrape_value(http, name: str, wanted: float) -> bool:
    return (await _scrape(http)).value(name) == wanted

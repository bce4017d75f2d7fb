"""A waiting patient's warm connection: made before the admit, routed nothing until they enter
the visit they were admitted to, then moved into it without a new offer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from app.core.models import Role
from app.main import create_app
from signaling.relay.relay import MEDIA_RELAY
from tests.conftest import bearer_login
from tests.signaling.conftest import (
    Listener,
    WaitingFactory,
    check_in,
    cookie_header,
    refused_connection,
    staff_headers,
)
from tests.signaling.peers import ClientPeer
from tests.support.waiting import wait_for

NO_ICE_SERVERS = {"ice_servers": [], "ice_transport_policy": "all"}

WAITING = {"waiting": True}


async def warm_up(listener: Listener, peer: ClientPeer) -> None:
    """Negotiate the waiting page's connection over its socket; wait until ICE and DTLS are up."""
    await peer.pc.setLocalDescription(await peer.pc.createOffer())
    ack = await listener.call("offer", {"sdp": peer.pc.localDescription.sdp})
    assert ack["type"] == "answer" and ack["layout"] == {}, ack
    await peer.answered(ack["sdp"])
    await wait_for(lambda: peer.pc.connectionState == "connected", 15, f"{peer.name} connected")


async def test_a_warm_connection_gets_no_media_until_its_patient_enters_their_visit(
    server, http_clients, waiting: WaitingFactory, sockets
):
    url = str(server.make_url("/")).rstrip("/")
    clinic, provider, _, kind = await waiting.clinic_day()
    patient_a, appointment_a, token_a = await waiting.appointment(
        clinic, provider, kind, starts_in=timedelta(minutes=-15)
    )
    _, _, token_b = await waiting.appointment(clinic, provider, kind, given="Bea")
    http_a, http_b = http_clients(), http_clients()
    await check_in(http_a, token_a)
    await check_in(http_b, token_b)
    relay = server.app[MEDIA_RELAY]
    peers: list[ClientPeer] = []
    try:
        # Both patients wait, each with a warm connection that sends nothing (as the page does).
        waiting_a = await sockets(url, "/visit", cookie_header(http_a), {"waiting": True})
        waiting_b = await sockets(url, "/visit", cookie_header(http_b), {"waiting": True})
        assert await waiting_a.call("ice_servers", {}) == NO_ICE_SERVERS
        warm_a, warm_b = ClientPeer("a", sending=False), ClientPeer("b", sending=False)
        peers += [warm_a, warm_b]
        await warm_up(waiting_a, warm_a)
        await warm_up(waiting_b, warm_b)

        # The provider admits A and is in the visit, camera and microphone on.
        headers = await staff_headers(url, provider)
        queue = await sockets(url, "/clinic", headers)
        visit_id = (await queue.call("admit", {"appointment_id": str(appointment_a.id)}))[
            "visit_id"
        ]
        in_visit = await sockets(url, "/visit", headers, {"visit_id": visit_id})
        provider_peer = ClientPeer("provider")
        peers.append(provider_peer)
        await provider_peer.pc.setLocalDescription(await provider_peer.pc.createOffer())
        ack = await in_visit.call("offer", {"sdp": provider_peer.pc.localDescription.sdp})
        await provider_peer.answered(ack["sdp"])
        provider_id = f"provider:{provider.user.id}"

        def provider_frames() -> Any:
            published = relay.participant(visit_id, provider_id)
            video = published.published.get("video") if published else None
            return video is not None and video.packet_tap.packets >= 30

        await wait_for(provider_frames, 15, "the provider's picture reaching the relay")
        # Admitted but not yet entered (A), or never admitted (B): not one RTP packet.
        assert await warm_a.packets_received() == 0
        assert await warm_b.packets_received() == 0

        # B cannot take A's visit: not by entering it, not by joining it.
        refused = await waiting_b.call("enter", {"visit_id": visit_id})
        assert refused["error"]["code"] == "not_found", refused
        assert (await refused_connection(server, cookie_header(http_b), visit_id))[
            "code"
        ] == "not_found"
        # Nor is a warm socket a visit's: it cannot chat or end one.
        assert (await waiting_b.call("chat", {"text": "hello"}))["error"]["code"] == "conflict"

        # A enters: the same connection, no new offer, now shows the provider.
        entered = await waiting_a.call("enter", {"visit_id": visit_id})
        assert entered["moved"] is True, entered
        assert set(entered["layout"].values()) == {provider_id}
        await waiting_a.wait_for("joined", lambda data: data["role"] == "patient")
        layout = await in_visit.wait_for(
            "layout", lambda lay: f"patient:{patient_a.id}" in lay.values()
        )
        assert len(layout) == 2
        await wait_for(
            lambda: any(r.kind == "video" and r.frames > 5 for r in warm_a.received.values()),
            15,
            "the provider's picture at A",
        )
        assert await warm_b.packets_received() == 0
    finally:
        for peer in peers:
            await peer.close()


async def test_only_a_checked_in_patient_may_wait_warm(
    server, http_clients, waiting: WaitingFactory, sockets
):
    url = str(server.make_url("/")).rstrip("/")
    v = await waiting.visitable()
    not_checked_in = http_clients()
    resp = await not_checked_in.post(
        f"/api/join/{v.token}/identity", json={"birth_date": "1979-04-02"}
    )
    assert resp.status == 200
    for headers in ({}, cookie_header(not_checked_in)):
        refusal = await refused_connection(server, headers, "", auth=WAITING)
        assert refusal["code"] == "not_waiting", refusal
    staff = await staff_headers(url, v.provider)
    assert (await refused_connection(server, staff, "", auth=WAITING))["code"] == "not_waiting"


async def test_a_clinic_can_switch_warm_waiting_off(
    aiohttp_server, settings_factory, http_clients, waiting: WaitingFactory
):
    app = create_app(
        settings_factory(background_tasks=False, rtc_loopback=True, warm_waiting=False)
    )
    cold = await aiohttp_server(app, host="127.0.0.1")
    v = await waiting.visitable()
    http = TestClient(cold)
    try:
        await check_in(http, v.token)
        refusal = await refused_connection(cold, cookie_header(http), "", auth=WAITING)
        assert refusal["code"] == "warm_off", refusal
    finally:
        await http.session.close()


async def test_a_second_tab_takes_the_warm_connection_and_the_first_tabs_end_leaves_it(
    server, http_clients, waiting: WaitingFactory, sockets
):
    url = str(server.make_url("/")).rstrip("/")
    v = await waiting.visitable()
    http = http_clients()
    await check_in(http, v.token)
    relay = server.app[MEDIA_RELAY]
    lobby = f"waiting:{v.appointment.id}"
    first_tab, second_tab = ClientPeer("tab 1", sending=False), ClientPeer("tab 2", sending=False)
    try:
        first = await sockets(url, "/visit", cookie_header(http), WAITING)
        await warm_up(first, first_tab)
        second = await sockets(url, "/visit", cookie_header(http), WAITING)
        await warm_up(second, second_tab)
        await first.wait_for("replaced")
        # The first tab's end (as after a reload) leaves the second tab's connection alone.
        await first.client.disconnect()
        held = relay.participant(lobby, f"patient:{v.patient.id}")
        assert held is not None and held.pc.connectionState == "connected"

        headers = await staff_headers(url, v.provider)
        queue = await sockets(url, "/clinic", headers)
        admitted = await queue.call("admit", {"appointment_id": str(v.appointment.id)})
        entered = await second.call("enter", {"visit_id": admitted["visit_id"]})
        assert entered["moved"] is True, entered
        assert relay.participant(lobby, f"patient:{v.patient.id}") is None
    finally:
        await first_tab.close()
        await second_tab.close()


PROVIDER_LOBBY = {"provider_lobby": True}


async def test_a_providers_warm_connection_gets_no_media_until_they_enter_their_own_visit(
    server, http_clients, waiting: WaitingFactory, factory, sockets
):
    url = str(server.make_url("/")).rstrip("/")
    v = await waiting.visitable()
    other = await factory.staff(Role.PROVIDER, v.clinic)  # same clinic, not this visit's
    relay = server.app[MEDIA_RELAY]
    http = http_clients()
    peers: list[ClientPeer] = []
    try:
        # Both providers have their queue open, each holding a warm connection sending nothing.
        own_headers, other_headers = (
            await staff_headers(url, v.provider),
            await staff_headers(url, other),
        )
        own_lobby = await sockets(url, "/visit", own_headers, PROVIDER_LOBBY)
        other_lobby = await sockets(url, "/visit", other_headers, PROVIDER_LOBBY)
        assert await own_lobby.call("ice_servers", {}) == NO_ICE_SERVERS
        own_warm = ClientPeer("provider", sending=False)
        other_warm = ClientPeer("other provider", sending=False)
        peers += [own_warm, other_warm]
        await warm_up(own_lobby, own_warm)
        await warm_up(other_lobby, other_warm)

        # The patient is admitted and in the visit, camera and microphone on.
        await check_in(http, v.token)
        queue = await sockets(url, "/clinic", own_headers)
        visit_id = (await queue.call("admit", {"appointment_id": str(v.appointment.id)}))[
            "visit_id"
        ]
        in_visit = await sockets(url, "/visit", cookie_header(http), {"visit_id": visit_id})
        patient_peer = ClientPeer("patient")
        peers.append(patient_peer)
        await patient_peer.pc.setLocalDescription(await patient_peer.pc.createOffer())
        ack = await in_visit.call("offer", {"sdp": patient_peer.pc.localDescription.sdp})
        await patient_peer.answered(ack["sdp"])
        patient_id = f"patient:{v.patient.id}"

        def patient_frames() -> Any:
            published = relay.participant(visit_id, patient_id)
            video = published.published.get("video") if published else None
            return video is not None and video.packet_tap.packets >= 30

        await wait_for(patient_frames, 15, "the patient's picture reaching the relay")
        # Warm, admitting or not: not one RTP packet before entering.
        assert await own_warm.packets_received() == 0
        assert await other_warm.packets_received() == 0

        # The other provider's warm connection cannot enter a visit that is not theirs.
        refused = await other_lobby.call("enter", {"visit_id": visit_id})
        assert refused["error"]["code"] == "not_found", refused
        assert relay.participant(visit_id, f"provider:{other.user.id}") is None
        # A lobby socket is nobody's visit: no chat, no end.
        assert (await own_lobby.call("end", {}))["error"]["code"] == "conflict"

        # The visit's provider enters: the same connection, moved, now shows the patient.
        entered = await own_lobby.call("enter", {"visit_id": visit_id})
        assert entered["moved"] is True, entered
        assert set(entered["layout"].values()) == {patient_id}
        await own_lobby.wait_for("joined", lambda data: data["role"] == "provider")
        assert (
            relay.participant(f"provider:{v.provider.user.id}", f"provider:{v.provider.user.id}")
            is None
        )
        await wait_for(
            lambda: any(r.kind == "video" and r.frames > 5 for r in own_warm.received.values()),
            15,
            "the patient's picture at the provider",
        )
        assert await other_warm.packets_received() == 0
        # As the visit's provider now, the socket may end the visit.
        assert (await own_lobby.call("end", {}))["ok"] is True
    finally:
        for peer in peers:
            await peer.close()


async def test_only_a_provider_may_hold_a_warm_connection_in_a_provider_lobby(
    server, http_clients, waiting: WaitingFactory, factory
):
    url = str(server.make_url("/")).rstrip("/")
    v = await waiting.visitable()
    admin = await factory.staff(Role.ADMIN, v.clinic)
    patient = http_clients()
    await check_in(patient, v.token)
    staff = http_clients()
    for headers in (
        {},
        cookie_header(patient),
        await staff_headers(url, v.scheduler),
        await bearer_login(staff, admin),
    ):
        refusal = await refused_connection(server, headers, "", auth=PROVIDER_LOBBY)
        assert refusal["code"] == "not_a_provider", (headers, refusal)


async def test_a_clinic_that_switched_warm_waiting_off_has_no_provider_lobby(
    aiohttp_server, settings_factory, waiting: WaitingFactory
):
    app = create_app(
        settings_factory(background_tasks=False, rtc_loopback=True, warm_waiting=False)
    )
    cold = await aiohttp_server(app, host="127.0.0.1")
    v = await waiting.visitable()
    headers = await staff_headers(str(cold.make_url("/")).rstrip("/"), v.provider)
    refusal = await refused_connection(cold, headers, "", auth=PROVIDER_LOBBY)
    assert refusal["code"] == "warm_off", refusal

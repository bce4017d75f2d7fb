"""The visit over Socket.IO: who may join, offers to the relay, layouts, chat, the end."""

from __future__ import annotations

import uuid

from aiortc import RTCSessionDescription
from sqlmodel import select

from app.core.audit import AuditEvent
from app.core.db import Database
from scheduling.models import Appointment, AppointmentStatus
from signaling.models import Visit, VisitMessage
from tests.signaling.conftest import (
    Listener,
    WaitingFactory,
    admit_patient,
    cookie_header,
    refused_connection,
)
from tests.signaling.peers import ClientPeer

NO_ICE_SERVERS = {"ice_servers": [], "ice_transport_policy": "all"}


async def test_provider_and_patient_join_and_others_arerefused_connection(
    server, http_clients, waiting: WaitingFactory, sockets, db: Database
):
    v = await waiting.visitable()
    http = http_clients()
    visit_id, provider_headers = await admit_patient(server, http, v, sockets)
    url = str(server.make_url("/"))

    provider = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})
    joined = await provider.wait_for("joined")
    assert (
        joined["role"] == "provider" and joined["participant"] == f"provider:{v.provider.user.id}"
    )
    patient = await sockets(url, "/visit", cookie_header(http), {"visit_id": visit_id})
    assert (await patient.wait_for("joined"))["role"] == "patient"

    # Another clinic's provider, and the patient of another (admitted) visit.
    other = await waiting.visitable()
    other_http = http_clients()
    other_visit, other_provider_headers = await admit_patient(server, other_http, other, sockets)
    assert (await refused_connection(server, other_provider_headers, visit_id))[
        "code"
    ] == "not_found"
    assert (await refused_connection(server, cookie_header(other_http), visit_id))[
        "code"
    ] == "not_found"
    # Nobody at all, and no visit id.
    assert (await refused_connection(server, {}, visit_id))["code"] == "not_found"
    assert (await refused_connection(server, provider_headers, str(uuid.uuid4())))[
        "code"
    ] == "not_found"
    # The same people can open their own visit.
    own = await sockets(url, "/visit", cookie_header(other_http), {"visit_id": other_visit})
    await own.wait_for("joined")

    async with db.session() as session:
        denied = (
            await session.exec(
                select(AuditEvent).where(
                    AuditEvent.action == "visit.join", AuditEvent.outcome == "denied"
                )
            )
        ).all()
    assert len(denied) >= 4


async def test_page_and_ice_servers_only_for_the_visit_people(
    server, http_clients, waiting: WaitingFactory, sockets
):
    v = await waiting.visitable()
    http = http_clients()
    visit_id, provider_headers = await admit_patient(server, http, v, sockets)

    mine = await http.get(f"/api/visits/{visit_id}/ice-servers")
    assert mine.status == 200 and (await mine.json()) == NO_ICE_SERVERS
    provider_http = http_clients()
    resp = await provider_http.get(f"/api/visits/{visit_id}/ice-servers", headers=provider_headers)
    assert resp.status == 200

    # The patient's page leads back to their own link (the summary appears there afterwards);
    # the provider's page has no such link.
    patient_page = await (await http.get(f"/visit/{visit_id}")).text()
    assert f'href="/join/{v.token}"' in patient_page
    provider_page = await provider_http.get(f"/visit/{visit_id}", headers=provider_headers)
    assert "Read your visit summary" not in await provider_page.text()

    other = await waiting.visitable()
    other_http = http_clients()
    _, other_headers = await admit_patient(server, other_http, other, sockets)
    for client, headers in ((other_http, {}), (provider_http, other_headers)):
        resp = await client.get(f"/api/visits/{visit_id}/ice-servers", headers=headers)
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"
        page = await client.get(f"/visit/{visit_id}", headers=headers)
        assert page.status == 404
    assert (await http_clients().get(f"/api/visits/{visit_id}/ice-servers")).status == 404


async def test_offers_get_answers_and_layouts_follow_who_is_there(
    server, http_clients, waiting: WaitingFactory, sockets
):
    v = await waiting.visitable()
    http = http_clients()
    visit_id, provider_headers = await admit_patient(server, http, v, sockets)
    url = str(server.make_url("/"))
    provider = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})
    patient = await sockets(url, "/visit", cookie_header(http), {"visit_id": visit_id})
    peers = [ClientPeer("provider"), ClientPeer("patient")]
    try:
        for listener, peer in zip((provider, patient), peers, strict=True):
            await peer.pc.setLocalDescription(await peer.pc.createOffer())
            ack = await listener.call("offer", {"sdp": peer.pc.localDescription.sdp})
            assert ack["type"] == "answer" and ack["sdp"].startswith("v=0"), ack
            await peer.pc.setRemoteDescription(RTCSessionDescription(ack["sdp"], ack["type"]))
        patient_id = f"patient:{v.patient.id}"
        layout = await provider.wait_for("layout", lambda lay: patient_id in lay.values())
        assert set(layout.values()) == {patient_id} and len(layout) == 2  # audio and video

        bad = await patient.call("offer", {"sdp": "not an offer at all"})
        assert bad["error"]["code"] in ("invalid_input", "invalid_payload")

        # The provider in a second tab takes over; the first tab is told, and its
        # disconnect does not drop the second tab's connection.
        second_tab = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})
        peers.append(ClientPeer("provider again"))
        await peers[-1].pc.setLocalDescription(await peers[-1].pc.createOffer())
        ack = await second_tab.call("offer", {"sdp": peers[-1].pc.localDescription.sdp})
        assert ack["type"] == "answer"
        await provider.wait_for("replaced")
        await provider.client.disconnect()
        layout = await patient.wait_for(
            "layout", lambda lay: f"provider:{v.provider.user.id}" in lay.values()
        )

        await patient.client.disconnect()
        await second_tab.wait_for("layout", lambda lay: lay == {})
    finally:
        for peer in peers:
            await peer.close()


async def test_chat_is_kept_and_broadcast(
    server, http_clients, waiting: WaitingFactory, sockets, db: Database
):
    v = await waiting.visitable()
    http = http_clients()
    visit_id, provider_headers = await admit_patient(server, http, v, sockets)
    url = str(server.make_url("/"))
    provider = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})
    patient = await sockets(url, "/visit", cookie_header(http), {"visit_id": visit_id})

    ack = await patient.call("chat", {"text": "Can you hear me?"})
    assert ack["ok"] is True
    for listener in (provider, patient):
        line = await listener.wait_for("chat")
        assert line["text"] == "Can you hear me?" and line["role"] == "patient"
        assert line["from"] == f"{v.patient.given_name} {v.patient.family_name}"
    assert (await patient.call("chat", {"text": ""}))["error"]["code"] == "invalid_input"
    assert (await patient.call("chat", {"text": "x" * 1001}))["error"]["code"] == "invalid_input"

    # Someone joining later gets the history.
    again: Listener = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})
    joined = await again.wait_for("joined")
    assert [m["text"] for m in joined["messages"]] == ["Can you hear me?"]
    async with db.session() as session:
        kept = (await session.exec(select(VisitMessage))).all()
    assert [m.text for m in kept] == ["Can you hear me?"]


async def test_only_the_provider_ends_the_visit_and_then_nobody_joins(
    server, http_clients, waiting: WaitingFactory, sockets, db: Database
):
    v = await waiting.visitable()
    http = http_clients()
    visit_id, provider_headers = await admit_patient(server, http, v, sockets)
    url = str(server.make_url("/"))
    provider = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})
    patient = await sockets(url, "/visit", cookie_header(http), {"visit_id": visit_id})

    refused = await patient.call("end", {})
    assert refused["error"]["code"] == "forbidden"
    async with db.session() as session:
        visit = await session.get(Visit, uuid.UUID(visit_id))
        assert visit is not None and visit.ended_at is None

    queue = await sockets(url, "/clinic", provider_headers)
    ended = await provider.call("end", {})
    assert ended["ok"] is True
    await queue.wait_for(
        "queue",
        lambda q: any(
            p["appointment_id"] == str(v.appointment.id) and p["status"] == "done"
            for p in q["patients"]
        ),
    )
    for listener in (provider, patient):
        await listener.wait_for("ended")
    async with db.session() as session:
        visit = await session.get(Visit, uuid.UUID(visit_id))
        appointment = await session.get(Appointment, v.appointment.id)
    assert visit is not None and visit.ended_at is not None
    assert appointment is not None and appointment.status == AppointmentStatus.FULFILLED
    async with db.session() as session:
        audited = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "visit.end"))
        ).one()
    assert audited.patient_id == str(v.patient.id) and audited.actor_role == "provider"

    assert (await provider.call("end", {}))["error"]["code"] == "visit_ended"
    assert (await patient.call("chat", {"text": "hello?"}))["error"]["code"] == "visit_ended"
    assert (await refused_connection(server, cookie_header(http), visit_id))[
        "code"
    ] == "visit_ended"
    assert (await refused_connection(server, provider_headers, visit_id))["code"] == "visit_ended"
    page = await http.get(f"/visit/{visit_id}")
    assert page.status == 200 and "Visit ended" in await page.text()

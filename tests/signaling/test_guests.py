"""Visit guests: invitation, their way in, admission, the limit of four, and their scope."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from aiortc import RTCSessionDescription
from sqlmodel import select

from app.core.audit import AuditEvent
from app.core.db import Database
from app.web.identity import read_guest_session
from signaling.checkin.guest_tokens import guest_link_token, issue_guest_session, read_guest_link
from tests.signaling.conftest import (
    Listener,
    WaitingFactory,
    admit_patient,
    cookie_header,
    refused_connection,
)
from tests.signaling.peers import ClientPeer


async def invite(http: TestClient, visit_id: str, headers: dict[str, str], label: str) -> Any:
    resp = await http.post(f"/api/visits/{visit_id}/guests", json={"label": label}, headers=headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def guest_checks_in(http: TestClient, path: str, name: str) -> None:
    """Name, consent, devices, waiting: the guest's whole way in over HTTP."""
    token = path.rsplit("/", 1)[1]
    base = f"/api/guest/{token}"
    assert (await (await http.get(base + "/status")).json())["step"] == "name"
    resp = await http.post(base + "/name", json={"name": name})
    assert resp.status == 200 and (await resp.json())["step"] == "consent", await resp.text()
    consent = await (await http.get(base + "/consent")).json()
    assert "video instead of in person" in consent["body"]
    resp = await http.post(
        base + "/consent", json={"version": consent["version"], "accepted": True}
    )
    assert (await resp.json())["step"] == "device_check"
    resp = await http.post(base + "/device-check", json={"camera": "ok", "microphone": "ok"})
    assert resp.status == 200
    resp = await http.post(base + "/waiting")
    assert (await resp.json())["step"] == "waiting"


async def test_a_guest_is_invited_checks_in_waits_and_is_admitted(
    server, http_clients, waiting: WaitingFactory, sockets, db: Database
):
    v = await waiting.visitable()
    patient_http = http_clients()
    visit_id, provider_headers = await admit_patient(server, patient_http, v, sockets)
    url = str(server.make_url("/"))
    provider = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})
    await provider.wait_for("guests", lambda g: g["guests"] == [])

    http = http_clients()
    invitation = await invite(http, visit_id, provider_headers, "Interpreter")
    assert invitation["status"] == "invited" and invitation["path"].startswith("/guest/")
    assert invitation["url"].endswith(invitation["path"])
    page = await http.get(invitation["path"])
    assert page.status == 200 and "Join a video visit as Interpreter" in await page.text()

    queue = await sockets(url, "/clinic", provider_headers)
    guest_http = http_clients()
    # Before they are admitted, a guest cannot open the visit.
    assert (await guest_http.get(f"/visit/{visit_id}")).status == 404
    await guest_checks_in(guest_http, invitation["path"], "Ana Souza")
    listed = await provider.wait_for(
        "guests", lambda g: g["guests"] and g["guests"][0]["status"] == "waiting"
    )
    guest_id = listed["guests"][0]["id"]
    assert listed["guests"][0]["name"] == "Ana Souza"
    # The clinic queue shows the waiting guest on the patient's row too.
    await queue.wait_for(
        "queue",
        lambda q: any(p["guests_waiting"] == ["Ana Souza (Interpreter)"] for p in q["patients"]),
    )
    refused = await refused_connection(server, cookie_header(guest_http, "oc_guest"), visit_id)
    assert refused["code"] == "not_found"

    waiting_room = await sockets(url, "/waiting", cookie_header(guest_http, "oc_guest"))
    # The patient cannot admit anyone.
    patient = await sockets(url, "/visit", cookie_header(patient_http), {"visit_id": visit_id})
    assert (await patient.call("admit_guest", {"guest_id": guest_id}))["error"][
        "code"
    ] == "forbidden"
    assert (await provider.call("admit_guest", {"guest_id": "nope"}))["error"][
        "code"
    ] == "invalid_input"
    ack = await provider.call("admit_guest", {"guest_id": guest_id})
    assert ack["guest"]["status"] == "admitted", ack
    admitted = await waiting_room.wait_for("admitted")
    assert admitted["url"] == f"/visit/{visit_id}"

    guest = await sockets(
        url, "/visit", cookie_header(guest_http, "oc_guest"), {"visit_id": visit_id}
    )
    joined = await guest.wait_for("joined")
    assert joined["role"] == "guest" and joined["participant"] == f"guest:{guest_id}"
    people = await provider.wait_for("people", lambda p: f"guest:{guest_id}" in p)
    assert people[f"guest:{guest_id}"]["name"] == "Ana Souza (Interpreter)"
    page = await guest_http.get(f"/visit/{visit_id}")
    assert page.status == 200 and "End visit" not in await page.text()
    resp = await guest_http.get(f"/api/visits/{visit_id}/ice-servers")
    assert resp.status == 200

    # Guests cannot invite, list or read the attendance.
    for path in ("guests", "attendance"):
        resp = await guest_http.get(f"/api/visits/{visit_id}/{path}")
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden"
    async with db.session() as session:
        actions = {
            e.action
            for e in (
                await session.exec(select(AuditEvent).where(AuditEvent.actor_role == "guest"))
            ).all()
        }
    assert {"visit.guest_name", "visit.guest_consent", "visit.join"} <= actions


async def test_bad_invitations_are_refused_with_clear_codes(
    server, http_clients, waiting: WaitingFactory, sockets
):
    v = await waiting.visitable()
    patient_http = http_clients()
    visit_id, provider_headers = await admit_patient(server, patient_http, v, sockets)
    http = http_clients()
    for body in ({"label": ""}, {"label": "   "}, {"label": "x" * 61}, {"name": "x"}):
        resp = await http.post(
            f"/api/visits/{visit_id}/guests", json=body, headers=provider_headers
        )
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_input"
    resp = await patient_http.post(f"/api/visits/{visit_id}/guests", json={"label": "Brother"})
    assert resp.status == 403
    resp = await http.post(f"/api/visits/{uuid.uuid4()}/guests", json={"label": "x"})
    assert resp.status == 404
    assert (await http.get("/api/guest/not-a-token/status")).status == 404
    assert (await http.get("/guest/not-a-token")).status == 404
    invitation = await invite(http, visit_id, provider_headers, "Daughter")
    token = invitation["path"].rsplit("/", 1)[1]
    # Steps in the wrong order.
    resp = await http_clients().post(f"/api/guest/{token}/waiting")
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "step_missing"
    resp = await http.post(f"/api/guest/{token}/name", json={"name": " "})
    assert resp.status == 400


async def test_a_fifth_person_is_refused_and_a_removed_guest_is_out(
    server, http_clients, waiting: WaitingFactory, sockets
):
    v = await waiting.visitable()
    visit_id, provider_headers = await admit_patient(server, http_clients(), v, sockets)
    url = str(server.make_url("/"))
    provider = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})
    guests: list[tuple[str, TestClient]] = []
    for label in ("Interpreter", "Son", "Neighbour"):
        invitation = await invite(http_clients(), visit_id, provider_headers, label)
        guest_http = http_clients()
        await guest_checks_in(guest_http, invitation["path"], f"Guest {label}")
        guests.append((invitation["id"], guest_http))

    for guest_id, _ in guests[:2]:
        assert "guest" in await provider.call("admit_guest", {"guest_id": guest_id})
    full = await provider.call("admit_guest", {"guest_id": guests[2][0]})
    assert full["error"]["code"] == "visit_full"
    assert "room for 4 people" in full["error"]["message"]

    # Removing a guest ends their link and their place; the third guest then fits.
    removed_id, removed_http = guests[0]
    joined: Listener = await sockets(
        url, "/visit", cookie_header(removed_http, "oc_guest"), {"visit_id": visit_id}
    )
    await joined.wait_for("joined")
    assert (await provider.call("remove_guest", {"guest_id": removed_id}))["ok"] is True
    await joined.wait_for("removed")
    refused = await refused_connection(server, cookie_header(removed_http, "oc_guest"), visit_id)
    assert refused["code"] == "not_found"
    assert (await removed_http.get(f"/visit/{visit_id}")).status == 404
    assert "guest" in await provider.call("admit_guest", {"guest_id": guests[2][0]})


async def test_guests_are_scoped_to_one_visit_and_end_with_it(
    server, http_clients, waiting: WaitingFactory, sockets, db: Database
):
    v = await waiting.visitable()
    visit_id, provider_headers = await admit_patient(server, http_clients(), v, sockets)
    other = await waiting.visitable()
    other_visit, other_headers = await admit_patient(server, http_clients(), other, sockets)
    url = str(server.make_url("/"))
    provider = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})

    invitation = await invite(http_clients(), visit_id, provider_headers, "Interpreter")
    guest_http = http_clients()
    await guest_checks_in(guest_http, invitation["path"], "Ana")
    assert "guest" in await provider.call("admit_guest", {"guest_id": invitation["id"]})
    assert (await guest_http.get(f"/visit/{visit_id}")).status == 200

    # A fresh dict each time: the Socket.IO client takes the cookie out of the headers it is given.
    def guest_cookie() -> dict[str, str]:
        return cookie_header(guest_http, "oc_guest")

    # The guest of this visit is nobody in the other visit; the other provider cannot admit them.
    assert (await refused_connection(server, guest_cookie(), other_visit))["code"] == "not_found"
    assert (await guest_http.get(f"/visit/{other_visit}")).status == 404
    assert (await guest_http.get(f"/api/visits/{other_visit}/ice-servers")).status == 404
    other_provider = await sockets(url, "/visit", other_headers, {"visit_id": other_visit})
    ack = await other_provider.call("admit_guest", {"guest_id": invitation["id"]})
    assert ack["error"]["code"] == "not_found"
    resp = await http_clients().get(f"/api/visits/{visit_id}/guests", headers=other_headers)
    assert resp.status == 404

    # The visit ends: the link and the guest's session end with it.
    assert (await provider.call("end", {}))["ok"] is True
    token = invitation["path"].rsplit("/", 1)[1]
    resp = await guest_http.get(f"/api/guest/{token}/status")
    assert resp.status == 410 and (await resp.json())["error"]["code"] == "link_not_open"
    assert (await refused_connection(server, guest_cookie(), visit_id))["code"] == "visit_ended"
    resp = await http_clients().post(
        f"/api/visits/{visit_id}/guests", json={"label": "Late"}, headers=provider_headers
    )
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "visit_ended"


async def test_attendance_records_who_joined_and_left_and_the_visit_length(
    server, http_clients, waiting: WaitingFactory, sockets, db: Database
):
    v = await waiting.visitable()
    patient_http = http_clients()
    visit_id, provider_headers = await admit_patient(server, patient_http, v, sockets)
    url = str(server.make_url("/"))
    provider = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})
    patient = await sockets(url, "/visit", cookie_header(patient_http), {"visit_id": visit_id})
    peers = [ClientPeer("provider"), ClientPeer("patient")]
    try:
        for listener, peer in zip((provider, patient), peers, strict=True):
            await peer.pc.setLocalDescription(await peer.pc.createOffer())
            ack = await listener.call("offer", {"sdp": peer.pc.localDescription.sdp})
            await peer.pc.setRemoteDescription(RTCSessionDescription(ack["sdp"], ack["type"]))
        # A reload's second offer does not count as a second attendance.
        await peers[1].close()
        peers[1] = ClientPeer("patient again")
        await peers[1].pc.setLocalDescription(await peers[1].pc.createOffer())
        ack = await patient.call("offer", {"sdp": peers[1].pc.localDescription.sdp})
        assert ack["type"] == "answer"

        http = http_clients()
        during = await (
            await http.get(f"/api/visits/{visit_id}/attendance", headers=provider_headers)
        ).json()
        assert during["ended_at"] is None and during["duration_seconds"] is None
        assert sorted(p["role"] for p in during["participants"]) == ["patient", "provider"]
        assert all(p["left_at"] is None for p in during["participants"])

        assert (await provider.call("end", {}))["ok"] is True
        after = await (
            await http.get(f"/api/visits/{visit_id}/attendance", headers=provider_headers)
        ).json()
    finally:
        for peer in peers:
            await peer.close()
    assert after["ended_at"] is not None and after["duration_seconds"] >= 0
    names = {p["role"]: p["name"] for p in after["participants"]}
    assert names["patient"] == f"{v.patient.given_name} {v.patient.family_name}"
    assert all(p["left_at"] is not None for p in after["participants"])
    resp = await patient_http.get(f"/api/visits/{visit_id}/attendance")
    assert resp.status == 403
    page = await (await http.get(f"/visit/{visit_id}", headers=provider_headers)).text()
    assert "Who took part" in page and names["patient"] in page
    assert "Who took part" not in await (await patient_http.get(f"/visit/{visit_id}")).text()
    async with db.session() as session:
        read = (
            await session.exec(
                select(AuditEvent).where(AuditEvent.action == "visit.attendance_read")
            )
        ).all()
    assert len(read) == 3 and read[0].patient_id == str(v.patient.id)


def test_guest_tokens_name_one_guest_of_one_visit_and_expire(settings) -> None:
    guest_id, visit_id = uuid.uuid4(), uuid.uuid4()
    soon = datetime.now(UTC) + timedelta(minutes=5)
    link = guest_link_token(settings, guest_id, visit_id, soon)
    claims = read_guest_link(settings, link)
    assert claims is not None and (claims.guest_id, claims.visit_id) == (guest_id, visit_id)
    # A link is not a session, a session is not a link, and neither outlives its expiry.
    assert read_guest_session(settings, link) is None
    session_token = issue_guest_session(settings, guest_id, visit_id, soon)
    assert read_guest_link(settings, session_token) is None
    assert read_guest_session(settings, session_token) == claims
    past = datetime.now(UTC) - timedelta(seconds=1)
    assert read_guest_link(settings, guest_link_token(settings, guest_id, visit_id, past)) is None
    assert read_guest_link(settings, link[:-2] + "xx") is None

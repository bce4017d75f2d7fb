"""The one rule for text on the live side: chat lines, waiting-room messages, guest labels and
names holding a NUL or a lone surrogate are refused by field and never stored."""

from __future__ import annotations

from sqlmodel import select

from app.core.db import Database
from signaling.models import VisitGuest, VisitMessage, WaitingMessage
from tests.signaling.conftest import (
    WaitingFactory,
    admit_patient,
    check_in,
    cookie_header,
    staff_headers,
)
from tests.signaling.test_guests import invite
from tests.test_input_rules import BROKEN_TEXT


def _refused(ack: dict[str, object], field: str) -> None:
    assert isinstance(ack.get("error"), dict), ack
    error = ack["error"]
    assert error["code"] == "invalid_input" and field in error["fields"], ack


async def test_waiting_room_messages_refuse_broken_text(
    server, http_clients, waiting: WaitingFactory, sockets, db: Database
):
    v = await waiting.visitable()
    await check_in(http_clients(), v.token)
    url = str(server.make_url("/"))
    provider_headers = await staff_headers(url.rstrip("/"), v.provider)
    clinic = await sockets(url, "/clinic", provider_headers)
    for text in BROKEN_TEXT.values():
        ack = await clinic.call("message", {"appointment_id": str(v.appointment.id), "text": text})
        _refused(ack, "text")
    async with db.session() as session:
        assert (await session.exec(select(WaitingMessage))).all() == []


async def test_chat_guest_labels_and_names_refuse_broken_text(
    server, http_clients, waiting: WaitingFactory, sockets, db: Database
):
    v = await waiting.visitable()
    http = http_clients()
    visit_id, provider_headers = await admit_patient(server, http, v, sockets)
    url = str(server.make_url("/"))
    patient = await sockets(url, "/visit", cookie_header(http), {"visit_id": visit_id})
    for text in BROKEN_TEXT.values():
        _refused(await patient.call("chat", {"text": text}), "text")
    async with db.session() as session:
        assert (await session.exec(select(VisitMessage))).all() == []

    staff_http = http_clients()
    for text in BROKEN_TEXT.values():
        resp = await staff_http.post(
            f"/api/visits/{visit_id}/guests", json={"label": text}, headers=provider_headers
        )
        assert resp.status == 400 and "label" in (await resp.json())["error"]["fields"]
    invitation = await invite(staff_http, visit_id, provider_headers, "Daughter")
    token = invitation["path"].rsplit("/", 1)[1]
    guest_http = http_clients()
    for text in BROKEN_TEXT.values():
        resp = await guest_http.post(f"/api/guest/{token}/name", json={"name": text})
        assert resp.status == 400 and "name" in (await resp.json())["error"]["fields"]
    status = await (await guest_http.get(f"/api/guest/{token}/status")).json()
    assert status["step"] == "name"
    async with db.session() as session:
        guests = (await session.exec(select(VisitGuest))).all()
    assert [(g.label, g.name) for g in guests] == [("Daughter", None)]

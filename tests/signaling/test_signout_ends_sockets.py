"""A staff socket lives no longer than its session: sign-out or expiry ends it at the next event."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp
from sqlmodel import select

from app.core.auth import issue_session_token
from app.core.db import Database
from app.core.models import Role
from signaling.models import Visit, VisitMessage
from tests.signaling.conftest import (
    Listener,
    WaitingFactory,
    admit_patient,
    cookie_header,
)


async def sign_out(base_url: str, headers: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{base_url}/api/auth/logout", headers=headers)
        assert resp.status == 204, await resp.text()


async def wait_disconnected(listener: Listener, within: float = 10) -> None:
    # Without reconnection, the client's wait ends when the server has closed the connection.
    await asyncio.wait_for(listener.client.wait(), timeout=within)
    assert not listener.client.connected


def refused_as_signed_out(ack: dict[str, object]) -> bool:
    error = ack.get("error")
    return isinstance(error, dict) and error.get("code") == "not_authenticated"


async def test_signing_out_ends_the_providers_clinic_and_visit_sockets(
    server, http_clients, waiting: WaitingFactory, sockets, db: Database
):
    v = await waiting.visitable()
    http = http_clients()
    visit_id, provider_headers = await admit_patient(server, http, v, sockets)
    url = str(server.make_url("/"))
    clinic = await sockets(url, "/clinic", provider_headers)
    provider = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})
    patient = await sockets(url, "/visit", cookie_header(http), {"visit_id": visit_id})
    assert (await provider.call("chat", {"text": "Before sign-out"}))["ok"] is True

    await sign_out(url.rstrip("/"), provider_headers)

    ended = await provider.call("end", {})
    assert refused_as_signed_out(ended), ended
    message = await clinic.call(
        "message", {"appointment_id": str(v.appointment.id), "text": "Still here?"}
    )
    assert refused_as_signed_out(message), message
    await wait_disconnected(provider)
    await wait_disconnected(clinic)

    # The visit goes on for the patient, who is no staff session; nothing of the refused sent.
    assert (await patient.call("chat", {"text": "Hello?"}))["ok"] is True
    async with db.session() as session:
        visit = await session.get(Visit, uuid.UUID(visit_id))
        assert visit is not None and visit.ended_at is None
        kept = (await session.exec(select(VisitMessage))).all()
    assert sorted(m.text for m in kept) == ["Before sign-out", "Hello?"]


async def test_an_expired_session_ends_the_providers_sockets(
    server, http_clients, waiting: WaitingFactory, sockets, settings_factory
):
    v = await waiting.visitable()
    http = http_clients()
    visit_id, _ = await admit_patient(server, http, v, sockets)
    url = str(server.make_url("/"))
    settings = settings_factory()
    # A session signed in so long ago that its absolute lifetime ends in a few seconds.
    ends_at = time.time() + 10  # room for two connects on a loaded machine
    token, claims = issue_session_token(
        settings,
        user_id=v.provider.id,
        clinic_id=v.clinic.id,
        role=Role.PROVIDER,
        auth_time=int(ends_at) - settings.session_max_hours * 3600,
    )
    headers = {"Authorization": f"Bearer {token}"}
    clinic = await sockets(url, "/clinic", headers)
    provider = await sockets(url, "/visit", headers, {"visit_id": visit_id})

    # Until the moment the session ends (the token's `exp`, its absolute end), not a guess.
    await asyncio.sleep(max(0.0, claims.expires_at - time.time()) + 0.05)

    chat = await provider.call("chat", {"text": "After expiry"})
    assert refused_as_signed_out(chat), chat
    admit = await clinic.call("admit", {"appointment_id": str(v.appointment.id)})
    assert refused_as_signed_out(admit), admit
    await wait_disconnected(provider)
    await wait_disconnected(clinic)

"""The chat rate is one person's, however many sockets they open (issue 15): a second socket
does not double it, another person is not held back, and refusals are not logged one by one."""

from __future__ import annotations

import asyncio
import logging

import pytest

from signaling.visit import chat_limits
from signaling.visit.chat_limits import CHAT_MESSAGES
from tests.signaling.conftest import WaitingFactory, admit_patient, cookie_header


async def test_two_sockets_of_one_person_share_one_chat_rate(
    server,
    http_clients,
    waiting: WaitingFactory,
    sockets,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
):
    # A window far longer than the test: no message leaves it (nor does Redis's fixed window
    # roll over) however slow the machine.
    monkeypatch.setattr(chat_limits, "CHAT_WINDOW_SECONDS", 86_400)
    v = await waiting.visitable()
    http = http_clients()
    visit_id, provider_headers = await admit_patient(server, http, v, sockets)
    url = str(server.make_url("/"))
    first = await sockets(url, "/visit", cookie_header(http), {"visit_id": visit_id})
    second = await sockets(url, "/visit", cookie_header(http), {"visit_id": visit_id})
    provider = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})

    with caplog.at_level(logging.INFO):
        acks = [
            await (first if i % 2 == 0 else second).call("chat", {"text": f"line {i}"})
            for i in range(CHAT_MESSAGES)
        ]
        assert all(ack.get("ok") for ack in acks), acks
        refusals = [
            await socket.call("chat", {"text": "more"})
            for _ in range(5)
            for socket in (first, second)
        ]
    for ack in refusals:
        assert ack["error"]["code"] == "chat_rate_limited", ack
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [
        r.getMessage() for r in caplog.records
    ]
    # The provider is another person: their chat goes through.
    ack = await provider.call("chat", {"text": "Please slow down."})
    assert ack.get("ok"), ack
    # Only the accepted lines were kept and sent to the visit.
    texts = [m["text"] for event, m in provider.events if event == "chat"]
    assert "more" not in texts and texts[-1] == "Please slow down."


async def test_a_flooding_socket_is_logged_once_not_per_refused_event(
    server, http_clients, waiting: WaitingFactory, sockets, caplog: pytest.LogCaptureFixture
):
    v = await waiting.visitable()
    http = http_clients()
    visit_id, _ = await admit_patient(server, http, v, sockets)
    url = str(server.make_url("/"))
    patient = await sockets(url, "/visit", cookie_header(http), {"visit_id": visit_id})
    with caplog.at_level(logging.INFO):
        # Sent all at once: far past the socket's burst of events.
        acks = await asyncio.gather(*(patient.call("chat", {}) for _ in range(100)))
    codes = [ack["error"]["code"] for ack in acks]
    assert "rate_limited" in codes and set(codes) <= {"invalid_input", "rate_limited"}, codes
    logged = [r for r in caplog.records if "rate limited" in r.getMessage()]
    assert len(logged) == 1, [r.getMessage() for r in logged]

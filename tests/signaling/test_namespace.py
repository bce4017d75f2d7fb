"""The Socket.IO base: authentication on connect, origin check, payload validation, flood limit."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import socketio
from pydantic import BaseModel, Field

from app.core.models import Role
from app.main import create_app
from app.web.api import parse_model
from signaling.auth import staff_from_environ
from signaling.namespace import GuardedNamespace
from signaling.server import SOCKET_SERVER
from tests.conftest import Factory


class EchoIn(BaseModel):
    text: str = Field(min_length=1, max_length=50)


class EchoNamespace(GuardedNamespace):
    """A namespace for these tests only: echoes text back to a signed-in provider."""

    events_per_second = 5
    burst = 5

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        staff = await staff_from_environ(environ, Role.PROVIDER)
        await self.save_session(sid, {"user_id": str(staff.id)})

    async def on_echo(self, sid: str, data: Any) -> dict[str, Any]:
        echo = parse_model(EchoIn, data)
        session = await self.get_session(sid)
        return {"text": echo.text, "user_id": session["user_id"]}

    async def on_boom(self, sid: str, data: Any) -> None:
        raise RuntimeError("a bug in a handler")


@pytest.fixture
async def server(aiohttp_server, settings):
    app = create_app(settings)
    app[SOCKET_SERVER].register_namespace(EchoNamespace("/echo", app))
    return await aiohttp_server(app, host="127.0.0.1")


async def _connect(server, headers: dict[str, str]) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await asyncio.wait_for(
        client.connect(
            str(server.make_url("/")),
            headers=headers,
            namespaces=["/echo"],
            transports=["websocket"],
            wait_timeout=10,
        ),
        timeout=10,
    )
    return client


async def _login(server, factory: Factory, role: Role) -> dict[str, str]:
    account = await factory.staff(role)
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            server.make_url("/api/auth/login"),
            json={"email": account.user.email, "password": account.password},
        )
        assert resp.status == 200
        return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def test_a_signed_in_provider_connects_and_gets_answers(server, factory: Factory):
    headers = await _login(server, factory, Role.PROVIDER)
    client = await _connect(server, headers)
    try:
        answer = await client.call("echo", {"text": "hello"}, namespace="/echo", timeout=5)
        assert answer["text"] == "hello" and answer["user_id"]
    finally:
        await client.disconnect()


@pytest.mark.parametrize("role", [None, Role.SCHEDULER])
async def test_connection_is_refused_without_the_right_session(server, factory: Factory, role):
    headers = await _login(server, factory, role) if role else {}
    with pytest.raises(socketio.exceptions.ConnectionError):
        await _connect(server, headers)


async def test_a_foreign_origin_is_refused(server, factory: Factory):
    headers = await _login(server, factory, Role.PROVIDER)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await _connect(server, {**headers, "Origin": "https://evil.example"})


async def test_bad_payloads_and_unknown_events_get_error_acks(server, factory: Factory):
    client = await _connect(server, await _login(server, factory, Role.PROVIDER))
    try:
        bad = await client.call("echo", {"text": ""}, namespace="/echo", timeout=5)
        assert bad["error"]["code"] == "invalid_input" and "text" in bad["error"]["fields"]
        wrong = await client.call("echo", "not an object", namespace="/echo", timeout=5)
        assert wrong["error"]["code"] == "invalid_input"
        unknown = await client.call("nope", {}, namespace="/echo", timeout=5)
        assert unknown["error"]["code"] == "unknown_event"
        crash = await client.call("boom", {}, namespace="/echo", timeout=5)
        assert crash["error"]["code"] == "internal_error"
        # The namespace still serves this client.
        ok = await client.call("echo", {"text": "still here"}, namespace="/echo", timeout=5)
        assert ok["text"] == "still here"
    finally:
        await client.disconnect()


async def test_a_flooding_client_is_limited_without_slowing_others(server, factory: Factory):
    flooder = await _connect(server, await _login(server, factory, Role.PROVIDER))
    calm = await _connect(server, await _login(server, factory, Role.PROVIDER))
    try:
        answers = await asyncio.gather(
            *(
                flooder.call("echo", {"text": f"m{i}"}, namespace="/echo", timeout=5)
                for i in range(30)
            )
        )
        limited = [a for a in answers if "error" in a]
        assert 20 <= len(limited) <= 25
        assert {a["error"]["code"] for a in limited} == {"rate_limited"}
        ok = await calm.call("echo", {"text": "calm"}, namespace="/echo", timeout=5)
        assert ok["text"] == "calm"
    finally:
        await flooder.disconnect()
        await calm.disconnect()

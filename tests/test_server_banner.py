"""Requests aiohttp refuses before the app sees them (400 on a malformed request) answer with
`Server: OpenConsult` and no version of aiohttp or Python anywhere, like every other answer."""

from __future__ import annotations

import asyncio
import platform

import aiohttp
import pytest

from app.main import create_app

MALFORMED = [
    pytest.param(b"GARBAGE\x01 / HTTP/1.1\r\nHost: x\r\n\r\n", id="garbage-request-line"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", id="broken-header"),
    pytest.param(b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", id="unknown-version"),
]


async def raw_exchange(host: str, port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        # aiohttp closes the connection after an error answer: read it whole.
        return await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()


@pytest.mark.parametrize("request_bytes", MALFORMED)
async def test_a_malformed_request_is_answered_400_as_openconsult(
    aiohttp_server, settings_factory, request_bytes: bytes
):
    server = await aiohttp_server(create_app(settings_factory()), host="127.0.0.1")
    answer = await raw_exchange("127.0.0.1", server.port, request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    assert status_line.split(" ")[1] == "400", answer
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    assert headers["server"] == "OpenConsult", answer
    for banner in (b"aiohttp", aiohttp.__version__.encode(), b"Python/", b"CPython"):
        assert banner not in answer, answer
    assert platform.python_version().encode() not in answer, answer
    assert body  # aiohttp's own short reason, without a version

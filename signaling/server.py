"""The Socket.IO server: attached to the aiohttp app, shared across processes through Redis."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import orjson
import socketio
from aiohttp import web

from app.core.config import Settings

log = logging.getLogger(__name__)

SOCKETIO_PATH = "socket.io"
SOCKET_SERVER = web.AppKey("socket_server", socketio.AsyncServer)


def allowed_origins(settings: Settings) -> list[str] | None:
    """The public URL's origin when one is set; otherwise None, which means same-origin only."""
    if not settings.public_url:
        return None
    parts = urlsplit(settings.public_url)
    return [f"{parts.scheme}://{parts.netloc}"]


class JsonCodec:
    """The `json` module Socket.IO and Engine.IO encode packets with: orjson, several times
    faster on a 1,000-row queue, with output as compact as theirs. Decoding stays the standard
    library's: it reads text holding a lone surrogate, so a handler can refuse that text by
    field (orjson would drop the whole packet); what orjson will not encode goes the same way."""

    @staticmethod
    def dumps(obj: object, **_compact: object) -> str:
        try:
            return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            return json.dumps(obj, separators=(",", ":"))

    @staticmethod
    def loads(text: str | bytes) -> object:
        return json.loads(text)


class JsonPacket(socketio.packet.Packet):  # type: ignore[misc]  # socketio has no types
    """Socket.IO packets whose payloads are JSON. OpenConsult sends no binary over its sockets
    (photos and documents go over HTTP), so a payload is not walked item by item looking for
    bytes: on a 1,000-row queue that walk cost as much as encoding it. Bytes nested in a payload
    fail to encode, loudly. Binary packets a client sends are still decoded."""

    @classmethod
    def data_is_binary(cls, data: object) -> bool:
        return isinstance(data, bytes | bytearray)


def create_socket_server(settings: Settings) -> socketio.AsyncServer:
    """An AsyncServer on the in-process manager, or on Redis so events cross processes."""
    manager = None
    if settings.redis_url:
        manager = socketio.AsyncRedisManager(
            settings.redis_url, channel=f"{settings.redis_key_prefix}socketio"
        )
    return socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager,
        serializer=JsonPacket,
        json=JsonCodec,
        cors_allowed_origins=allowed_origins(settings),
        max_http_buffer_size=64 * 1024,
        logger=False,
        engineio_logger=False,
    )


def node_socket_path(node_id: str) -> str:
    """Where this node also serves Socket.IO: a proxy sends `/node/<id>/…` to node <id>
    unchanged, so a page can reach the node that runs its visit."""
    return f"/node/{node_id}/{SOCKETIO_PATH}"


def attach_socket_server(
    app: web.Application, sio: socketio.AsyncServer, node_id: str | None = None
) -> None:
    """Serve Socket.IO at /socket.io/ (and at this node's own path) and disconnect every
    client on shutdown."""
    app[SOCKET_SERVER] = sio
    sio.attach(app, socketio_path=SOCKETIO_PATH)
    if node_id is not None:
        path = node_socket_path(node_id) + "/"
        app.router.add_get(path, sio.handle_request)
        app.router.add_post(path, sio.handle_request)
        app.router.add_route("OPTIONS", path, sio.handle_request)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        yield
        await sio.shutdown()

    app.cleanup_ctx.append(lifecycle)

"""Sending a thousand waiting patients their new places at once.

`sio.emit` per patient costs a task and a wait each, and with Redis one published message per
patient that every node reads. Here the places of one change go out as one batch: each node
encodes and queues each place on the sockets of its own patients in one pass (no task per
patient), and with Redis the batch crosses to the other nodes as one message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
import socketio
from engineio.exceptions import EngineIOError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from socketio import packet

from signaling.rooms import WAITING_NAMESPACE, appointment_room

log = logging.getLogger(__name__)

#: How long the listener waits before subscribing again after Redis went away.
RESUBSCRIBE_SECONDS = 1.0

Places = Mapping[uuid.UUID, dict[str, Any]]


class PlaceDelivery:
    """Delivers `place` events to the waiting room's sockets, on every node."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio

    async def send(self, places: Places) -> None:
        await self.deliver_here(places)

    async def deliver_here(self, places: Places) -> int:
        """Queue each place on the sockets of its patient connected to this process; how many
        sockets got one."""
        sent = 0
        for appointment_id, place in places.items():
            room = appointment_room(appointment_id)
            sockets = [
                eio for _sid, eio in self.sio.manager.get_participants(WAITING_NAMESPACE, room)
            ]
            if not sockets:
                continue
            encoded = self.sio.packet_class(
                packet.EVENT, namespace=WAITING_NAMESPACE, data=["place", place]
            ).encode()
            for eio_sid in sockets:
                # Engine.IO queues the message for the socket's writer: no wait per patient.
                try:
                    await self.sio.eio.send(eio_sid, encoded)
                except EngineIOError:  # closed meanwhile: its disconnect is on its way
                    continue
                sent += 1
        return sent

    async def start(self) -> None:
        """Nothing to listen to on one process."""

    async def stop(self) -> None:
        """Nothing to stop on one process."""


class RedisPlaceDelivery(PlaceDelivery):
    """With Redis: this node's patients get their places at once, the other nodes' from one
    published message, which each node delivers to the patients connected to it."""

    def __init__(self, sio: socketio.AsyncServer, redis: Redis, channel: str) -> None:
        super().__init__(sio)
        self.redis = redis
        self.channel = channel
        self.sender = uuid.uuid4().hex
        self._listener: asyncio.Task[None] | None = None
        self._first_try = asyncio.Event()

    async def send(self, places: Places) -> None:
        await self.deliver_here(places)
        message = orjson.dumps(
            {"sender": self.sender, "places": {str(a): p for a, p in places.items()}}
        )
        try:
            await self.redis.publish(self.channel, message)
        except RedisError:
            # This node's patients have theirs; the others get theirs at the next change.
            log.warning("could not publish %d places to the other nodes", len(places))

    async def start(self) -> None:
        """Listen for the other nodes' places; returns after the first try to subscribe, so a
        node that starts with Redis up misses no batch sent after it is ready. With Redis
        down the node starts anyway (its /readyz says Redis is unreachable) and keeps trying."""
        self._listener = asyncio.create_task(self._listen())
        await self._first_try.wait()

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def _listen(self) -> None:
        while True:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    self._first_try.set()
                    async for message in pubsub.listen():
                        try:
                            await self._received(message.get("data"))
                        except Exception:  # one bad batch must not end the listening
                            log.exception("could not deliver places from another node")
            except (RedisError, OSError) as error:
                self._first_try.set()
                log.warning("places channel: %s; subscribing again", error)
                await asyncio.sleep(RESUBSCRIBE_SECONDS)

    async def _received(self, data: object) -> None:
        if not isinstance(data, bytes | str):
            return
        try:
            batch = orjson.loads(data)
            if batch["sender"] == self.sender:
                return
            places = {uuid.UUID(a): p for a, p in batch["places"].items()}
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("ignored a malformed places message")
            return
        await self.deliver_here(places)

"""What the waiting room keeps on the application object."""

from __future__ import annotations

from aiohttp import web

from signaling.queue.notifier import QueueNotifier
from signaling.queue.presence import PresenceStore

PRESENCE = web.AppKey("presence", PresenceStore)
NOTIFIER = web.AppKey("queue_notifier", QueueNotifier)

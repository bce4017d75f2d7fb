"""What the waiting room keeps on the application object, and the base of its namespaces."""

from __future__ import annotations

from aiohttp import web

from signaling.namespace import GuardedNamespace
from signaling.queue.chart import LastSignedNotes
from signaling.queue.notifier import QueueNotifier
from signaling.queue.presence import PresenceStore

PRESENCE = web.AppKey("presence", PresenceStore)
NOTIFIER = web.AppKey("queue_notifier", QueueNotifier)

#: When each patient's last note was signed; the record sets this (records sit above signaling,
#: so the queue asks through this key instead of importing them).
LAST_SIGNED_NOTES: web.AppKey[LastSignedNotes] = web.AppKey("queue_last_signed_notes")


class QueueNamespace(GuardedNamespace):
    """A namespace of the live queue: it sees who is present and tells the queues of changes."""

    @property
    def presence(self) -> PresenceStore:
        return self.app[PRESENCE]

    @property
    def notifier(self) -> QueueNotifier:
        return self.app[NOTIFIER]

"""Bounds on WebRTC offers, checked before anything parses them.

An offer's cost grows with its media sections (aiortc parses each, the relay builds a transceiver
for each), so one participant sending big offers in a row could stall the process for everyone.
Two cheap checks come first in the offer handler:

- an offer with more media sections than a participant can use is refused
  (`too_many_media_sections`): the visit page offers audio and video it sends on plus one
  receive-only pair per other participant, `2 * (MAX_PARTICIPANTS - 1)` sections (a screen share
  replaces the video track: no section of its own);
- each participant gets a small token bucket of offers (`offer_rate_limited` past it): enough for
  reloads and reconnects, not for a flood. Refusals are not logged one by one.
"""

from __future__ import annotations

import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import InvalidInput, TooManyRequests
from signaling.relay.room import MAX_PARTICIPANTS

MAX_MEDIA_SECTIONS = 2 * (MAX_PARTICIPANTS - 1)
# A participant's offers: a burst (a reload, a reconnect, a device change), then one a second.
OFFER_BURST = 8.0
OFFERS_PER_SECOND = 1.0
Clock = Callable[[], float]
PRUNE_AT = 1000


class TooManyMediaSections(InvalidInput):
    code = "too_many_media_sections"


class OfferRateLimited(TooManyRequests):
    code = "offer_rate_limited"


def media_sections(sdp: str) -> int:
    """How many m-lines an SDP text has, without parsing it."""
    return sdp.count("\nm=") + (1 if sdp.startswith("m=") else 0)


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class OfferLimits:
    """The offer buckets of one process's visit namespace, by (visit, participant)."""

    burst: float = OFFER_BURST
    rate: float = OFFERS_PER_SECOND
    clock: Clock = time.monotonic
    _buckets: dict[tuple[uuid.UUID, str], _Bucket] = field(default_factory=dict)

    def take(self, key: tuple[uuid.UUID, str]) -> float:
        """Spend one offer of `key`'s bucket; 0 when allowed, else seconds until the next."""
        now = self.clock()
        if len(self._buckets) >= PRUNE_AT:
            self._prune(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1:
            return (1 - bucket.tokens) / self.rate
        bucket.tokens -= 1
        return 0.0

    def check(self, visit_id: uuid.UUID, participant_id: str, data: Any) -> None:
        """Refuse an offer past the participant's rate, or with more media sections than they
        can use; called before the offer is validated or parsed."""
        wait = self.take((visit_id, participant_id))
        if wait:
            raise OfferRateLimited(
                "Too many offers in a row; wait a moment before reconnecting.",
                retry_after=max(1, round(wait)),
            )
        sdp = data.get("sdp") if isinstance(data, dict) else None
        if isinstance(sdp, str) and media_sections(sdp) > MAX_MEDIA_SECTIONS:
            raise TooManyMediaSections(
                f"An offer may have at most {MAX_MEDIA_SECTIONS} media sections.",
                fields={"sdp": f"more than {MAX_MEDIA_SECTIONS} media sections"},
            )

    def _prune(self, now: float) -> None:
        """Drop buckets that have refilled (their participant has been quiet): a full bucket
        is the same as none."""
        full_after = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.updated >= full_after]:
            del self._buckets[key]


_LIMITS: weakref.WeakKeyDictionary[object, OfferLimits] = weakref.WeakKeyDictionary()


def limits_of(namespace: object) -> OfferLimits:
    """The offer limits of a namespace (one per namespace object, made on first use)."""
    found = _LIMITS.get(namespace)
    if found is None:
        found = _LIMITS[namespace] = OfferLimits()
    return found


def check_offer(namespace: object, visit_id: uuid.UUID, participant_id: str, data: Any) -> None:
    """The offer handler's first step: see `OfferLimits.check`."""
    limits_of(namespace).check(visit_id, participant_id, data)

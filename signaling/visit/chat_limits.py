"""How fast one person may chat in visits: per person, not per socket.

Each socket already has its own event bucket (signaling.namespace), so a person with several
tabs or sockets could multiply it; the chat bound counts by who they are (the provider, the
patient or a guest: `Attendee.participant_id`), in the app's rate limiter: Redis when REDIS_URL
is set, so every process counts together, else this process's memory. A refusal is answered
(`chat_rate_limited`), never logged one by one: a flood must not flood the log too.
"""

from __future__ import annotations

from aiohttp import web

from app.core.errors import TooManyRequests
from app.web.keys import RATE_LIMITER
from signaling.visit.service import Attendee

CHAT_MESSAGES = 10
CHAT_WINDOW_SECONDS = 10


class ChatRateLimited(TooManyRequests):
    code = "chat_rate_limited"


async def check_chat(app: web.Application, who: Attendee) -> None:
    """Count one chat message of `who`; refuse it past CHAT_MESSAGES in CHAT_WINDOW_SECONDS."""
    sent = await app[RATE_LIMITER].hit(f"chat:{who.participant_id}", CHAT_WINDOW_SECONDS)
    if sent > CHAT_MESSAGES:
        raise ChatRateLimited(
            "You are sending messages too fast; wait a few seconds.",
            retry_after=CHAT_WINDOW_SECONDS,
        )

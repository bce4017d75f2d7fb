"""The outbox on /metrics: due messages, those given up on, the oldest one's wait; no address."""

from __future__ import annotations

from datetime import timedelta

from app.core.db import Database
from app.core.models import utcnow
from app.main import create_app
from scheduling.models import Channel, OutboxMessage, OutboxStatus
from tests.support.metrics import Scrape


def _message(channel: Channel, to: str, **fields: object) -> OutboxMessage:
    return OutboxMessage(
        channel=channel,
        kind="reminder",
        to_addr=to,
        subject="Reminder",
        body_text="See you",
        **fields,
    )


async def test_the_backlog_and_failures_show_per_channel(
    aiohttp_client, settings_factory, db: Database
):
    # No sender runs here: what is due stays due.
    client = await aiohttp_client(create_app(settings_factory(background_tasks=False)))
    empty = Scrape(await (await client.get("/metrics")).text())
    assert empty.value("openconsult_outbox_backlog", channel="email") == 0
    assert empty.value("openconsult_outbox_oldest_due_seconds") == 0

    now = utcnow()
    async with db.session() as session:
        session.add_all(
            [
                _message(
                    Channel.EMAIL, "due1@mail.example", send_after=now - timedelta(minutes=10)
                ),
                _message(Channel.EMAIL, "due2@mail.example", send_after=now - timedelta(minutes=1)),
                _message(Channel.SMS, "+15555550123", send_after=now - timedelta(minutes=2)),
                # A reminder for tomorrow is not a backlog; one sent is not either.
                _message(Channel.EMAIL, "later@mail.example", send_after=now + timedelta(days=1)),
                _message(
                    Channel.EMAIL, "sent@mail.example", send_after=now, status=OutboxStatus.SENT
                ),
                _message(Channel.SMS, "+15555550199", send_after=now, status=OutboxStatus.FAILED),
                # Given up on long ago: no longer counted.
                _message(
                    Channel.EMAIL,
                    "old@mail.example",
                    send_after=now - timedelta(days=3),
                    status=OutboxStatus.FAILED,
                ),
            ]
        )
        await session.commit()

    scrape = Scrape(await (await client.get("/metrics")).text())
    assert scrape.value("openconsult_outbox_backlog", channel="email") == 2
    assert scrape.value("openconsult_outbox_backlog", channel="sms") == 1
    assert scrape.value("openconsult_outbox_failed", channel="sms") == 1
    assert scrape.value("openconsult_outbox_failed", channel="email") == 0
    assert 9 * 60 <= scrape.value("openconsult_outbox_oldest_due_seconds") < 24 * 3600
    for address in ("due1@mail.example", "+15555550123", "+15555550199", "mail.example"):
        assert address not in scrape.text

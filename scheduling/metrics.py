"""What /metrics shows of the outbox: the backlog of due messages and those given up on.

Read from the database at each scrape, so every node reports the same cluster-wide figures
(a dashboard takes their max, not their sum)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import Gauge

from app.core.models import utcnow
from app.web.keys import DATABASE
from app.web.metrics import METRICS, on_scrape
from scheduling import outbox
from scheduling.models import Channel


def setup_metrics(app: web.Application) -> None:
    registry = app[METRICS].registry
    backlog = Gauge(
        "openconsult_outbox_backlog",
        "Emails and texts due and not sent yet, by channel (the whole cluster's)",
        ["channel"],
        registry=registry,
    )
    failed = Gauge(
        "openconsult_outbox_failed",
        "Emails and texts given up on (failed, not resent) due in the last 24 hours, by channel",
        ["channel"],
        registry=registry,
    )
    oldest = Gauge(
        "openconsult_outbox_oldest_due_seconds",
        "How long the oldest due, unsent email or text has waited",
        registry=registry,
    )

    async def refresh() -> None:
        due, gave_up, waited = await outbox.figures(app[DATABASE], utcnow())
        for channel in Channel:
            backlog.labels(channel.value).set(due.get(channel, 0))
            failed.labels(channel.value).set(gave_up.get(channel, 0))
        oldest.set(waited)

    on_scrape(app, refresh)

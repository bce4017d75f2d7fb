"""Opening the clinic queue records each patient it showed, as appointment lists do."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import select

from app.core.audit import AuditEvent
from app.core.db import Database
from tests.signaling.conftest import WaitingFactory, staff_headers


async def queue_reads(db: Database, actor_id: str, within: float = 10) -> set[str | None]:
    """The patients a staff member's queue reads named, once both are recorded."""
    async with asyncio.timeout(within):
        while True:
            async with db.session() as session:
                events = (
                    await session.exec(
                        select(AuditEvent).where(
                            AuditEvent.action == "queue.read", AuditEvent.actor_id == actor_id
                        )
                    )
                ).all()
            if len(events) >= 2:
                assert all(e.object_id == e.patient_id for e in events)
                return {e.patient_id for e in events}
            await asyncio.sleep(0.05)


async def test_opening_the_queue_records_each_patient_shown(
    server, waiting: WaitingFactory, sockets, db: Database
):
    clinic, provider, scheduler, kind = await waiting.clinic_day()
    nora, _, _ = await waiting.appointment(clinic, provider, kind)
    ole, _, _ = await waiting.appointment(
        clinic, provider, kind, starts_in=timedelta(minutes=40), given="Ole"
    )
    url = str(server.make_url("/"))
    for account in (provider, scheduler):
        listener = await sockets(url, "/clinic", await staff_headers(url.rstrip("/"), account))
        await listener.wait_for("queue")
        assert await queue_reads(db, str(account.id)) == {str(nora.id), str(ole.id)}

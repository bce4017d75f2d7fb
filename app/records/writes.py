"""How a write to the record waits its turn.

Writers pass `writes=db.write_queue()` so a burst of saves queues instead of contending; a caller
that needs no queue (a script, a test) leaves the default.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, nullcontext

from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

Writes = AbstractAsyncContextManager[object]
NO_QUEUE: Writes = nullcontext()


async def end_reads(session: AsyncSession) -> None:
    """End the read transaction: a request must not sit on a pooled connection while it waits
    in the write queue, or the writer ahead of it (needing a connection) can never finish."""
    await session.commit()


async def insert(session: AsyncSession, writes: Writes, row: SQLModel) -> None:
    """Add `row` in its turn: the reads end first, then the write waits in the queue."""
    await end_reads(session)
    async with writes:
        session.add(row)
        await session.commit()

"""Async engine and sessions; SQLite gets the pragmas a shared file needs."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.core.crypto import Keyring, MacKeyring
from app.core.events import DomainEvent, take_committed
from app.core.sealed import use_keyring

log = logging.getLogger(__name__)

Subscriber = Callable[[DomainEvent], Awaitable[None]]


class Database:
    """The app's engine and session factory; one per process."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        keyring: Keyring | None = None,
        audit_keys: MacKeyring | None = None,
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            sa.event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        # Keys kept outside the database: the note keys seal chat text (`SealedText` columns),
        # the audit keys sign the audit chain. A handle without them can still read and write
        # everything else (migrations, tests' factories).
        self.keyring = keyring
        if keyring is not None:
            use_keyring(self.engine, keyring)
        self.audit_keys = audit_keys
        self.sessionmaker = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        # SQLite serialises writers itself, but the audit chain reads then writes; in one
        # process this lock keeps that pair atomic (several processes need PostgreSQL).
        self.audit_lock = asyncio.Lock()
        # Audit events this handle wrote, by (action, outcome): /metrics reads them.
        self.audit_written: Counter[tuple[str, str]] = Counter()
        self._subscribers: list[Subscriber] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """The app's database with the keys the settings name."""
        return cls(
            settings.resolved_database_url,
            keyring=Keyring.from_settings(settings),
            audit_keys=MacKeyring.from_settings(settings),
        )

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call `subscriber` with each domain event of every transaction that commits."""
        self._subscribers.append(subscriber)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session; the events of what it committed are delivered once it is closed."""
        try:
            async with self.sessionmaker() as session:
                yield session
        finally:
            await self._deliver(take_committed(session))

    async def _deliver(self, events: list[DomainEvent]) -> None:
        for event in events:
            for subscriber in self._subscribers:
                try:
                    await subscriber(event)
                except Exception:
                    log.exception("a subscriber failed on %s", event)

    def write_queue(self) -> AbstractAsyncContextManager[object]:
        """Hold around a short write transaction. SQLite admits one writer and makes the others
        sleep-poll (backing off to 100 ms a try), which turns a burst of writes into seconds of
        latency; queueing this process's writers here avoids the poll. PostgreSQL needs none."""
        if self.is_sqlite:
            return self.audit_lock
        return nullcontext()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()

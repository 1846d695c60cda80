"""What a storage backend provides to the repositories: transactions, a few dialect hooks, and wake-ups.

The repositories (`jobs`, `quotas`, `guilds`) are written once, in the SQL that SQLite (3.35+) and PostgreSQL
(13+) both understand, with `?` placeholders. Each backend module (`sqlite`, `postgres`) implements `Database`:
how a transaction starts and what it locks, how placeholders reach the driver, its migrations, and the few
statements whose wording differs (the member lock of a quota reservation, `SKIP LOCKED` in the lease claim).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

from bot.storage.url import Backend

__all__ = ["Connection", "Database", "EventSignal", "JobSignal", "Row"]


class Row(Protocol):
    """One result row; columns by name (an `aiosqlite.Row` or an `asyncpg.Record`)."""

    def __getitem__(self, key: str, /) -> Any: ...


class Connection(Protocol):
    """A connection inside one transaction. SQL uses `?` placeholders on every backend."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...


class JobSignal(Protocol):
    """Wakes a worker when a job is created (by this process or, on PostgreSQL, by any process)."""

    async def wait(self) -> None:
        """Return as soon as a job has been created since the signal opened or since the last `wait` returned.
        Bound it with `asyncio.timeout(...)`: a worker still polls now and then, in case a wake-up was missed."""
        ...


class EventSignal:
    """A `JobSignal` that a backend sets from its own notification source."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.lost = False

    def lose(self) -> None:
        """The notification source is gone (its connection dropped): `wait` raises from now on."""
        self.lost = True
        self.event.set()

    async def wait(self) -> None:
        await self.event.wait()
        self.event.clear()
        if self.lost:
            raise ConnectionError("the connection that listened for new jobs was lost")


class Database(Protocol):
    backend: Backend

    skip_locked: str
    """Appended to the lease claim's row selection: `FOR UPDATE SKIP LOCKED` where the database has row locks."""

    def read(self) -> AbstractAsyncContextManager[Connection]:
        """A consistent snapshot for several SELECTs."""
        ...

    def write(self) -> AbstractAsyncContextManager[Connection]:
        """One write transaction: committed on success, rolled back on any exception (cancellation included)."""
        ...

    async def statement(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement on its own (its own transaction) and return its rows: as atomic as `write()` or
        `read()` holding that one statement, for less. On SQLite it is one trip to aiosqlite's thread instead of
        three (BEGIN and COMMIT/ROLLBACK are trips too); on PostgreSQL one round trip instead of three. For the
        busiest single-statement queries (the poller's reads and reschedules)."""
        ...

    async def lock_member(self, conn: Connection, guild_id: int, user_id: int) -> None:
        """Inside a write: no other quota reservation of this member runs until this transaction ends."""
        ...

    async def lock_pool(self, conn: Connection, pool_id: int) -> None:
        """Inside a write, after `lock_member`: no other draw from this channel budget runs until this
        transaction ends (always taken in that order, so two reservations never wait for each other in a cycle)."""
        ...

    async def announce_job(self, conn: Connection, job_id: int) -> None:
        """Inside the write that created the job: wake the `JobSignal`s (delivered when the transaction commits)."""
        ...

    def job_signal(self) -> AbstractAsyncContextManager[JobSignal]: ...

    async def backup(self, dest: Path) -> None: ...

    async def close(self) -> None: ...

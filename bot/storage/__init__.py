"""The SQLite store: jobs, the quota ledger, quota and guild settings.

    store = await Store.open(settings.database_path, clock=clock)
    try:
        ...
    finally:
        await store.close()

or `async with await Store.open(path) as store:` or `async with open_store(path) as store:`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType

from bot.domain.clock import Clock, system_clock
from bot.storage.database import Database, fetch_one
from bot.storage.guilds import GuildRepository
from bot.storage.jobs import JobRepository
from bot.storage.models import (
    GuildConfig,
    JobNotFound,
    LedgerEntry,
    LedgerKind,
    NewJob,
    QuotaRequest,
    Refused,
    Reserved,
    UsageRow,
)
from bot.storage.quotas import QuotaRepository

__all__ = [
    "GuildConfig",
    "JobNotFound",
    "LedgerEntry",
    "LedgerKind",
    "NewJob",
    "QuotaRequest",
    "Refused",
    "Reserved",
    "Store",
    "UsageRow",
    "open_store",
]


class Store:
    """One open database and its repositories. Create with `await Store.open(path)`."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self.clock = clock
        """Every timestamp the store writes comes from this clock."""
        self.jobs = JobRepository(db, clock)
        self.quotas = QuotaRepository(db, clock)
        self.guilds = GuildRepository(db, clock)

    @classmethod
    async def open(cls, path: Path, *, clock: Clock = system_clock) -> Store:
        """Open (creating the folder and file if missing) and migrate to the latest schema."""
        return cls(await Database.open(Path(path)), clock)

    @property
    def path(self) -> Path:
        return self._db.path

    async def close(self) -> None:
        await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def backup(self, dest: Path) -> None:
        """A consistent copy of the whole store at `dest` (a new file), taken without stopping the bot."""
        await self._db.backup(Path(dest))

    async def get_meta(self, key: str) -> str | None:
        async with self._db.read() as conn:
            row = await fetch_one(conn, "SELECT value FROM meta WHERE key = ?", (key,))
        return str(row["value"]) if row is not None else None

    async def set_meta(self, key: str, value: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


@asynccontextmanager
async def open_store(path: Path, *, clock: Clock = system_clock) -> AsyncIterator[Store]:
    """`async with open_store(path) as store:` — opened, migrated, and closed on exit."""
    store = await Store.open(path, clock=clock)
    try:
        yield store
    finally:
        await store.close()

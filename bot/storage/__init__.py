"""The store: jobs, the quota ledger, quota and guild settings, on SQLite or PostgreSQL.

    store = await Store.open(settings.database, clock=clock)   # or a "sqlite:///…" or "postgresql://…" URL, or a Path
    try:
        ...
    finally:
        await store.close()

or `async with await Store.open(url) as store:` or `async with open_store(url) as store:`.

The repositories (`jobs`, `quotas`, `guilds`, `teams`, `characters`, `styles`) are shared; `sqlite` and `postgres`
are the two backends behind them (see `database.Database` and docs/storage.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType

from bot.domain.clock import Clock, system_clock
from bot.storage.characters import CharacterRepository, NotSaved
from bot.storage.database import Database
from bot.storage.guilds import GuildRepository
from bot.storage.jobs import JobRepository
from bot.storage.models import (
    BlockedWord,
    ChannelPool,
    GuildConfig,
    JobNotFound,
    Lease,
    LedgerEntry,
    LedgerKind,
    NewJob,
    PoolUsageRow,
    QuotaRequest,
    Refused,
    Reserved,
    TeamChannel,
    UsageRow,
)
from bot.storage.quotas import QuotaRepository
from bot.storage.styles import StyleRepository, TooManyStyles
from bot.storage.teams import TeamRepository
from bot.storage.url import Backend, DatabaseUrl

__all__ = [
    "Backend",
    "BlockedWord",
    "ChannelPool",
    "DatabaseUrl",
    "GuildConfig",
    "JobNotFound",
    "Lease",
    "LedgerEntry",
    "LedgerKind",
    "NewJob",
    "NotSaved",
    "PoolUsageRow",
    "QuotaRequest",
    "Refused",
    "Reserved",
    "Store",
    "TeamChannel",
    "TooManyStyles",
    "UsageRow",
    "open_store",
]


class Store:
    """One open database and its repositories. Create with `await Store.open(url_or_path)`."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self.clock = clock
        """Every timestamp the store writes comes from this clock."""
        self.jobs = JobRepository(db, clock)
        self.quotas = QuotaRepository(db, clock)
        self.guilds = GuildRepository(db, clock)
        self.teams = TeamRepository(db, clock)
        self.characters = CharacterRepository(db, clock)
        self.styles = StyleRepository(db, clock)

    @classmethod
    async def open(cls, target: Path | str | DatabaseUrl, *, clock: Clock = system_clock) -> Store:
        """Open and migrate to the latest schema. `target` is a `DATABASE_URL` or the path of a SQLite file (its
        folder and the file are created if missing)."""
        url = _as_url(target)
        db: Database
        if url.backend is Backend.POSTGRESQL:
            from bot.storage.postgres import PostgresDatabase  # asyncpg is loaded only by deployments that use it

            db = await PostgresDatabase.open(url)
        else:
            from bot.storage.sqlite import SqliteDatabase

            db = await SqliteDatabase.open(url.path)
        return cls(db, clock)

    @property
    def backend(self) -> Backend:
        return self._db.backend

    @property
    def path(self) -> Path:
        """The SQLite file. A PostgreSQL store has none (ValueError)."""
        path = getattr(self._db, "path", None)
        if not isinstance(path, Path):
            raise ValueError("a PostgreSQL store has no database file")
        return path

    async def close(self) -> None:
        await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def backup(self, dest: Path) -> None:
        """A consistent copy of the whole SQLite store at `dest` (a new file), taken without stopping the bot.
        A PostgreSQL store is backed up with `pg_dump` instead (NotImplementedError)."""
        await self._db.backup(Path(dest))

    async def get_meta(self, key: str) -> str | None:
        async with self._db.read() as conn:
            row = await conn.fetch_one("SELECT value FROM meta WHERE key = ?", (key,))
        return str(row["value"]) if row is not None else None

    async def set_meta(self, key: str, value: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


def _as_url(target: Path | str | DatabaseUrl) -> DatabaseUrl:
    if isinstance(target, DatabaseUrl):
        return target
    if isinstance(target, str) and "://" in target:
        return DatabaseUrl.parse(target)
    return DatabaseUrl.parse(f"sqlite:///{target}")


@asynccontextmanager
async def open_store(target: Path | str | DatabaseUrl, *, clock: Clock = system_clock) -> AsyncIterator[Store]:
    """`async with open_store(url_or_path) as store:` — opened, migrated, and closed on exit."""
    store = await Store.open(target, clock=clock)
    try:
        yield store
    finally:
        await store.close()

"""The PostgreSQL backend (asyncpg): a connection pool, migrations under an advisory lock, LISTEN/NOTIFY.

Transactions run at READ COMMITTED, PostgreSQL's default, and each guarantee is made explicit where it is needed:

- A job's status moves by compare-and-set (`UPDATE … WHERE status IN (…)`). A concurrent update of the same row
  makes the second one wait and then re-check its WHERE against the committed row, so exactly one wins; the
  transition trigger refuses anything outside the state machine.
- A refund is an `INSERT … ON CONFLICT DO NOTHING` against a unique index on the job's refund row.
- A quota reservation (check the window, then insert) holds a transaction-scoped advisory lock on the member
  (and, in a channel with a shared budget, then one on the budget).
  The check reads several tables (ledger, jobs, member and role settings), so there is no one row to lock with
  `FOR UPDATE`, and a member's first reservation has no row at all yet. SERIALIZABLE would be correct too, but
  under a burst (fifty clicks at once) most transactions would fail and have to retry; the advisory lock
  queues them instead, one member at a time, while different members proceed in parallel.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from bot.storage.database import Connection, EventSignal, Row
from bot.storage.schema import Migration, load_migrations
from bot.storage.url import Backend, DatabaseUrl

__all__ = ["JOBS_CHANNEL", "DatabaseUnavailable", "PostgresDatabase", "TargetNotEmpty", "open_pool", "to_numbered"]

log = logging.getLogger(__name__)

POOL_SIZE = 10
"""Connections per process. A process is one event loop, and each transaction is a few short statements."""

_FAILURES = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

JOBS_CHANNEL = "reelbot_jobs"
"""The NOTIFY channel a job insert announces itself on (payload: the job id)."""

# Advisory lock keys are (namespace, key) pairs of 32-bit integers, so our locks cannot collide with one
# another or with single-bigint advisory locks other software on the same database may take.
_LOCK_MIGRATIONS = 0x52420001
_LOCK_MEMBER_QUOTA = 0x52420002
_LOCK_POOL = 0x52420003

_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|\?")


@functools.lru_cache(maxsize=1024)
def to_numbered(sql: str) -> str:
    """`?` placeholders (the repositories' portable form) to PostgreSQL's `$1, $2…`, skipping quoted text."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group() != "?":
            return match.group()
        count += 1
        return f"${count}"

    return _PLACEHOLDER.sub(number, sql)


def _member_key(guild_id: int, user_id: int) -> int:
    digest = hashlib.blake2b(f"{guild_id}:{user_id}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)  # two members sharing a key only wait for each other


def _pool_key(pool_id: int) -> int:
    return (pool_id & 0x7FFFFFFF) - (pool_id & 0x80000000)  # the low 32 bits as a signed integer


class DatabaseUnavailable(ConnectionError):
    """The database could not be reached or refused us; the message names it without its password."""


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    """What a pooled connection needs between two borrowers beyond asyncpg's own rollback of an unfinished
    transaction: nothing. Our pooled work leaves no session state (no LISTEN, no SET, only transaction-scoped
    advisory locks; the two session-long uses, the migrations' lock and the job signal, have connections of their
    own), so asyncpg's default reset, one more round trip on every release, would only cost time."""


async def open_pool(url: DatabaseUrl, *, size: int, name: str) -> asyncpg.Pool:
    """A pool of up to `size` connections that show as `name` in `pg_stat_activity`."""
    return await asyncpg.create_pool(
        url.dsn, min_size=1, max_size=size, reset=_nothing_to_reset, server_settings={"application_name": name}
    )


class _Conn:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._conn.execute(to_numbered(sql), *params)

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self._conn.fetch(to_numbered(sql), *params))

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = await self._conn.fetchrow(to_numbered(sql), *params)
        return row


class PostgresDatabase:
    backend = Backend.POSTGRESQL
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, pool: asyncpg.Pool, url: DatabaseUrl) -> None:
        self._pool = pool
        self.url = url

    @classmethod
    async def open(cls, url: DatabaseUrl) -> PostgresDatabase:
        try:
            pool = await open_pool(url, size=POOL_SIZE, name="reelbot")
        except _FAILURES as exc:
            # The driver's own messages name host, user and database but never the password.
            raise DatabaseUnavailable(f"cannot open the database {url.redacted}: {exc}") from None
        db = cls(pool, url)
        try:
            await db.migrate(load_migrations(Backend.POSTGRESQL))
        except BaseException:
            await pool.close()
            raise
        return db

    async def close(self) -> None:
        await self._pool.close()

    async def backup(self, dest: Path) -> None:
        raise NotImplementedError("a PostgreSQL store is backed up with pg_dump (see docs/storage.md)")

    async def migrate(self, migrations: Iterable[Migration]) -> int:
        """Apply every migration newer than `schema_version`, each in its own transaction. Returns the version.

        A session advisory lock makes processes that start together take turns: the second one finds the
        migrations already applied. It is taken on a connection of its own, closed after, so no pooled connection
        ever carries a session lock.
        """
        conn = await asyncpg.connect(self.url.dsn, server_settings={"application_name": "reelbot-migrate"})
        try:
            await conn.execute("SELECT pg_advisory_lock($1, 0)", _LOCK_MIGRATIONS)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version ("
                    " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                    " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                version = await self._version(conn)
                for migration in migrations:
                    if migration.version <= version:
                        continue
                    log.info("applying database migration %s", migration.name)
                    async with conn.transaction():
                        await conn.execute(migration.sql)  # no arguments: the whole script in one round trip
                        await conn.execute(
                            "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                            migration.version,
                            migration.name,
                        )
                    version = migration.version
                return await self._version(conn)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1, 0)", _LOCK_MIGRATIONS)
        finally:
            await conn.close()

    @staticmethod
    async def _version(conn: asyncpg.Connection) -> int:
        return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Connection]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield _Conn(conn)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            yield _Conn(conn)

    async def statement(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """One statement on a pooled connection outside any explicit transaction: PostgreSQL runs it as its own
        (READ COMMITTED), one round trip instead of three (BEGIN, the statement, COMMIT)."""
        return list(await self._pool.fetch(to_numbered(sql), *params))

    async def lock_member(self, conn: Connection, guild_id: int, user_id: int) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock(?, ?)", (_LOCK_MEMBER_QUOTA, _member_key(guild_id, user_id)))

    async def lock_pool(self, conn: Connection, pool_id: int) -> None:
        # Members drawing from one budget queue here, as one member's reservations queue on `lock_member`.
        await conn.execute("SELECT pg_advisory_xact_lock(?, ?)", (_LOCK_POOL, _pool_key(pool_id)))

    async def announce_job(self, conn: Connection, job_id: int) -> None:
        # NOTIFY inside the transaction is delivered at commit, and not at all after a rollback.
        await conn.execute("SELECT pg_notify(?, ?)", (JOBS_CHANNEL, str(job_id)))

    @asynccontextmanager
    async def job_signal(self) -> AsyncIterator[EventSignal]:
        """A connection of its own that LISTENs (a pooled one would stop hearing once handed back)."""
        signal = EventSignal()
        try:
            conn = await asyncpg.connect(self.url.dsn, server_settings={"application_name": "reelbot-listen"})
        except _FAILURES as exc:
            raise DatabaseUnavailable(f"cannot listen on the database {self.url.redacted}: {exc}") from None

        def heard(_conn: object, _pid: int, _channel: str, _payload: str) -> None:
            signal.event.set()

        try:
            await conn.add_listener(JOBS_CHANNEL, heard)
            conn.add_termination_listener(lambda _conn: signal.lose())  # a worker then listens again
            yield signal
        finally:
            with contextlib.suppress(Exception):  # the connection may already be gone; closing is all that is left
                await conn.remove_listener(JOBS_CHANNEL, heard)
            await conn.close()

    async def import_tables(self, tables: Sequence[tuple[str, Sequence[str], list[tuple[Any, ...]]]]) -> None:
        """Load whole tables (name, columns, rows; referenced tables first) into this empty database, in one
        transaction, keeping every id; then move the id sequences past the copied ids.

        Raises TargetNotEmpty, changing nothing, if any of the tables already has a row. The tables stay locked
        for the whole copy, so a bot started meanwhile waits instead of writing between the check and the copy.
        """
        names = [name for name, _, _ in tables]
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(f"LOCK TABLE {', '.join(names)} IN ACCESS EXCLUSIVE MODE")
            for name in names:
                if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {name})"):
                    raise TargetNotEmpty(
                        f"the PostgreSQL database {self.url.redacted} already holds data (table {name}); "
                        "moving into it would mix two histories, so nothing was copied"
                    )
            # Copied jobs keep the status they had; the trigger that makes every *new* job start queued would
            # refuse them. Disabled inside this transaction only: no other session ever sees it off.
            await conn.execute("ALTER TABLE jobs DISABLE TRIGGER jobs_insert_queued")
            for name, columns, rows in tables:
                if rows:
                    await conn.copy_records_to_table(name, records=rows, columns=list(columns))
            await conn.execute("ALTER TABLE jobs ENABLE TRIGGER jobs_insert_queued")
            for name in ("channel_pools", "jobs", "quota_ledger"):
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), COALESCE(MAX(id), 0) + 1, false)"
                    f" FROM {name}"
                )


class TargetNotEmpty(Exception):
    """`migrate --from` found data in the target database and copied nothing."""

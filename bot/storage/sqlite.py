"""The SQLite backend: one connection, its pragmas, migrations, and the transaction helpers.

aiosqlite runs every statement of one connection on one worker thread, in order. A transaction is therefore
shared by every coroutine that uses the connection while it is open, so all access goes through one
`asyncio.Lock`: a coroutine holds it for its whole transaction and nobody else's statements can slip in.
Write transactions start with `BEGIN IMMEDIATE`, which takes SQLite's write lock up front, so a second process
on the same file waits (busy_timeout) instead of interleaving its own check-then-write. That single writer is
also why a quota reservation needs no lock of its own here, and why the lease claim needs no `SKIP LOCKED`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from bot.storage.database import Connection, EventSignal, Row
from bot.storage.schema import Migration, load_migrations
from bot.storage.url import Backend

__all__ = ["BUSY_TIMEOUT_MS", "SqliteDatabase", "split_statements"]

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
"""How long a writer waits for another process's write lock before SQLite gives up with 'database is locked'."""


def split_statements(script: str) -> list[str]:
    """Split a SQL script into statements, keeping trigger bodies (which contain `;`) whole.

    `executescript` would do this for us but it commits any open transaction first, and a migration must run
    inside one transaction together with its `user_version` bump.
    """
    statements: list[str] = []
    current: list[str] = []
    for line in script.splitlines(keepends=True):
        current.append(line)
        candidate = "".join(current)
        if sqlite3.complete_statement(candidate):
            if _strip_comments(candidate).strip():
                statements.append(candidate.strip())
            current = []
    if _strip_comments("".join(current)).strip():
        raise ValueError("the migration script ends with an incomplete statement")
    return statements


def _strip_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


async def _enable_wal(conn: aiosqlite.Connection) -> None:
    """Switch the file to WAL (a no-op once it is). On a new file the switch needs a lock that SQLite's busy
    handler does not wait for: while another process starting at the same moment holds the file, SQLite answers
    "database is locked" at once. So wait here, as long as `busy_timeout` would."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or loop.time() >= deadline:
                raise
            await asyncio.sleep(0.05)


class _Conn:
    """`Connection` over aiosqlite. `execute_fetchall` runs a statement and reads its rows in one trip to
    aiosqlite's thread; a cursor would take three (execute, fetch, close), and those trips, not SQLite, are most
    of the cost of a quota reservation."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._conn.execute_fetchall(sql, tuple(params))

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self._conn.execute_fetchall(sql, tuple(params)))

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None


class SqliteDatabase:
    """The connection plus the lock that serialises transactions on it."""

    backend = Backend.SQLITE
    skip_locked = ""  # BEGIN IMMEDIATE already makes the claim the only writer

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self._wrapped = _Conn(conn)
        self.path = path
        self._lock = asyncio.Lock()
        self._signals: set[EventSignal] = set()

    @classmethod
    async def open(cls, path: Path) -> SqliteDatabase:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the sqlite3 module issues no implicit BEGIN/COMMIT; we write them ourselves.
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            conn.row_factory = aiosqlite.Row
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await _enable_wal(conn)
            # NORMAL is safe in WAL mode (a power cut may lose the last commits, never corrupt the file).
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            db = cls(conn, path)
            await db.migrate(load_migrations(Backend.SQLITE))
        except BaseException:
            await conn.close()
            raise
        return db

    async def close(self) -> None:
        async with self._lock:
            await self._conn.close()

    async def backup(self, dest: Path) -> None:
        """Write a consistent, compacted copy of the database to `dest` (which must not exist) while running."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        async with self._lock:  # VACUUM cannot run inside a transaction; the lock keeps others' out meanwhile
            await self._conn.execute("VACUUM INTO ?", (str(dest),))

    async def migrate(self, migrations: Iterable[Migration]) -> int:
        """Apply every migration newer than `PRAGMA user_version`, each in its own transaction. Returns the version.

        The version is re-read after `BEGIN IMMEDIATE`, so two processes starting together apply each
        migration once.

        Foreign keys are off while migrating, as SQLite's documentation asks for a table rebuild (a new table,
        the rows copied, the old one dropped and the new one renamed; dropping a referenced table would
        otherwise fail). The switch cannot be made inside a transaction, so it is made around them, and each
        migration checks every foreign key itself before it commits.
        """
        version = 0
        await self._conn.execute("PRAGMA foreign_keys = OFF")
        try:
            for migration in migrations:
                async with self.write() as conn:
                    version = await self._user_version()
                    if migration.version <= version:
                        continue
                    log.info("applying database migration %s", migration.name)
                    for statement in split_statements(migration.sql):
                        await conn.execute(statement)
                    broken = await conn.fetch_all("PRAGMA foreign_key_check")
                    if broken:
                        raise sqlite3.IntegrityError(
                            f"migration {migration.name} leaves {len(broken)} broken foreign key(s)"
                        )
                    # PRAGMA takes no parameters; the value is an int we produced.
                    await conn.execute(f"PRAGMA user_version = {int(migration.version)}")
                    version = migration.version
        finally:
            await self._conn.execute("PRAGMA foreign_keys = ON")
        async with self.read():
            return await self._user_version()

    async def _user_version(self) -> int:
        row = await self._wrapped.fetch_one("PRAGMA user_version")
        return int(row[0]) if row else 0  # type: ignore[index]

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Connection]:
        """One write transaction: lock, `BEGIN IMMEDIATE`, commit on success, roll back on any exception."""
        async with self._lock:
            try:
                # Inside the try: a caller cancelled while BEGIN runs on the worker thread must still roll back,
                # or the next user of the connection would find a transaction already open.
                await self._conn.execute("BEGIN IMMEDIATE")
                yield self._wrapped
                await self._conn.execute("COMMIT")
            except BaseException:
                # Also after a failed (or cancelled) COMMIT: ROLLBACK is a harmless no-op if it went through.
                await self._rollback()
                raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        """A consistent snapshot for several SELECTs (a deferred transaction under the same lock)."""
        async with self._lock:
            try:
                await self._conn.execute("BEGIN")
                yield self._wrapped
            finally:
                await self._rollback()

    async def statement(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """One statement outside `BEGIN … COMMIT`: SQLite runs it as its own transaction (a write one takes the
        write lock, waiting `busy_timeout` for it, when it starts), so it is as atomic as `write()` with that one
        statement in it, at one trip to aiosqlite's thread instead of three."""
        async with self._lock:
            return await self._wrapped.fetch_all(sql, params)

    async def _rollback(self) -> None:
        # Shielded so a cancelled caller still leaves the connection outside any transaction for the next user.
        # OperationalError: no transaction was open (SQLite already rolled it back after a failed statement).
        with contextlib.suppress(sqlite3.OperationalError):
            await asyncio.shield(self._conn.execute("ROLLBACK"))

    async def lock_member(self, conn: Connection, guild_id: int, user_id: int) -> None:
        """Nothing to do: `BEGIN IMMEDIATE` already made this transaction the file's only writer."""

    async def lock_pool(self, conn: Connection, pool_id: int) -> None:
        """Nothing to do either: the same write lock covers a channel budget."""

    async def announce_job(self, conn: Connection, job_id: int) -> None:
        # Only this process's signals can hear it: another process on the same file finds the job by polling.
        # Waking them before the commit is harmless; a woken worker that finds nothing just waits again.
        for signal in self._signals:
            signal.event.set()

    @asynccontextmanager
    async def job_signal(self) -> AsyncIterator[EventSignal]:
        signal = EventSignal()
        self._signals.add(signal)
        try:
            yield signal
        finally:
            self._signals.discard(signal)

"""One SQLite connection, its pragmas, forward-only migrations, and the transaction helpers the repositories use.

aiosqlite runs every statement of one connection on one worker thread, in order. A transaction is therefore
shared by every coroutine that uses the connection while it is open, so all access goes through one
`asyncio.Lock`: a coroutine holds it for its whole transaction and nobody else's statements can slip in.
Write transactions start with `BEGIN IMMEDIATE`, which takes SQLite's write lock up front, so a second process
on the same file waits (busy_timeout) instead of interleaving its own check-then-write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

__all__ = ["BUSY_TIMEOUT_MS", "Database", "Migration", "load_migrations", "split_statements"]

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
"""How long a writer waits for another process's write lock before SQLite gives up with 'database is locked'."""

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """The migrations shipped in `bot/storage/migrations`, in order. Numbers must run 1, 2, 3… without gaps."""
    folder = resources.files("bot.storage") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise RuntimeError(f"migration {migration.name} is out of sequence (expected number {expected:04d})")
    return found


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


class Database:
    """The connection plus the lock that serialises transactions on it."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Database:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the sqlite3 module issues no implicit BEGIN/COMMIT; we write them ourselves.
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            conn.row_factory = aiosqlite.Row
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL is safe in WAL mode (a power cut may lose the last commits, never corrupt the file).
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            db = cls(conn, path)
            await db.migrate(load_migrations())
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
        """
        version = 0
        for migration in migrations:
            async with self.write() as conn:
                version = await self._user_version(conn)
                if migration.version <= version:
                    continue
                log.info("applying database migration %s", migration.name)
                for statement in split_statements(migration.sql):
                    await conn.execute(statement)
                # PRAGMA takes no parameters; the value is an int we produced.
                await conn.execute(f"PRAGMA user_version = {int(migration.version)}")
                version = migration.version
        async with self.read() as conn:
            return await self._user_version(conn)

    @staticmethod
    async def _user_version(conn: aiosqlite.Connection) -> int:
        async with conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: lock, `BEGIN IMMEDIATE`, commit on success, roll back on any exception."""
        async with self._lock:
            try:
                # Inside the try: a caller cancelled while BEGIN runs on the worker thread must still roll back,
                # or the next user of the connection would find a transaction already open.
                await self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                await self._conn.execute("COMMIT")
            except BaseException:
                # Also after a failed (or cancelled) COMMIT: ROLLBACK is a harmless no-op if it went through.
                await self._rollback()
                raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A consistent snapshot for several SELECTs (a deferred transaction under the same lock)."""
        async with self._lock:
            try:
                await self._conn.execute("BEGIN")
                yield self._conn
            finally:
                await self._rollback()

    async def statement(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        """Run one statement on its own and return its rows. SQLite runs a lone statement as its own transaction,
        so it is as atomic as `write()`/`read()` with that one statement in them, at one trip to aiosqlite's thread
        instead of three (BEGIN and COMMIT/ROLLBACK are trips too). For the busiest single-statement queries."""
        async with self._lock:
            return list(await self._conn.execute_fetchall(sql, tuple(params)))

    async def _rollback(self) -> None:
        # Shielded so a cancelled caller still leaves the connection outside any transaction for the next user.
        # OperationalError: no transaction was open (SQLite already rolled it back after a failed statement).
        with contextlib.suppress(sqlite3.OperationalError):
            await asyncio.shield(self._conn.execute("ROLLBACK"))


# `execute_fetchall` runs the statement and reads its rows in one trip to aiosqlite's thread; a cursor would take
# three (execute, fetch, close), and those trips, not SQLite, are most of the cost of a quota reservation.
async def fetch_all(conn: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
    return list(await conn.execute_fetchall(sql, tuple(params)))


async def fetch_one(conn: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
    rows = await fetch_all(conn, sql, params)
    return rows[0] if rows else None

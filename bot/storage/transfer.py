"""Moving an existing SQLite store into PostgreSQL: `python -m bot migrate --from sqlite:///data/bot.db` with
`DATABASE_URL` naming the (empty) PostgreSQL database.

Both databases are first brought to the latest schema, so they have the same tables and columns (the two
migration folders are kept in step). Every row is copied with its id: channel budgets (jobs and ledger rows point
at them), jobs (a Retry points at an earlier job, so they go in id order), then the ledger that points at them,
then the settings, approvals, blocked words, characters, styles, channel defaults and `meta`. Buttons already
posted in Discord carry job ids, so those ids must not change.
"""

from __future__ import annotations

import sqlite3
from typing import Any, cast

from bot.storage import Store
from bot.storage.postgres import PostgresDatabase, TargetNotEmpty
from bot.storage.sqlite import SqliteDatabase
from bot.storage.url import Backend, DatabaseUrl

__all__ = ["TABLES", "TargetNotEmpty", "move_store"]

TABLES = (
    "channel_pools",
    "jobs",
    "quota_ledger",
    "member_quota",
    "role_quota",
    "guild_settings",
    "guild_channels",
    "channel_approvals",
    "blocked_words",
    "characters",
    "styles",
    "channel_defaults",
    "meta",
)
"""Every table that holds the deployment's data, referenced tables first. (`job_transitions` is part of the
schema, written by the migrations themselves.) Characters and styles have no id sequence to move: a character's
id is its sheet's Discord id, a style is keyed by its name."""


async def move_store(source: DatabaseUrl, target: DatabaseUrl) -> dict[str, int]:
    """Copy everything from the SQLite store `source` into the empty PostgreSQL store `target`. Returns the rows
    copied per table. Raises ValueError for the wrong kinds of database and TargetNotEmpty if `target` holds
    data; either way nothing is written to `target`."""
    if source.backend is not Backend.SQLITE:
        raise ValueError("--from must name a SQLite database (sqlite:///path/to/bot.db)")
    if target.backend is not Backend.POSTGRESQL:
        raise ValueError("DATABASE_URL must name the PostgreSQL database to move into (postgresql://…)")
    if not source.path.is_file():
        raise ValueError(f"there is no SQLite database at {source.path}")
    async with await Store.open(source) as old, await Store.open(target) as new:
        sqlite_db, postgres_db = old._db, new._db
        assert isinstance(sqlite_db, SqliteDatabase)
        assert isinstance(postgres_db, PostgresDatabase)
        tables: list[tuple[str, list[str], list[tuple[Any, ...]]]] = []
        async with sqlite_db.read() as conn:
            for name in TABLES:
                # ORDER BY 1: the id for jobs and the ledger (a Retry's job comes after the job it retries).
                rows = cast(list[sqlite3.Row], await conn.fetch_all(f"SELECT * FROM {name} ORDER BY 1"))
                columns = list(rows[0].keys()) if rows else []
                tables.append((name, columns, [tuple(row) for row in rows]))
        await postgres_db.import_tables(tables)
    return {name: len(rows) for name, _, rows in tables}

"""Forward-only SQL migrations, one folder per backend, numbered in step.

`migrations/NNNN_name.sql` are SQLite's (version kept in `PRAGMA user_version`), `migrations_pg/NNNN_name.sql`
PostgreSQL's (version kept in the `schema_version` table). Both folders carry the same numbers and names: a
schema change is written once for each dialect, so a database moved from one backend to the other lands on the
same version with the same columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from bot.storage.url import Backend

__all__ = ["FOLDERS", "Migration", "load_migrations"]

FOLDERS = {Backend.SQLITE: "migrations", Backend.POSTGRESQL: "migrations_pg"}

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(backend: Backend = Backend.SQLITE) -> list[Migration]:
    """The backend's shipped migrations, in order. Numbers must run 1, 2, 3… without gaps."""
    folder = resources.files("bot.storage") / FOLDERS[backend]
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

"""Opening the store: folder creation, pragmas, forward-only migrations tracked by user_version, and a schema that
mirrors the domain's state machine."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.domain.clock import FakeClock
from bot.domain.jobs import TRANSITIONS, FailureKind, JobStatus
from bot.storage import Store, open_store
from bot.storage.database import Migration, load_migrations, split_statements
from bot.storage.models import LedgerKind


def schema(path: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(path)
    try:
        return sorted(conn.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall())
    finally:
        conn.close()


def pragma(path: Path, name: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


async def test_migrations_from_an_empty_file_then_a_rerun_are_clean(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "bot.db"  # the folder is created
    async with await Store.open(path) as store:
        await store.set_meta("command_hash", "abc")
    first = schema(path)
    assert pragma(path, "user_version") == len(load_migrations())
    assert {"jobs", "quota_ledger", "member_quota", "role_quota", "guild_settings", "job_transitions"} <= {
        name for kind, name, _ in first if kind == "table"
    }
    async with open_store(path) as store:  # re-run: nothing applied twice, data kept
        assert await store.get_meta("command_hash") == "abc"
    assert schema(path) == first
    assert pragma(path, "user_version") == len(load_migrations())


async def test_an_existing_empty_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    path.touch()
    async with await Store.open(path):
        pass
    assert pragma(path, "user_version") == len(load_migrations())


async def test_pragmas_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    async with await Store.open(path) as store:
        assert pragma(path, "journal_mode") == "wal"
        raw = sqlite3.connect(path, isolation_level=None)
        try:
            raw.execute("PRAGMA foreign_keys = ON")  # per connection, as the store does
            with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
                raw.execute("INSERT INTO quota_ledger (guild_id, kind, job_id, at) VALUES (1, 'refund', 999, 0)")
        finally:
            raw.close()
        assert store.path == path


async def test_a_failing_migration_leaves_the_database_at_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    async with await Store.open(path) as store:
        version = len(load_migrations())
        broken = Migration(version + 1, f"{version + 1:04d}_broken.sql", "CREATE TABLE half (x);\nNOT SQL;\n")
        with pytest.raises(sqlite3.OperationalError):
            await store._db.migrate([broken])
        await store.set_meta("still", "usable")  # the connection is out of the failed transaction
    assert pragma(path, "user_version") == version
    assert "half" not in {name for _, name, _ in schema(path)}


async def test_a_newer_migration_applies_once(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    version = len(load_migrations())
    extra = Migration(version + 1, f"{version + 1:04d}_extra.sql", "CREATE TABLE extra (x INTEGER);\n")
    async with await Store.open(path) as store:
        assert await store._db.migrate([*load_migrations(), extra]) == version + 1
        assert await store._db.migrate([*load_migrations(), extra]) == version + 1  # no "table exists" error
    assert pragma(path, "user_version") == version + 1


def test_migration_files_are_numbered_without_gaps() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))


def test_split_statements_keeps_trigger_bodies_whole() -> None:
    script = (
        "-- a comment; with a semicolon\n"
        "CREATE TABLE t (x);\n"
        "CREATE TRIGGER tr BEFORE INSERT ON t BEGIN\n  SELECT 1;\n  SELECT 2;\nEND;\n"
        "-- trailing comment\n"
    )
    statements = split_statements(script)
    assert len(statements) == 2
    assert statements[1].endswith("END;")
    with pytest.raises(ValueError, match="incomplete"):
        split_statements("CREATE TABLE t (x)")


async def test_sql_mirrors_the_domain_state_machine_and_enums(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    async with await Store.open(path, clock=FakeClock()):
        pass
    conn = sqlite3.connect(path)
    try:
        rows = set(conn.execute("SELECT old, new FROM job_transitions").fetchall())
        jobs_sql, ledger_sql = (
            conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
            for name in ("jobs", "quota_ledger")
        )
    finally:
        conn.close()
    assert rows == {(old.value, new.value) for old, nexts in TRANSITIONS.items() for new in nexts}
    for value in [*JobStatus, *FailureKind]:
        assert f"'{value.value}'" in jobs_sql
    for kind in LedgerKind:
        assert f"'{kind.value}'" in ledger_sql


async def test_backup_is_a_complete_openable_copy(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "bot.db") as store:
        await store.set_meta("k", "v")
        await store.quotas.grant(1, 2, 3, actor_id=4, reason="r")
        await store.backup(tmp_path / "backups" / "copy.db")
        await store.set_meta("k", "after")  # the copy is a snapshot
    async with await Store.open(tmp_path / "backups" / "copy.db") as copy:
        assert await copy.get_meta("k") == "v"
        [entry] = await copy.quotas.ledger(1)
        assert (entry.amount, entry.actor_id, entry.reason) == (3, 4, "r")

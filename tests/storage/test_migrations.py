"""Opening the store: forward-only migrations on each backend (SQLite's user_version, PostgreSQL's schema_version
table), applied once even when processes start together, a schema that mirrors the domain's state machine, and
SQLite's own folder creation, pragmas and backups."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from bot.domain.jobs import INITIAL, TRANSITIONS, FailureKind, JobStatus
from bot.storage import Backend, NewJob, QuotaRequest, Reserved, Store, open_store
from bot.storage.models import LedgerKind
from bot.storage.schema import Migration, load_migrations
from bot.storage.sqlite import split_statements
from tests.pg import PostgresCluster, RawRefused, RawSql


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


@pytest.fixture
def empty_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database with nothing in it yet (SQLite: not even the file or its folder)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'nested' / 'folder' / 'bot.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.new_database(migrated=False)


async def version_of(url: str) -> int:
    raw = RawSql(url)
    try:
        if url.startswith("sqlite"):
            [(version,)] = await raw.fetch("PRAGMA user_version")
        else:
            [(version,)] = await raw.fetch("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        return int(version)
    finally:
        await raw.close()


async def tables_and_columns(url: str) -> list[tuple[str, str]]:
    raw = RawSql(url)
    try:
        if url.startswith("sqlite"):
            tables = [t for (t,) in await raw.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")]
            rows = [(t, c[1]) for t in tables for c in await raw.fetch(f"PRAGMA table_info({t})")]
        else:
            rows = [
                (str(t), str(c))
                for t, c in await raw.fetch(
                    "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
                )
            ]
        return sorted(r for r in rows if r[0] not in {"sqlite_sequence", "schema_version"})
    finally:
        await raw.close()


def url_backend(url: str) -> Backend:
    return Backend.SQLITE if url.startswith("sqlite") else Backend.POSTGRESQL


async def test_migrations_from_an_empty_database_then_a_rerun_are_clean(empty_url: str) -> None:
    latest = len(load_migrations(url_backend(empty_url)))
    async with await Store.open(empty_url) as store:
        await store.set_meta("command_hash", "abc")
    first = await tables_and_columns(empty_url)
    assert await version_of(empty_url) == latest
    assert {"jobs", "quota_ledger", "member_quota", "role_quota", "guild_settings", "job_transitions"} <= {
        table for table, _ in first
    }
    async with open_store(empty_url) as store:  # re-run: nothing applied twice, data kept
        assert await store.get_meta("command_hash") == "abc"
    assert await tables_and_columns(empty_url) == first
    assert await version_of(empty_url) == latest


# The traffic state several processes share (bot/traffic/shared.py). A SQLite file serves one process, which keeps
# that state in memory, so SQLite's migration 0008 creates nothing: these tables are PostgreSQL's alone, and hold
# nothing a move between backends would carry (requests of the last seconds, what Discord's answers taught).
POSTGRESQL_ONLY = {"traffic_requests", "traffic_holds", "traffic_routes", "traffic_values"}


async def test_both_backends_end_with_the_same_tables_and_columns(tmp_path: Path, postgres: PostgresCluster) -> None:
    sqlite_url, pg_url = f"sqlite:///{tmp_path / 'bot.db'}", postgres.new_database(migrated=False)
    for url in (sqlite_url, pg_url):
        async with await Store.open(url):
            pass
    pg_tables = await tables_and_columns(pg_url)
    assert {table for table, _ in pg_tables} >= POSTGRESQL_ONLY
    assert await tables_and_columns(sqlite_url) == [(t, c) for t, c in pg_tables if t not in POSTGRESQL_ONLY]


async def test_pooled_connections_go_back_without_a_reset_and_no_lock_outlives_the_migrations(
    postgres: PostgresCluster,
) -> None:
    """A pooled connection is handed back without asyncpg's reset (one more round trip per use, for session state
    we never leave), so nothing session-long may live on one: the migrations' lock, taken even by a failed run, is
    gone afterwards, and a second process can start."""
    url = postgres.new_database(migrated=False)
    version = len(load_migrations(Backend.POSTGRESQL))
    broken = Migration(version + 1, f"{version + 1:04d}_broken.sql", "NOT SQL;\n")
    raw = RawSql(url)
    try:
        async with await Store.open(url) as store:
            with pytest.raises(asyncpg.PostgresError):
                await store._db.migrate([broken])  # type: ignore[attr-defined]
            await store.set_meta("after", "a failed migration")
            assert await raw.fetch("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]
            last = await raw.fetch("SELECT query FROM pg_stat_activity WHERE application_name = 'reelbot'")
            assert last
            assert not any("RESET ALL" in query for (query,) in last)
            async with await asyncio.wait_for(Store.open(url), 10) as second:
                assert await second.get_meta("after") == "a failed migration"
    finally:
        await raw.close()


async def test_processes_starting_together_apply_each_migration_once(empty_url: str) -> None:
    stores = await asyncio.gather(*(Store.open(empty_url) for _ in range(4)))
    for store in stores:
        await store.close()
    assert await version_of(empty_url) == len(load_migrations(url_backend(empty_url)))
    if url_backend(empty_url) is Backend.POSTGRESQL:
        raw = RawSql(empty_url)
        versions = [v for (v,) in await raw.fetch("SELECT version FROM schema_version ORDER BY version")]
        await raw.close()
        assert versions == list(range(1, len(load_migrations(Backend.POSTGRESQL)) + 1))


async def test_a_failing_migration_leaves_the_database_at_the_previous_version(store_url: str) -> None:
    backend = url_backend(store_url)
    version = len(load_migrations(backend))
    broken = Migration(version + 1, f"{version + 1:04d}_broken.sql", "CREATE TABLE half (x INTEGER);\nNOT SQL;\n")
    async with await Store.open(store_url) as store:
        with pytest.raises((sqlite3.OperationalError, asyncpg.PostgresError)):
            await store._db.migrate([broken])  # type: ignore[attr-defined]
        await store.set_meta("still", "usable")  # the connection is out of the failed transaction
    assert await version_of(store_url) == version
    assert "half" not in {table for table, _ in await tables_and_columns(store_url)}


async def test_a_newer_migration_applies_once(store_url: str) -> None:
    backend = url_backend(store_url)
    version = len(load_migrations(backend))
    extra = Migration(version + 1, f"{version + 1:04d}_extra.sql", "CREATE TABLE extra (x INTEGER);\n")
    async with await Store.open(store_url) as store:
        db = store._db
        assert await db.migrate([*load_migrations(backend), extra]) == version + 1  # type: ignore[attr-defined]
        assert await db.migrate([*load_migrations(backend), extra]) == version + 1  # type: ignore[attr-defined]
    assert await version_of(store_url) == version + 1


@pytest.mark.parametrize("backend", list(Backend))
def test_migration_files_are_numbered_without_gaps(backend: Backend) -> None:
    migrations = load_migrations(backend)
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))


def test_every_schema_change_is_written_for_both_backends() -> None:
    # A database moved from SQLite to PostgreSQL must land on the same version with the same meaning. (A change
    # that only one backend needs is still numbered in both folders: SQLite's 0008 is a comment.)
    assert [m.name for m in load_migrations(Backend.SQLITE)] == [m.name for m in load_migrations(Backend.POSTGRESQL)]


async def test_sql_mirrors_the_domain_state_machine_and_enums(store: Store, raw: RawSql) -> None:
    rows = set(await raw.fetch("SELECT old, new FROM job_transitions"))
    assert rows == {(old.value, new.value) for old, nexts in TRANSITIONS.items() for new in nexts}
    # The database's own checks accept every value the domain has, and nothing else.
    reserved = await store.jobs.create_reserved(
        NewJob(1, 2, 3, "p", 5, "16:9", "m", ()), QuotaRequest(window_seconds=60, fallback_limit=9, max_active=9)
    )
    assert isinstance(reserved, Reserved)
    job_id = reserved.job.id
    for kind in FailureKind:
        await raw.execute("UPDATE jobs SET failure_kind = ? WHERE id = ?", kind.value, job_id)
    for ledger_kind in LedgerKind:
        await raw.execute("INSERT INTO quota_ledger (guild_id, kind, at) VALUES (1, ?, 0)", ledger_kind.value)
    for status in INITIAL:
        await raw.execute(
            'INSERT INTO jobs (guild_id, channel_id, user_id, prompt, duration, aspect_ratio, model, "references",'
            " status, created_at, updated_at, delivery_nonce) VALUES (1, 2, 3, 'p', 5, '16:9', 'm', '[]', ?, 0, 0, ?)",
            status.value,
            f"nonce-{status.value}"[:25],
        )
    with pytest.raises(RawRefused):
        await raw.execute("UPDATE jobs SET failure_kind = 'nonsense' WHERE id = ?", job_id)
    with pytest.raises(RawRefused):
        await raw.execute("INSERT INTO quota_ledger (guild_id, kind, at) VALUES (1, 'nonsense', 0)")
    for status in set(JobStatus) - INITIAL:
        with pytest.raises(RawRefused):
            await raw.execute(
                "INSERT INTO jobs (guild_id, channel_id, user_id, prompt, duration, aspect_ratio, model,"
                ' "references", status, created_at, updated_at, delivery_nonce)'
                " VALUES (1, 2, 3, 'p', 5, '16:9', 'm', '[]', ?, 0, 0, 'x')",
                status.value,
            )


async def test_a_postgresql_store_has_no_file_to_copy(postgres: PostgresCluster, tmp_path: Path) -> None:
    async with await Store.open(postgres.new_database()) as store:
        with pytest.raises(NotImplementedError, match="pg_dump"):
            await store.backup(tmp_path / "copy.db")
        with pytest.raises(ValueError, match="no database file"):
            _ = store.path


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

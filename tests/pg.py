"""The fixtures that run the store's contract tests on each backend, on a throw-away PostgreSQL cluster.

`REELBOT_TEST_BACKENDS` (comma-separated, default `sqlite`) chooses the backends store tests run on; `.ci/run`
sets `sqlite,postgres`. The cluster (`bot/devtools/pgcluster.py`, shared with the benchmarks) comes from the
server binaries on this machine: one per test session in a temporary folder, listening on a free 127.0.0.1 port,
and removed at the end. If it cannot start, PostgreSQL tests skip with the reason, unless
`REELBOT_REQUIRE_POSTGRES=1`, when they fail.

Each test gets a database of its own, copied from a template that was migrated once per session — or, for the
common case (`store_url`), one database reused from test to test and emptied back to the template's contents
before each (`PostgresCluster.emptied_database`, far cheaper over hundreds of tests).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.devtools.pgcluster import PASSWORD, PostgresCluster, run_sync
from bot.storage.postgres import to_numbered

__all__ = ["BACKENDS", "PASSWORD", "PostgresCluster", "RawRefused", "RawSql", "run_sync"]

BACKENDS = [b.strip() for b in os.environ.get("REELBOT_TEST_BACKENDS", "sqlite").split(",") if b.strip()]
REQUIRED = os.environ.get("REELBOT_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """The session's PostgreSQL cluster; skips (or fails, with REELBOT_REQUIRE_POSTGRES=1) if it cannot start."""
    try:
        cluster = PostgresCluster.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        if REQUIRED:
            pytest.fail(f"PostgreSQL is required (REELBOT_REQUIRE_POSTGRES=1) but could not start: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres(request: pytest.FixtureRequest) -> PostgresCluster:
    """The cluster, for tests that only make sense on PostgreSQL; they skip unless it is a chosen backend."""
    if "postgres" not in BACKENDS:
        pytest.skip("PostgreSQL tests not chosen (REELBOT_TEST_BACKENDS=sqlite,postgres runs them)")
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, empty store's DATABASE_URL on the test's backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'bot.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.emptied_database()


@pytest.fixture
def new_store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[], str]:
    """Makes further fresh store URLs on the test's backend (for tests that need several databases)."""
    names = itertools.count()
    cluster: PostgresCluster | None = request.getfixturevalue("postgres_cluster") if backend == "postgres" else None

    def make() -> str:
        if cluster is None:
            return f"sqlite:///{tmp_path / f'extra-{next(names)}.db'}"
        return cluster.new_database()

    return make


class RawRefused(Exception):
    """The database itself refused a raw statement (a constraint or a trigger), whichever backend."""


class RawSql:
    """Statements sent straight to the database, past the repositories, each committed on its own: proof that
    the database, not only our Python, enforces a rule. SQL uses `?` placeholders."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._sqlite: sqlite3.Connection | None = None
        self._pg: asyncpg.Connection | None = None

    async def execute(self, sql: str, *params: Any) -> None:
        await self.fetch(sql, *params)

    async def fetch(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self._url.startswith("sqlite:///"):
            if self._sqlite is None:
                self._sqlite = sqlite3.connect(self._url.removeprefix("sqlite:///"), isolation_level=None)
            try:
                return list(self._sqlite.execute(sql, params).fetchall())
            except sqlite3.IntegrityError as exc:
                raise RawRefused(str(exc)) from exc
        if self._pg is None:
            self._pg = await asyncpg.connect(self._url)
        try:
            return [tuple(r) for r in await self._pg.fetch(to_numbered(sql), *params)]
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise RawRefused(str(exc)) from exc

    async def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            await self._pg.close()


@pytest.fixture
async def raw(store_url: str) -> AsyncIterator[RawSql]:
    sql = RawSql(store_url)
    try:
        yield sql
    finally:
        with contextlib.suppress(Exception):
            await sql.close()

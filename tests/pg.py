"""A throw-away PostgreSQL cluster for tests, and the fixtures that run the store's contract tests on each backend.

`REELBOT_TEST_BACKENDS` (comma-separated, default `sqlite`) chooses the backends store tests run on; `.ci/run`
sets `sqlite,postgres`. PostgreSQL comes from the server binaries on this machine (`REELBOT_PG_BINDIR`, or the
newest `/usr/lib/postgresql/NN/bin`, or `initdb` on PATH): one cluster per test session in a temporary folder,
listening on a free 127.0.0.1 port, run by the `postgres` system user when we are root (PostgreSQL refuses to
run as root), and removed at the end. If it cannot start, PostgreSQL tests skip with the reason, unless
`REELBOT_REQUIRE_POSTGRES=1`, when they fail.

Each test gets a database of its own, copied from a template that was migrated once per session — or, for the
common case (`store_url`), one database reused from test to test and emptied back to the template's contents
before each: about 30 ms instead of the 0.2–0.4 s a copy of the template costs, over hundreds of tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pwd
import re
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from bot.storage import Store
from bot.storage.postgres import to_numbered

__all__ = ["BACKENDS", "PostgresCluster", "RawRefused", "RawSql", "run_sync"]

BACKENDS = [b.strip() for b in os.environ.get("REELBOT_TEST_BACKENDS", "sqlite").split(",") if b.strip()]
REQUIRED = os.environ.get("REELBOT_REQUIRE_POSTGRES") == "1"
MIN_VERSION = 13
USER = "reelbot"
PASSWORD = "pg-test-secret-Zq7"
"""The throw-away cluster's password; tests check that it never leaks into logs or messages."""
TEMPLATE = "reelbot_template"

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, even where an event loop is already running."""
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def _bindir() -> Path | None:
    if os.environ.get("REELBOT_PG_BINDIR"):
        return Path(os.environ["REELBOT_PG_BINDIR"])
    versions = []
    for candidate in Path("/usr/lib/postgresql").glob("*/bin"):
        match = re.fullmatch(r"\d+", candidate.parent.name)
        if match and int(candidate.parent.name) >= MIN_VERSION and (candidate / "initdb").exists():
            versions.append((int(candidate.parent.name), candidate))
    if versions:
        return max(versions)[1]
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresCluster:
    bindir: Path
    folder: Path
    port: int
    run_as: list[str]
    _names: Iterator[int] = field(default_factory=itertools.count)
    _reused: str | None = None
    _seeded: tuple[str, ...] = ()  # tables the migrations fill (the state machine's transitions, the version)

    def url(self, database: str) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> None:
        subprocess.run(  # noqa: S603 - fixed argv, the server binaries found above
            [str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.url(database), "-c", sql],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def new_database(self, *, migrated: bool = True) -> str:
        """A fresh database's URL: already at the latest schema, or empty (for migration tests)."""
        name = f"test_{next(self._names)}"
        self.psql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE if migrated else 'template0'}")
        return self.url(name)

    def emptied_database(self) -> str:
        """The reused database's URL, as a fresh copy of the template would be: every table emptied (but those the
        migrations fill) and every identity restarted; whoever was still connected from an earlier test is cut
        off first."""
        if self._reused is None:
            self._reused = self.new_database().rsplit("/", 1)[1]
            return self.url(self._reused)
        kept = ", ".join(f"'{name}'" for name in self._seeded)
        self.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid();"
            " SET session_replication_role = replica;"  # past the ledger's append-only trigger
            " DO $$ DECLARE tables text; BEGIN"
            "   SELECT string_agg(format('%I', tablename), ', ') INTO tables FROM pg_tables"
            f"   WHERE schemaname = 'public' AND tablename NOT IN ({kept or 'NULL'});"
            "   IF tables IS NOT NULL THEN EXECUTE 'TRUNCATE ' || tables || ' RESTART IDENTITY CASCADE'; END IF;"
            " END $$;",
            database=self._reused,
        )
        return self.url(self._reused)

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - fixed argv, the server binaries found above
            [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    @classmethod
    def start(cls) -> PostgresCluster:
        """initdb + pg_ctl start; raises RuntimeError with the reason when that is not possible here."""
        bindir = _bindir()
        if bindir is None:
            raise RuntimeError(f"no PostgreSQL {MIN_VERSION}+ server binaries (set REELBOT_PG_BINDIR)")
        run_as: list[str] = []
        owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:  # PostgreSQL will not run as root; hand the cluster to the postgres system user
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no 'postgres' system user to run the server") from None
            run_as = ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}", "--clear-groups", "--"]
        folder = Path(tempfile.mkdtemp(prefix="reelbot-pg-"))
        (folder / "password").write_text(PASSWORD, encoding="utf-8")
        if owner is not None:
            for path in (folder, folder / "password"):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        initdb = subprocess.run(  # noqa: S603 - fixed argv, the server binaries found above
            [
                *run_as,
                str(bindir / "initdb"),
                "-D",
                str(folder / "data"),
                "-U",
                USER,
                f"--pwfile={folder / 'password'}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if initdb.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            raise RuntimeError(f"initdb failed: {initdb.stderr.strip()[-500:]}")
        for attempt in range(3):  # the free port may be taken between our probe and the server's bind
            cluster = cls(bindir, folder, _free_port(), run_as)
            options = (
                f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {folder}"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            started = cluster._pg_ctl("-l", str(folder / "server.log"), "-w", "-t", "60", "-o", options, "start")
            if started.returncode == 0:
                break
            if attempt == 2:
                log = (
                    (folder / "server.log").read_text(errors="replace")[-800:]
                    if (folder / "server.log").exists()
                    else ""
                )
                shutil.rmtree(folder, ignore_errors=True)
                raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()[-300:]} {log}")
        cluster.psql(f"CREATE DATABASE {TEMPLATE}")
        cluster._seeded = run_sync(_migrate(cluster.url(TEMPLATE)))
        cluster.psql(f"ALTER DATABASE {TEMPLATE} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
        return cluster

    def stop(self) -> None:
        self._pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


async def _migrate(url: str) -> tuple[str, ...]:
    """Bring the template to the latest schema; the names of the tables the migrations left rows in."""
    store = await Store.open(url)
    await store.close()
    connection = await asyncpg.connect(url)
    try:
        tables = [
            r["tablename"]
            for r in await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        return tuple([t for t in tables if await connection.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{t}")')])
    finally:
        await connection.close()


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

"""A throw-away PostgreSQL cluster on 127.0.0.1, for the tests and the benchmarks (never for a deployment).

It runs from the server binaries on this machine (`REELBOT_PG_BINDIR`, or the newest `/usr/lib/postgresql/NN/bin`,
or `initdb` on PATH) in a temporary folder, on a free loopback port, as the `postgres` system user when we are
root (PostgreSQL refuses to run as root), and `stop()` removes it. Databases are copied from a template that is
migrated once at start. The tests start it without durable writes (fast); the benchmarks with PostgreSQL's
default durability, as a deployment runs it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from bot.storage import Store

__all__ = ["PASSWORD", "USER", "PostgresCluster", "run_sync"]

MIN_VERSION = 13
USER = "reelbot"
PASSWORD = "pg-test-secret-Zq7"  # noqa: S105 - the throw-away cluster on 127.0.0.1, not a secret
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
        """One database reused from call to call, emptied back to the template's contents: every table emptied (but
        those the migrations fill) and every identity restarted, whoever was still connected cut off first. About
        30 ms, where a copy of the template costs 0.2–0.4 s: what most tests need, hundreds of times a run."""
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
    def start(cls, *, durable: bool = False) -> PostgresCluster:
        """initdb + pg_ctl start; raises RuntimeError with the reason when that is not possible here. Not
        `durable` (the tests' choice), commits skip the flush to disk; durable, the server's defaults hold."""
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
            options = f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {folder} -c max_connections=200"
            if not durable:
                options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
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

"""The traffic state of a whole deployment, in its PostgreSQL database.

Every process of a split deployment (gateway shards, workers) sends with the same bot token and the same AI/ML API
key, so they share one Discord budget and one provider pace. `PostgresTrafficState` keeps the `TrafficState` in
the shared database (migration `0008_traffic.sql`): request logs, holds, learned buckets and shared values, each
under a *scope* that names one budget (`budget_scope`: a hash of the token or key, never the secret itself), so two
deployments with different tokens on one database never share.

- **One round trip per request step.** `take`, `sent` and `cancel` each call one PL/pgSQL function; `take` holds
  a transaction-scoped advisory lock per key while it counts and inserts, so two processes never both see the
  last place free. Time is the database's (`clock_timestamp()`), so processes on different machines agree.
- **Pending places lapse** after `lapse` seconds: a process that died between its turn and its send stops holding
  a place in everyone's windows.
- **Learned buckets** are read once from the database and then kept here for `LEARNED_FRESH` seconds (a bucket
  changes rarely; every request asks for its route's twice).
- **`update`** applies the change here to the value this process saw last and writes the result only if the row
  still holds that value (one round trip, no lock held); if another process changed it first, it reads the row and
  tries again. Values must be JSON (numbers, strings, lists, dicts, None).
- **Old rows are swept** every `SWEEP_EVERY` seconds by each process, outside any request's path.

**When the database is slow or down**, requests are neither sent unpaced nor held forever: a call that fails or
takes longer than `timeout` makes this process fall back to its own in-memory state for `RETRY_AFTER` seconds,
with every window's limit divided by the number of processes last seen sending in the budget (its fair share),
holds and values carried over, and a warning in the log. Then it tries the database again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from bot.storage.postgres import open_pool
from bot.storage.url import DatabaseUrl
from bot.traffic.state import Learned, LocalTrafficState, Window

__all__ = ["PostgresTrafficState", "budget_scope", "open_traffic_pool"]

log = logging.getLogger(__name__)

T = TypeVar("T")

POOL_SIZE = 4
"""Connections per process for traffic state: its calls are single short statements, never held."""
LEARNED_FRESH = 10.0
SWEEP_EVERY = 30.0
RETRY_AFTER = 1.0

_FAILURES = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
_UNSEEN: Any = object()


def budget_scope(kind: str, secret: str) -> str:
    """A stable name for the budget of one credential (`kind` is `discord` or `provider`) that does not reveal it:
    the first 16 hex digits of a SHA-256 of the secret."""
    digest = hashlib.sha256(f"reelbot {kind} budget\0{secret}".encode()).hexdigest()[:16]
    return f"{kind}:{digest}"


async def open_traffic_pool(url: DatabaseUrl) -> asyncpg.Pool:
    """A small pool of its own, so pacing never queues behind the store's job transactions."""
    return await open_pool(url, size=POOL_SIZE, name="reelbot-traffic")


class PostgresTrafficState:
    """`TrafficState` shared by every process using the same database and `scope`; see the module docstring."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        scope: str,
        *,
        owner: str | None = None,
        lapse: float = 10.0,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self.scope = scope
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        """Names this state's pending places (one per process, or per state object in tests)."""
        self._lapse = lapse
        self._timeout = timeout
        self._clock = clock
        self._learned: dict[str, tuple[float, Learned]] = {}  # route -> (read at, learned)
        self._values: dict[str, Any] = {}  # the last value of each name seen in the database
        self._raw: dict[str, str | None] = {}  # ... as the text stored there (what an optimistic write expects)
        self._peers = 1
        self._fallback = LocalTrafficState(clock)
        self._fallback_pending: collections.Counter[str] = collections.Counter()  # places taken while degraded
        self._degraded_until = 0.0
        self._last_sweep = clock()
        self._sweeping: asyncio.Task[None] | None = None
        self.failures = 0
        """Calls that failed or timed out (each one answered from the in-memory fallback)."""

    # ------------------------------------------------------------------ the database, or the fallback

    async def _call(self, run: Callable[[asyncpg.Connection], Awaitable[T]]) -> T | None:
        """`run` on a pooled connection within `timeout`; None (and a short spell on the fallback) if it fails."""
        if self._clock() < self._degraded_until:
            return None
        try:
            async with asyncio.timeout(self._timeout):
                async with self._pool.acquire() as conn:
                    return await run(conn)
        except _FAILURES as exc:
            self.failures += 1
            if self._clock() >= self._degraded_until:
                log.warning(
                    "traffic state: the database did not answer (%s); pacing this process alone at 1/%d of each "
                    "limit for %.0f s",
                    type(exc).__name__,
                    self._peers,
                    RETRY_AFTER,
                )
            self._degraded_until = self._clock() + RETRY_AFTER
            return None

    def _share(self, window: Window) -> Window:
        return Window(window.key, max(1, window.limit // self._peers), window.per)

    # ------------------------------------------------------------------ TrafficState

    async def take(self, windows: Sequence[Window]) -> tuple[float, str | None]:
        self._maybe_sweep()
        keys = [w.key for w in windows]

        async def run(conn: asyncpg.Connection) -> tuple[float, str | None, int | None]:
            row = await conn.fetchrow(
                "SELECT wait, blocker, peers FROM traffic_take($1, $2, $3, $4, $5, $6)",
                self.scope,
                keys,
                [w.limit for w in windows],
                [w.per for w in windows],
                self.owner,
                self._lapse,
            )
            assert row is not None
            return float(row["wait"]), row["blocker"], row["peers"]

        answer = await self._call(run)
        if answer is not None:
            wait, blocker, peers = answer
            if peers:
                self._peers = max(1, int(peers))
            return wait, blocker
        wait, blocker = await self._fallback.take([self._share(w) for w in windows])
        if blocker is None:
            self._fallback_pending.update(keys)
        return wait, blocker

    def _settle_fallback(self, keys: Sequence[str]) -> list[str]:
        """Settle places taken from the fallback; return the keys whose places are in the database."""
        remote = []
        for key in keys:
            if self._fallback_pending[key] > 0:
                self._fallback_pending[key] -= 1
            else:
                remote.append(key)
        return remote

    async def sent(self, keys: Sequence[str]) -> None:
        remote = self._settle_fallback(keys)
        await self._fallback.sent(keys)  # the fallback knows this process's recent sends, should it be needed
        if remote:
            # If this fails, the pending place lapses in everyone's windows: the send is counted late, or not at
            # all, only while the database is unreachable.
            await self._call(
                lambda conn: conn.execute("SELECT traffic_sent($1, $2, $3)", self.scope, remote, self.owner)
            )

    async def cancel(self, keys: Sequence[str]) -> None:
        remote = self._settle_fallback(keys)
        await self._fallback.cancel(keys)
        if remote:
            await self._call(
                lambda conn: conn.execute("SELECT traffic_cancel($1, $2, $3)", self.scope, remote, self.owner)
            )

    async def hold(self, key: str, seconds: float) -> None:
        await self._fallback.hold(key, seconds)
        await self._call(
            lambda conn: conn.execute(
                "INSERT INTO traffic_holds (scope, key, until)"
                " VALUES ($1, $2, extract(epoch FROM clock_timestamp()) + $3)"
                " ON CONFLICT (scope, key) DO UPDATE SET until = greatest(traffic_holds.until, excluded.until)",
                self.scope,
                key,
                max(0.0, seconds),
            )
        )

    async def learned(self, route: str) -> Learned | None:
        cached = self._learned.get(route)
        if cached is not None and self._clock() - cached[0] < LEARNED_FRESH:
            return cached[1]

        async def run(conn: asyncpg.Connection) -> Learned | None:
            row = await conn.fetchrow(
                'SELECT bucket, "limit", per FROM traffic_routes WHERE scope = $1 AND route = $2', self.scope, route
            )
            return None if row is None else Learned(row["bucket"], row["limit"], row["per"])

        found = await self._call(run)
        if found is None:
            return cached[1] if cached is not None else None
        self._learned[route] = (self._clock(), found)
        return found

    async def learn(self, route: str, learned: Learned) -> None:
        self._learned[route] = (self._clock(), learned)
        await self._call(
            lambda conn: conn.execute(
                'INSERT INTO traffic_routes (scope, route, bucket, "limit", per) VALUES ($1, $2, $3, $4, $5)'
                ' ON CONFLICT (scope, route) DO UPDATE SET bucket = excluded.bucket, "limit" = excluded."limit",'
                " per = excluded.per",
                self.scope,
                route,
                learned.bucket,
                learned.limit,
                learned.per,
            )
        )

    async def update(self, name: str, change: Callable[[T | None], T]) -> T:
        async def run(conn: asyncpg.Connection) -> tuple[T]:
            # Optimistic: the change is applied to the value this process saw last and written only if the row
            # still holds exactly that text (one round trip when nobody else changed it meanwhile); otherwise the
            # row is read again and the change applied to what it holds. A change that changes nothing is answered
            # from a fresh read, so it also serves to read the shared value.
            seen, fresh = self._raw.get(name, _UNSEEN), False
            while True:
                if seen is _UNSEEN:
                    seen, fresh = await self._read(conn, name), True
                current = None if seen is None else json.loads(seen)
                value = change(current)
                if value == current and not fresh:
                    seen = _UNSEEN
                    continue
                if value == current:
                    return (value,)
                text = json.dumps(value)
                if await conn.fetchval(
                    "INSERT INTO traffic_values AS v (scope, name, value) VALUES ($1, $2, $3)"
                    " ON CONFLICT (scope, name) DO UPDATE SET value = excluded.value"
                    " WHERE v.value IS NOT DISTINCT FROM $4 RETURNING true",
                    self.scope,
                    name,
                    text,
                    seen,
                ):
                    self._raw[name] = text
                    return (value,)
                seen = _UNSEEN  # another process changed it first

        answer = await self._call(run)
        if answer is not None:
            self._values[name] = answer[0]
            return answer[0]
        # Degraded: carry on from the last value seen in the database (the change is not shared).
        seen_value = self._values.get(name)
        value = change(seen_value)
        self._values[name] = value
        return value

    async def _read(self, conn: asyncpg.Connection, name: str) -> str | None:
        text: str | None = await conn.fetchval(
            "SELECT value FROM traffic_values WHERE scope = $1 AND name = $2", self.scope, name
        )
        self._raw[name] = text
        return text

    # ------------------------------------------------------------------ housekeeping

    def _maybe_sweep(self) -> None:
        now = self._clock()
        if now - self._last_sweep < SWEEP_EVERY or (self._sweeping is not None and not self._sweeping.done()):
            return
        self._last_sweep = now
        self._sweeping = asyncio.get_running_loop().create_task(self.sweep(), name="reelbot-traffic-sweep")

    async def sweep(self) -> None:
        """Delete requests out of every window, lapsed pending places and holds that ended (any scope)."""

        async def run(conn: asyncpg.Connection) -> None:
            await conn.execute(
                "DELETE FROM traffic_requests WHERE expires_at < extract(epoch FROM clock_timestamp()) - 1"
            )
            await conn.execute("DELETE FROM traffic_holds WHERE until < extract(epoch FROM clock_timestamp()) - 1")

        await self._call(run)

    async def close(self) -> None:
        """Wait for a sweep under way (the pool is closed by whoever opened it)."""
        if self._sweeping is not None:
            with contextlib.suppress(Exception):
                await self._sweeping

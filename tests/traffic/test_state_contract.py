"""The `TrafficState` contract, run against both implementations: the in-process one and the one every process of
a deployment shares in PostgreSQL (two state objects on one database, each with its own pool, stand for two
processes). Real time: the shared state keeps the database's clock, so windows are short and waits are checked
against what the window's arithmetic says, with a margin for the time a call takes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from bot.storage.url import DatabaseUrl
from bot.traffic.shared import PostgresTrafficState, budget_scope, open_traffic_pool
from bot.traffic.state import Learned, LocalTrafficState, TrafficState, Window
from tests.pg import PostgresCluster

SLACK = 0.15  # what a few calls to the database (or the event loop) may take between two measurements

States = Callable[[], Awaitable[TrafficState]]


@pytest.fixture(params=["local", "postgres"])
async def states(request: pytest.FixtureRequest) -> AsyncIterator[States]:
    """Makes the states of one budget as separate processes would see it: the local state is one process's own
    (every call returns the same object), the shared one a new object with its own pool on the same database."""
    if request.param == "local":
        local = LocalTrafficState()

        async def same() -> TrafficState:
            return local

        yield same
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    url = DatabaseUrl.parse(cluster.new_database())
    pools: list[asyncpg.Pool] = []

    async def make() -> TrafficState:
        pools.append(await open_traffic_pool(url))
        return PostgresTrafficState(pools[-1], "discord:test")

    try:
        yield make
    finally:
        for pool in pools:
            await pool.close()


async def test_a_window_allows_limit_requests_then_says_when_the_oldest_leaves(states: States) -> None:
    one, other = await states(), await states()
    window = Window("w", 3, 1.0)
    first = time.monotonic()
    for state in (one, other, one):
        assert await state.take([window]) == (0.0, None)
        await state.sent(["w"])
    wait, blocker = await other.take([window])
    elapsed = time.monotonic() - first
    assert blocker == "w"
    assert 1.0 - elapsed - SLACK <= wait <= 1.0
    await asyncio.sleep(wait + 0.01)
    assert await one.take([window]) == (0.0, None)


async def test_a_pending_request_counts_until_sent_and_its_window_starts_at_the_send(states: States) -> None:
    one, other = await states(), await states()
    window = Window("w", 2, 0.5)
    assert (await one.take([window]))[0] == 0.0
    assert (await other.take([window]))[0] == 0.0
    # Both given their turn, neither sent yet (a busy event loop): still full, however long that takes, and the
    # honest guess is a whole window from now.
    await asyncio.sleep(0.6)
    wait, _ = await one.take([window])
    assert wait == pytest.approx(0.5, abs=0.01)
    await one.sent(["w"])
    await other.sent(["w"])
    sent_at = time.monotonic()
    await asyncio.sleep(0.2)
    wait, _ = await other.take([window])
    assert 0.3 - SLACK <= wait <= 0.5 - (time.monotonic() - sent_at) + SLACK  # counted from the sends


async def test_a_cancelled_place_is_given_back_to_everyone(states: States) -> None:
    one, other = await states(), await states()
    window = Window("w", 1, 10.0)
    assert (await one.take([window]))[0] == 0.0
    assert (await other.take([window]))[0] > 0
    await one.cancel(["w"])
    assert (await other.take([window]))[0] == 0.0


async def test_nothing_is_counted_unless_every_window_has_room(states: States) -> None:
    one, other = await states(), await states()
    wide, narrow = Window("global", 10, 5.0), Window("bucket", 1, 5.0)
    await one.take([wide, narrow])
    await one.sent(["global", "bucket"])
    wait, blocker = await other.take([wide, narrow])
    assert blocker == "bucket"
    assert 5.0 - SLACK <= wait <= 5.0
    for _ in range(9):  # the refused request took no place in the global window
        assert (await other.take([wide]))[0] == 0.0
    assert (await one.take([wide]))[1] == "global"


async def test_a_hold_stops_a_key_for_everyone_and_a_shorter_one_does_not_shorten_it(states: States) -> None:
    one, other = await states(), await states()
    window = Window("global", 50, 1.0)
    await one.hold("global", 1.0)
    await other.hold("global", 0.2)
    wait, blocker = await other.take([window])
    assert blocker == "global"
    assert 1.0 - SLACK <= wait <= 1.0
    await asyncio.sleep(wait + 0.01)
    assert await one.take([window]) == (0.0, None)


async def test_what_one_learns_every_one_uses(states: States) -> None:
    one, other = await states(), await states()
    assert await other.learned("POST /x") is None
    await one.learn("POST /x", Learned("abc", 5, 5.0))
    assert await other.learned("POST /x") == Learned("abc", 5, 5.0)


async def test_updates_from_two_places_at_once_never_lose_one(states: States) -> None:
    one, other = await states(), await states()

    async def bump(state: TrafficState) -> None:
        for _ in range(25):
            await state.update("n", lambda v: {"n": (v or {"n": 0})["n"] + 1})

    await asyncio.gather(bump(one), bump(other), bump(one), bump(other))
    assert await other.update("n", lambda v: v) == {"n": 100}


async def test_two_places_taking_at_once_never_get_more_than_the_limit(states: States) -> None:
    places = [await states() for _ in range(4)]
    for round_ in range(10):  # each round a fresh window with a few places, and a crowd wanting them
        window = Window(f"w{round_}", 3, 10.0)
        answers = await asyncio.gather(*(s.take([window]) for _ in range(6) for s in places))
        assert sum(1 for wait, _ in answers if wait == 0.0) == 3


# ---------------------------------------------------------------------- the shared state only


@pytest.fixture
async def pg_url(postgres: PostgresCluster) -> str:
    return postgres.new_database()


@contextlib.asynccontextmanager
async def shared(url: str, scope: str = "discord:test", **options: Any) -> AsyncIterator[PostgresTrafficState]:
    pool = await open_traffic_pool(DatabaseUrl.parse(url))
    try:
        yield PostgresTrafficState(pool, scope, **options)
    finally:
        await pool.close()


async def test_a_dead_processs_pending_place_lapses(pg_url: str) -> None:
    window = Window("w", 1, 30.0)
    async with shared(pg_url, lapse=0.5) as dead, shared(pg_url) as alive:
        assert (await dead.take([window]))[0] == 0.0  # and then its process dies: never sent, never cancelled
        assert (await alive.take([window]))[1] == "w"
        await asyncio.sleep(0.55)
        assert await alive.take([window]) == (0.0, None)


async def test_different_tokens_on_one_database_do_not_share(pg_url: str) -> None:
    window = Window("discord:global", 1, 30.0)
    first, second = budget_scope("discord", "token-one"), budget_scope("discord", "token-two")
    assert "token" not in first
    async with shared(pg_url, first) as one, shared(pg_url, second) as two:
        assert (await one.take([window]))[0] == 0.0
        assert (await two.take([window]))[0] == 0.0
        await one.learn("GET /x", Learned("b", 1, 1.0))
        assert await two.learned("GET /x") is None


async def test_old_rows_are_swept(pg_url: str) -> None:
    async with shared(pg_url, lapse=0.1) as state:
        await state.take([Window("a", 5, 0.1)])
        await state.sent(["a"])
        await state.take([Window("b", 5, 0.1)])  # pending, never sent: lapses
        await state.take([Window("c", 5, 60.0)])
        await state.sent(["c"])
        await state.hold("h", 0.1)
        await asyncio.sleep(1.2)  # the sweep keeps a second's margin
        await state.sweep()
        conn = await asyncpg.connect(pg_url)
        try:
            keys = [r["key"] for r in await conn.fetch("SELECT key FROM traffic_requests")]
            holds = await conn.fetchval("SELECT count(*) FROM traffic_holds")
        finally:
            await conn.close()
    assert (keys, holds) == (["c"], 0)


async def test_an_unreachable_database_paces_alone_at_a_fair_share_without_stalling(pg_url: str) -> None:
    window = Window("global", 10, 30.0)
    async with shared(pg_url) as one, shared(pg_url) as other:
        await other.take([window])
        await one.take([window])  # two processes seen in the budget
        await one.sent(["global"])
        await one._pool.close()  # its database is gone
        started = time.monotonic()
        granted = [await one.take([window]) for _ in range(8)]
        assert time.monotonic() - started < 1.0  # answered at once, not after a timeout each
        # Half of the limit for itself (it knew of two processes), counting its one send from before.
        assert [w for w, _ in granted].count(0.0) == 4
        assert one.failures >= 1
        await one.sent(["global"])  # places taken while degraded settle there
        await one.cancel(["global"])


async def test_a_database_that_hangs_costs_one_timeout_then_the_fallback_answers(pg_url: str) -> None:
    scope = "discord:test"
    async with shared(pg_url, scope, timeout=0.3) as state:
        blocker = await asyncpg.connect(pg_url)
        try:
            # Another session holds the key's lock (as a stuck transaction would): the take cannot finish.
            lock = await blocker.fetchval("SELECT hashtext($1 || ' ' || 'global')", scope)
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("SELECT pg_advisory_xact_lock(1380057092, $1)", lock)
            started = time.monotonic()
            assert await state.take([Window("global", 10, 1.0)]) == (0.0, None)
            assert 0.3 <= time.monotonic() - started < 0.3 + SLACK + 0.2
            assert state.failures == 1
            await transaction.rollback()
        finally:
            await blocker.close()

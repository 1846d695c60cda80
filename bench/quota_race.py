"""Quota race: 1,000 reservations at once against the real store → reservations per second and the count granted.

Ten members fire 100 `/video` reservations each at the same moment with a limit of 40: exactly 400 may be granted.
Run twice: through one store (one bot process) and split over two store connections to the same file (two bot
processes sharing a database), where only SQLite's write lock keeps them honest. It also runs on PostgreSQL
across two real OS processes, where only the per-member advisory lock keeps them honest: on a throw-away cluster
it starts itself (`bot/devtools/pgcluster.py`, the server's default durability), or on
`REELBOT_BENCH_POSTGRES_URL=postgresql://…` if set (any database the benchmark may write to; each run uses a guild
id of its own).

A third race draws from a channel budget instead: the same 1,000 reservations, by 50 members each far below their
own limit, in a channel whose shared pool holds 300 videos: exactly 300 may be granted, and every member waits
for the others on the pool's lock (SQLite's write lock; PostgreSQL's advisory lock on the pool).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.report import Result
from bot.devtools.pgcluster import PostgresCluster
from bot.domain.jobs import Reference
from bot.domain.pools import Period
from bot.storage import LedgerKind, NewJob, QuotaRequest, Reserved, Store

ATTEMPTS = 1_000
MEMBERS = 10
LIMIT = 40
GUILD = 1
REQUEST = QuotaRequest(window_seconds=86_400, fallback_limit=LIMIT, max_active=ATTEMPTS)
REFS = (Reference("https://cdn.example/1.png", "1.png", "image/png", 1000, 512, 512),)
POOL_MEMBERS = 50
POOL_SIZE = 300
TEAM_CHANNEL = 3


def _job(user: int) -> NewJob:
    return NewJob(GUILD, 2, user, "a fox", 5, "16:9", "klingai/video-o1-reference-to-video", REFS)


async def _race(path: Path, connections: int) -> tuple[int, float, int]:
    stores = [await Store.open(path) for _ in range(connections)]
    try:
        calls = [
            stores[i % connections].jobs.create_reserved(_job(100 + i % MEMBERS), REQUEST) for i in range(ATTEMPTS)
        ]
        started = time.perf_counter()
        outcomes = await asyncio.gather(*calls)
        elapsed = time.perf_counter() - started
        granted = sum(isinstance(o, Reserved) for o in outcomes)
        ledger = len(await stores[0].quotas.ledger(GUILD))
    finally:
        for store in stores:
            await store.close()
    return granted, elapsed, ledger


async def _pool_race(path: Path, connections: int) -> tuple[int, float, int]:
    stores = [await Store.open(path) for _ in range(connections)]
    try:
        await stores[0].teams.set_pool(GUILD, TEAM_CHANNEL, POOL_SIZE, Period.MONTH, actor_id=1)
        calls = [
            stores[i % connections].jobs.create_reserved(
                NewJob(GUILD, TEAM_CHANNEL, 100 + i % POOL_MEMBERS, "a fox", 5, "16:9", "m", REFS), REQUEST
            )
            for i in range(ATTEMPTS)
        ]
        started = time.perf_counter()
        outcomes = await asyncio.gather(*calls)
        elapsed = time.perf_counter() - started
        granted = sum(isinstance(o, Reserved) for o in outcomes)
        draws = [e for e in await stores[0].quotas.ledger(GUILD, kinds=[LedgerKind.RESERVE]) if e.pool_id is not None]
    finally:
        for store in stores:
            await store.close()
    return granted, elapsed, len(draws)


async def _race_in_process(url: str, guild: int, start_at: float, indices: range) -> tuple[int, float]:
    """One of the two processes: open the store, wait for the shared start instant, fire its share of calls."""
    async with await Store.open(url) as store:
        calls = [
            store.jobs.create_reserved(
                NewJob(guild, 2, 100 + i % MEMBERS, "a fox", 5, "16:9", "klingai/video-o1-reference-to-video", REFS),
                REQUEST,
            )
            for i in indices
        ]
        await asyncio.sleep(max(0.0, start_at - time.time()))
        started = time.perf_counter()
        outcomes = await asyncio.gather(*calls)
        return sum(isinstance(o, Reserved) for o in outcomes), time.perf_counter() - started


def _process_main(url: str, guild: int, start_at: float, indices: range) -> tuple[int, float]:
    return asyncio.run(_race_in_process(url, guild, start_at, indices))


async def _postgres_race(url: str) -> tuple[int, float, int]:
    guild = time.time_ns()  # a guild of this run's own, so earlier runs' reservations do not count
    async with await Store.open(url):
        pass  # migrate once, before the two processes start
    half = ATTEMPTS // 2
    start_at = time.time() + 3.0  # both processes have opened their pools by then
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(2) as pool:
        shares = await asyncio.gather(
            loop.run_in_executor(pool, _process_main, url, guild, start_at, range(half)),
            loop.run_in_executor(pool, _process_main, url, guild, start_at, range(half, ATTEMPTS)),
        )
    async with await Store.open(url) as store:
        ledger = len(await store.quotas.ledger(guild))
    return sum(g for g, _ in shares), max(t for _, t in shares), ledger


async def _postgres() -> tuple[int, float, int]:
    """The two-process race on REELBOT_BENCH_POSTGRES_URL, or else on a cluster of its own, removed after."""
    url = os.environ.get("REELBOT_BENCH_POSTGRES_URL")
    if url:
        return await _postgres_race(url)
    cluster = await asyncio.to_thread(lambda: PostgresCluster.start(durable=True))
    try:
        return await _postgres_race(await asyncio.to_thread(cluster.new_database))
    finally:
        await asyncio.to_thread(cluster.stop)


async def run() -> Result:
    result = Result("quota race", f"{ATTEMPTS:,} simultaneous reservations by {MEMBERS} members, limit {LIMIT} each")
    allowed = MEMBERS * LIMIT
    for connections in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            granted, elapsed, ledger = await _race(Path(tmp) / "race.db", connections)
        label = "one store" if connections == 1 else "two stores, one file"
        rate = ATTEMPTS / elapsed
        result.add(f"granted ({label})", f"{granted} of {ATTEMPTS}", f"exactly {allowed}", granted == allowed)
        result.add(f"ledger rows ({label})", str(ledger), f"{allowed} (one per grant)", ledger == allowed)
        result.add(f"reservations/s ({label})", f"{rate:,.0f}", ">= 1,000", rate >= 1000)
    for connections in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            granted, elapsed, draws = await _pool_race(Path(tmp) / "pool.db", connections)
        label = "channel budget, " + ("one store" if connections == 1 else "two stores, one file")
        rate = ATTEMPTS / elapsed
        result.add(f"granted ({label})", f"{granted} of {ATTEMPTS}", f"exactly {POOL_SIZE}", granted == POOL_SIZE)
        result.add(f"draws in the ledger ({label})", str(draws), f"{POOL_SIZE}", draws == POOL_SIZE)
        result.add(f"reservations/s ({label})", f"{rate:,.0f}", ">= 1,000", rate >= 1000)
    try:
        granted, elapsed, ledger = await _postgres()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        result.notes.append(f"PostgreSQL variant not run: {exc}")
    else:
        label = "PostgreSQL, two processes"
        rate = ATTEMPTS / elapsed
        result.add(f"granted ({label})", f"{granted} of {ATTEMPTS}", f"exactly {allowed}", granted == allowed)
        result.add(f"ledger rows ({label})", str(ledger), f"{allowed} (one per grant)", ledger == allowed)
        result.add(f"reservations/s ({label})", f"{rate:,.0f}", "", None)
        result.notes.append(
            "PostgreSQL: two OS processes with a store each fire 500 reservations at the same instant; the cluster "
            "runs on the same 2 cores, with the server's default durability (every commit flushed)."
        )
    result.notes.append(
        "Each reservation is one write transaction: check the window, insert the job, write the ledger."
    )
    return result

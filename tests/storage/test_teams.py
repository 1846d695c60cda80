"""Team channels on a real database (each backend of REELBOT_TEST_BACKENDS): channel budgets as race-free as the
personal quota, every draw and refund a ledger row naming the pool, refunds back to where the charge came from,
calendar periods; jobs waiting for approval (due only at their deadline, not resumed at start-up); takedowns;
blocked words in any spelling; credits; and a database from before these features migrated with its data."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosqlite
import asyncpg
import pytest

from bot.domain.clock import FakeClock
from bot.domain.jobs import FailureKind, Job, JobStatus, Reference
from bot.domain.pools import Period, period_bounds
from bot.domain.quotas import Refusal
from bot.storage import Backend, LedgerKind, NewJob, QuotaRequest, Refused, Reserved, Store
from bot.storage.postgres import PostgresDatabase
from bot.storage.schema import load_migrations
from bot.storage.sqlite import SqliteDatabase
from bot.storage.url import DatabaseUrl
from tests.pg import PostgresCluster, RawSql

S = JobStatus
GUILD, TEAM, OTHER_CHANNEL, MOD = 10, 30, 31, 99
ALICE, BOB = 40, 41
REF = Reference("https://cdn.example/a.png", "a.png", "image/png", 1, 400, 400)
WAIT = 600.0


def request(limit: int = 5, max_active: int = 100) -> QuotaRequest:
    return QuotaRequest(window_seconds=86_400, fallback_limit=limit, max_active=max_active, approval_timeout=WAIT)


def new_job(user_id: int = ALICE, channel_id: int = TEAM, *, free: bool = False, retry_of: int | None = None) -> NewJob:
    return NewJob(GUILD, channel_id, user_id, "prompt", 5, "16:9", "m", (REF,), free=free, retry_of=retry_of)


async def reserve(store: Store, user_id: int = ALICE, channel_id: int = TEAM, **kw: object) -> Job:
    result = await store.jobs.create_reserved(new_job(user_id, channel_id), request(**kw))  # type: ignore[arg-type]
    assert isinstance(result, Reserved), result
    return result.job


async def pool_used(store: Store, channel_id: int = TEAM) -> int:
    pool = await store.teams.pool_status(GUILD, channel_id)
    assert pool is not None
    return pool.used


# ---------------------------------------------------------------------- budgets


async def test_a_draw_comes_from_the_pool_not_from_the_members_quota(store: Store) -> None:
    status = await store.teams.set_pool(GUILD, TEAM, 3, Period.MONTH, actor_id=MOD)
    assert status is not None
    assert (status.videos, status.used, status.remaining) == (3, 0, 3)
    result = await store.jobs.create_reserved(new_job(), request())
    assert isinstance(result, Reserved)
    assert result.job.pool_id == status.pool_id
    assert result.quota.pool is not None
    assert (result.quota.pool.used, result.quota.used) == (1, 0)  # what the card shows right after
    assert (await store.quotas.status(GUILD, ALICE, request())).used == 0
    in_team = await store.quotas.status(GUILD, ALICE, request(), channel_id=TEAM)
    assert in_team.pool is not None
    assert (in_team.allowance.used, in_team.allowance.total) == (1, 3)
    assert (await store.quotas.status(GUILD, ALICE, request(), channel_id=OTHER_CHANNEL)).pool is None
    [draw] = await store.quotas.ledger(GUILD, kinds=[LedgerKind.RESERVE])
    assert (draw.user_id, draw.job_id, draw.pool_id, draw.amount) == (ALICE, result.job.id, status.pool_id, 1)


async def test_an_empty_pool_refuses_without_touching_the_members_own_quota(store: Store) -> None:
    await store.teams.set_pool(GUILD, TEAM, 1, Period.DAY, actor_id=MOD)
    await reserve(store, ALICE)
    refused = await store.jobs.create_reserved(new_job(BOB), request())
    assert isinstance(refused, Refused)
    assert refused.refusal is Refusal.POOL_EMPTY
    assert refused.quota.own.remaining == 5  # bob could still start videos elsewhere
    assert len(await store.quotas.ledger(GUILD, kinds=[LedgerKind.RESERVE])) == 1
    await reserve(store, BOB, OTHER_CHANNEL)  # ... and does


async def test_blocks_and_the_active_job_limit_still_apply_in_a_budget_channel(store: Store) -> None:
    await store.teams.set_pool(GUILD, TEAM, 100, Period.MONTH, actor_id=MOD)
    await store.quotas.block(GUILD, BOB, actor_id=MOD, reason="spam")
    blocked = await store.jobs.create_reserved(new_job(BOB), request())
    assert isinstance(blocked, Refused)
    assert blocked.refusal is Refusal.BLOCKED
    await reserve(store, ALICE, max_active=1)
    busy = await store.jobs.create_reserved(new_job(ALICE), request(max_active=1))
    assert isinstance(busy, Refused)
    assert busy.refusal is Refusal.TOO_MANY_ACTIVE
    assert await pool_used(store) == 1


async def test_two_members_racing_for_the_last_unit(store: Store) -> None:
    await store.teams.set_pool(GUILD, TEAM, 1, Period.MONTH, actor_id=MOD)
    for _ in range(20):  # many rounds: each race has one winner whichever member it is
        results = await asyncio.gather(*(store.jobs.create_reserved(new_job(u), request()) for u in (ALICE, BOB)))
        winners = [r for r in results if isinstance(r, Reserved)]
        assert len(winners) <= 1
        for won in winners:  # give the unit back for the next round
            await store.jobs.transition(won.job.id, S.QUEUED, S.CANCELLED)
    assert await pool_used(store) == 0


async def test_many_concurrent_reservations_by_many_members_never_overdraw(store: Store) -> None:
    await store.teams.set_pool(GUILD, TEAM, 5, Period.MONTH, actor_id=MOD)
    members = [1000 + i for i in range(25)]
    calls = [store.jobs.create_reserved(new_job(m), request()) for m in members for _ in range(2)]
    results = await asyncio.gather(*calls)
    reserved = [r for r in results if isinstance(r, Reserved)]
    assert len(reserved) == 5
    assert {r.refusal for r in results if isinstance(r, Refused)} == {Refusal.POOL_EMPTY}
    assert sorted(r.quota.pool.used for r in reserved if r.quota.pool) == [1, 2, 3, 4, 5]
    assert await pool_used(store) == 5


async def test_two_processes_drawing_from_one_pool(store_url: str, clock: FakeClock) -> None:
    async with await Store.open(store_url, clock=clock) as one, await Store.open(store_url, clock=clock) as two:
        await one.teams.set_pool(GUILD, TEAM, 4, Period.WEEK, actor_id=MOD)
        calls = [s.jobs.create_reserved(new_job(1000 + i), request()) for i, s in enumerate([one, two] * 15)]
        results = await asyncio.gather(*calls)
        assert sum(isinstance(r, Reserved) for r in results) == 4
        assert await pool_used(two) == 4


async def test_a_refund_returns_to_the_pool_it_came_from_even_after_a_change_or_removal(store: Store) -> None:
    pool = await store.teams.set_pool(GUILD, TEAM, 2, Period.MONTH, actor_id=MOD)
    assert pool is not None
    first, second = await reserve(store, ALICE), await reserve(store, BOB)
    assert await pool_used(store) == 2
    resized = await store.teams.set_pool(GUILD, TEAM, 10, Period.WEEK, actor_id=MOD)
    assert resized is not None
    assert (resized.pool_id, resized.used) == (pool.pool_id, 2)  # the same pool; this period's use still counts
    await store.jobs.transition(first.id, S.QUEUED, S.FAILED, failure_kind=FailureKind.INTERNAL)
    assert await pool_used(store) == 1
    assert await store.teams.set_pool(GUILD, TEAM, None, Period.WEEK, actor_id=MOD) is None
    assert await store.teams.pool_status(GUILD, TEAM) is None
    await store.jobs.transition(second.id, S.QUEUED, S.CANCELLED, actor_id=MOD)
    refunds = await store.quotas.ledger(GUILD, kinds=[LedgerKind.REFUND])
    assert [(r.job_id, r.pool_id) for r in refunds] == [(first.id, pool.pool_id), (second.id, pool.pool_id)]
    assert (await store.quotas.status(GUILD, ALICE, request())).used == 0  # never the member's quota
    # Set up again, the budget continues: both draws were refunded, nothing of this period is used.
    again = await store.teams.set_pool(GUILD, TEAM, 3, Period.MONTH, actor_id=MOD)
    assert again is not None
    assert (again.pool_id, again.used) == (pool.pool_id, 0)


async def test_a_free_retry_in_a_budget_channel_draws_nothing(store: Store) -> None:
    await store.teams.set_pool(GUILD, TEAM, 1, Period.MONTH, actor_id=MOD)
    first = await reserve(store)
    await store.jobs.transition(first.id, S.QUEUED, S.FAILED, failure_kind=FailureKind.PROVIDER_UNAVAILABLE)
    await reserve(store)  # the refunded unit is drawn again
    retry = await store.jobs.create_reserved(new_job(free=True, retry_of=first.id), request())
    assert isinstance(retry, Reserved)
    assert (retry.job.pool_id, retry.job.free) == (None, True)
    assert await pool_used(store) == 1


async def test_a_new_period_starts_the_pool_afresh(store: Store, clock: FakeClock) -> None:
    await store.teams.set_pool(GUILD, TEAM, 1, Period.DAY, actor_id=MOD)
    await reserve(store)
    assert isinstance(await store.jobs.create_reserved(new_job(BOB), request()), Refused)
    _, end = period_bounds(Period.DAY, clock())
    clock.now = end - 0.001
    assert isinstance(await store.jobs.create_reserved(new_job(BOB), request()), Refused)
    clock.now = end
    status = await store.teams.pool_status(GUILD, TEAM)
    assert status is not None
    assert (status.used, status.resets_at) == (0, end + 86_400)
    await reserve(store, BOB)


async def test_budget_and_approvals_changes_are_audited(store: Store) -> None:
    await store.teams.set_pool(GUILD, TEAM, 7, Period.WEEK, actor_id=MOD)
    await store.teams.set_approvals(GUILD, TEAM, True, actor_id=MOD)
    await store.teams.set_approvals(GUILD, TEAM, False, actor_id=MOD)
    rows = await store.quotas.ledger(GUILD, kinds=[LedgerKind.GUILD_SETTING])
    assert [r.detail for r in rows] == [
        '{"budget": 7, "channel_id": 30, "period": "week"}',
        '{"approvals": true, "channel_id": 30}',
        '{"approvals": false, "channel_id": 30}',
    ]
    assert {r.actor_id for r in rows} == {MOD}
    with pytest.raises(ValueError, match="negative"):
        await store.teams.set_pool(GUILD, TEAM, -1, Period.WEEK, actor_id=MOD)


# ---------------------------------------------------------------------- approvals


async def test_a_job_in_an_approvals_channel_waits_charged_and_is_due_only_at_its_deadline(
    store: Store, clock: FakeClock
) -> None:
    await store.teams.set_approvals(GUILD, TEAM, True, actor_id=MOD)
    job = await reserve(store)
    assert (job.status, job.needs_approval, job.next_poll_at) == (S.AWAITING_APPROVAL, True, clock() + WAIT)
    assert (await store.quotas.status(GUILD, ALICE, request())).used == 1
    assert (await store.quotas.status(GUILD, ALICE, request())).active == 1
    assert await store.jobs.due(clock()) == []
    assert await store.jobs.claim_due("worker", lease_seconds=30) == []
    assert await store.jobs.unfinished() == []  # start-up recovery leaves it waiting
    clock.advance(WAIT)
    assert [j.id for j in await store.jobs.due(clock())] == [job.id]  # now it is due: to expire
    other = await reserve(store, BOB, OTHER_CHANNEL)
    assert other.status is S.QUEUED


async def test_approve_queues_it_and_restarts_the_timeout_reject_refunds_with_the_moderator(
    store: Store, clock: FakeClock
) -> None:
    await store.teams.set_approvals(GUILD, TEAM, True, actor_id=MOD)
    first, second = await reserve(store), await reserve(store, BOB)
    clock.advance(100)
    approved = await store.jobs.transition(
        first.id, S.AWAITING_APPROVAL, S.QUEUED, reviewed_by=MOD, reviewed_at=clock(), next_poll_at=clock()
    )
    assert approved is not None
    assert (approved.reviewed_by, approved.timeout_start) == (MOD, clock())
    assert [j.id for j in await store.jobs.due(clock())] == [first.id]
    rejected = await store.jobs.transition(
        second.id,
        S.AWAITING_APPROVAL,
        S.CANCELLED,
        actor_id=MOD,
        failure_kind=FailureKind.REJECTED,
        last_error="off topic",
        reviewed_by=MOD,
        reviewed_at=clock(),
    )
    assert rejected is not None
    [refund] = await store.quotas.ledger(GUILD, kinds=[LedgerKind.REFUND])
    assert (refund.job_id, refund.actor_id, refund.reason) == (second.id, MOD, "job cancelled: rejected")
    assert (await store.quotas.status(GUILD, BOB, request())).used == 0


# ---------------------------------------------------------------------- takedowns and credits


async def test_a_removed_video_stays_charged_and_keeps_its_delivery_time(store: Store, clock: FakeClock) -> None:
    job = await reserve(store, channel_id=OTHER_CHANNEL)
    for old, new in [(S.QUEUED, S.SUBMITTING), (S.SUBMITTING, S.GENERATING), (S.GENERATING, S.DOWNLOADING)]:
        await store.jobs.transition(job.id, old, new, credits_used=1_120_000.0)
    await store.jobs.transition(job.id, S.DOWNLOADING, S.DELIVERING)
    delivered = await store.jobs.transition(job.id, S.DELIVERING, S.DELIVERED, delivered_message_id=5)
    assert delivered is not None
    clock.advance(60)
    removed = await store.jobs.transition(job.id, S.DELIVERED, S.REMOVED, removed_by=MOD, removed_at=clock())
    assert removed is not None
    assert (removed.removed_by, removed.removed_at, removed.finished_at) == (MOD, clock(), delivered.finished_at)
    assert removed.credits_used == 1_120_000.0
    assert (await store.quotas.status(GUILD, ALICE, request())).used == 1
    assert await store.quotas.ledger(GUILD, kinds=[LedgerKind.REFUND]) == []


# ---------------------------------------------------------------------- blocked words


async def test_a_word_is_blocked_once_in_any_spelling_and_removed_in_any_spelling(store: Store) -> None:
    added = await store.teams.add_word(GUILD, "  Hot Dog ", actor_id=MOD)
    assert added is not None
    assert (added.phrase, added.text, added.added_by) == ("hot dog", "Hot Dog", MOD)
    assert await store.teams.add_word(GUILD, "HOT\u200b  DOG", actor_id=MOD) is None
    assert await store.teams.add_word(GUILD + 1, "hot dog", actor_id=MOD) is not None  # another guild's list
    assert [w.text for w in await store.teams.words(GUILD)] == ["Hot Dog"]
    with pytest.raises(ValueError, match="letter or digit"):
        await store.teams.add_word(GUILD, "?!", actor_id=MOD)
    with pytest.raises(ValueError, match="at most 100"):
        await store.teams.add_word(GUILD, "x" * 101, actor_id=MOD)
    removed = await store.teams.remove_word(GUILD, "hot-dog", actor_id=MOD)
    assert removed is not None
    assert await store.teams.remove_word(GUILD, "hot dog", actor_id=MOD) is None
    assert await store.teams.words(GUILD) == []
    assert len(await store.teams.words(GUILD + 1)) == 1


# ---------------------------------------------------------------------- the migration


@pytest.fixture
async def version_3_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest, clock: FakeClock) -> str:
    """A database as the bot left it before team channels: migrations 1-3 only, with jobs and ledger rows."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        conn = await aiosqlite.connect(tmp_path / "old.db", isolation_level=None)
        conn.row_factory = aiosqlite.Row
        db: SqliteDatabase | PostgresDatabase = SqliteDatabase(conn, tmp_path / "old.db")
        await db.migrate(load_migrations(Backend.SQLITE)[:3])
    else:
        cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
        url = cluster.new_database(migrated=False)
        db = PostgresDatabase(await asyncpg.create_pool(url), DatabaseUrl.parse(url))
        await db.migrate(load_migrations(Backend.POSTGRESQL)[:3])
    raw = RawSql(url)
    for job_id in (1, 2, 3):  # the ids the database gives them
        await raw.execute(
            "INSERT INTO jobs (guild_id, channel_id, user_id, prompt, duration, aspect_ratio, model,"
            ' "references", status, created_at, updated_at, delivery_nonce, retry_of)'
            " VALUES (?, ?, ?, 'p', 5, '16:9', 'm', '[]', 'queued', 1, 1, ?, ?)",
            GUILD,
            TEAM,
            ALICE,
            f"nonce{job_id}",
            None if job_id == 1 else 1,
        )
        await raw.execute("UPDATE jobs SET status = ? WHERE id = ?", "submitting", job_id)
        await raw.execute(
            "INSERT INTO quota_ledger (guild_id, user_id, kind, amount, job_id, at) VALUES (?, ?, 'reserve', 1, ?, ?)",
            GUILD,
            ALICE,
            job_id,
            clock() - 60,
        )
    # A fourth job that is gone (as if removed by hand): its id must never be given out again.
    await raw.execute(
        'INSERT INTO jobs (guild_id, channel_id, user_id, prompt, duration, aspect_ratio, model, "references",'
        " status, created_at, updated_at, delivery_nonce) VALUES (1, 1, 1, 'p', 5, '16:9', 'm', '[]', 'queued', 1, 1,"
        " 'gone')"
    )
    await raw.execute("DELETE FROM jobs WHERE delivery_nonce = 'gone'")
    await raw.close()
    await db.close()
    return url


async def test_a_database_from_before_team_channels_is_migrated_with_its_jobs_and_ids(
    version_3_url: str, clock: FakeClock
) -> None:
    async with await Store.open(version_3_url, clock=clock) as store:
        jobs = [await store.jobs.get(i) for i in (1, 2, 3)]
        assert [j.status if j else None for j in jobs] == [S.SUBMITTING] * 3
        assert [j.retry_of if j else None for j in jobs] == [None, 1, 1]
        assert all(j is not None and j.pool_id is None and not j.needs_approval for j in jobs)
        # 0005 (characters and styles) adds its columns after 0004 rebuilt the table.
        assert all(j is not None and j.characters == () and j.style_name is None for j in jobs)
        assert (await store.quotas.status(GUILD, ALICE, request())).used == 3
        new = await reserve(store, channel_id=OTHER_CHANNEL)
        assert new.id == 5  # ids continue where they were, never reused (4 was given out once)

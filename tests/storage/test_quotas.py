"""Quotas on a real database (each backend of REELBOT_TEST_BACKENDS): refunds exactly once, the rolling window
to the instant, moderator settings and their precedence, guild isolation, and an audit ledger that explains
every number."""

from __future__ import annotations

import asyncio

import pytest

from bot.domain.clock import FakeClock
from bot.domain.jobs import FailureKind, Job, JobStatus, Reference
from bot.domain.quotas import Refusal
from bot.storage import LedgerKind, NewJob, QuotaRequest, Refused, Reserved, Store
from tests.pg import RawRefused, RawSql

S = JobStatus
GUILD, OTHER_GUILD, CHANNEL, USER, MOD = 10, 20, 30, 40, 99
HOUR = 3600.0
WINDOW = 24 * HOUR
REF = Reference("https://cdn.example/a.png", "a.png", "image/png", 1, 400, 400)


def request(limit: int = 5, max_active: int = 100, roles: tuple[int, ...] = ()) -> QuotaRequest:
    return QuotaRequest(window_seconds=WINDOW, fallback_limit=limit, max_active=max_active, role_ids=roles)


def new_job(user_id: int = USER, guild_id: int = GUILD) -> NewJob:
    return NewJob(guild_id, CHANNEL, user_id, "prompt", 5, "16:9", "m", (REF,))


async def reserve(store: Store, req: QuotaRequest | None = None, **kw: int) -> Job:
    result = await store.jobs.create_reserved(new_job(**kw), req or request())
    assert isinstance(result, Reserved), result
    return result.job


async def refund_rows(store: Store, job_id: int) -> int:
    return sum(e.job_id == job_id for e in await store.quotas.ledger(GUILD, kinds=[LedgerKind.REFUND]))


# --- refunds -----------------------------------------------------------------------------------------------------


async def test_refund_restores_exactly_one_unit_once(store: Store) -> None:
    jobs = [await reserve(store) for _ in range(3)]
    assert (await store.quotas.status(GUILD, USER, request())).used == 3
    assert await store.quotas.refund(jobs[0].id, "provider failed") is True
    assert await store.quotas.refund(jobs[0].id, "provider failed") is False  # second call: nothing written
    assert (await store.quotas.status(GUILD, USER, request())).used == 2
    assert await refund_rows(store, jobs[0].id) == 1


async def test_failed_transition_refunds_in_the_same_step_and_a_manual_refund_adds_nothing(store: Store) -> None:
    job = await reserve(store)
    await store.jobs.transition(job.id, S.QUEUED, S.SUBMITTING)
    failed = await store.jobs.transition(
        job.id, S.SUBMITTING, S.FAILED, failure_kind=FailureKind.OUT_OF_CREDITS, last_error="credits"
    )
    assert failed is not None
    assert (await store.quotas.status(GUILD, USER, request())).used == 0
    assert await store.quotas.refund(job.id, "moderator refund") is False
    assert await refund_rows(store, job.id) == 1
    [row] = await store.quotas.ledger(GUILD, kinds=[LedgerKind.REFUND])
    assert row.reason == "job failed: out_of_credits"
    assert row.actor_id is None  # the bot, not a moderator


@pytest.mark.parametrize("end", [S.CANCELLED, S.EXPIRED, S.FAILED])
async def test_every_end_without_a_video_refunds(store: Store, end: JobStatus) -> None:
    job = await reserve(store)
    await store.jobs.transition(job.id, S.QUEUED, end)
    assert (await store.quotas.status(GUILD, USER, request())).used == 0
    assert await refund_rows(store, job.id) == 1


async def test_delivered_job_stays_charged(store: Store) -> None:
    job = await reserve(store)
    for old, new in [(S.QUEUED, S.SUBMITTING), (S.SUBMITTING, S.GENERATING), (S.GENERATING, S.DOWNLOADING)]:
        await store.jobs.transition(job.id, old, new)
    await store.jobs.transition(job.id, S.DOWNLOADING, S.DELIVERING)
    await store.jobs.transition(job.id, S.DELIVERING, S.DELIVERED, delivered_message_id=77)
    assert (await store.quotas.status(GUILD, USER, request())).used == 1
    assert await refund_rows(store, job.id) == 0


async def test_database_refuses_a_second_refund_row_and_any_change_to_the_ledger(store: Store, raw: RawSql) -> None:
    job = await reserve(store)
    assert await store.quotas.refund(job.id, "once")
    with pytest.raises(RawRefused):
        await raw.execute(
            "INSERT INTO quota_ledger (guild_id, user_id, kind, amount, job_id, at) VALUES (?, ?, 'refund', 1, ?, 0)",
            GUILD,
            USER,
            job.id,
        )
    with pytest.raises(RawRefused, match="append-only"):
        await raw.execute("DELETE FROM quota_ledger")
    with pytest.raises(RawRefused, match="append-only"):
        await raw.execute("UPDATE quota_ledger SET amount = 0 WHERE job_id = ?", job.id)
    assert [e.kind for e in await store.quotas.ledger(GUILD)] == [LedgerKind.RESERVE, LedgerKind.REFUND]


async def test_concurrent_refunds_of_one_job_write_one_row(store_url: str, clock: FakeClock) -> None:
    # Two processes (two stores) and several coroutines each refund the same job at once: one wins.
    async with await Store.open(store_url, clock=clock) as one, await Store.open(store_url, clock=clock) as two:
        job = await reserve(one)
        results = await asyncio.gather(*(s.quotas.refund(job.id, "race") for s in (one, two) for _ in range(5)))
        assert sorted(results) == [False] * 9 + [True]
        assert await refund_rows(one, job.id) == 1
        assert (await two.quotas.status(GUILD, USER, request())).used == 0


async def test_refund_of_an_unknown_job_writes_nothing(store: Store) -> None:
    assert await store.quotas.refund(4242, "no such job") is False
    assert await store.quotas.ledger(GUILD) == []


# --- the rolling window ------------------------------------------------------------------------------------------


async def test_window_frees_a_slot_exactly_when_the_oldest_use_leaves(store: Store, clock: FakeClock) -> None:
    req = request(limit=2)
    t0 = clock()
    await reserve(store, req)
    clock.advance(HOUR)
    await reserve(store, req)
    refused = await store.jobs.create_reserved(new_job(), req)
    assert isinstance(refused, Refused)
    assert refused.refusal is Refusal.OVER_LIMIT
    assert refused.quota.next_free_at == t0 + WINDOW  # what the member is told

    clock.now = t0 + WINDOW - 0.001
    still = await store.jobs.create_reserved(new_job(), req)
    assert isinstance(still, Refused)
    assert still.quota.used == 2

    clock.now = t0 + WINDOW
    allowed = await store.jobs.create_reserved(new_job(), req)
    assert isinstance(allowed, Reserved)
    assert allowed.quota.used == 2  # the second use and this one
    assert allowed.quota.next_free_at == t0 + HOUR + WINDOW


async def test_window_boundary_with_fractional_times(store: Store, clock: FakeClock) -> None:
    req = QuotaRequest(window_seconds=0.3, fallback_limit=1, max_active=100)
    clock.now = 1_800_000_000.1  # not exactly representable: the free instant must still be exact
    await reserve(store, req)
    refused = await store.jobs.create_reserved(new_job(), req)
    assert isinstance(refused, Refused)
    assert refused.quota.next_free_at is not None
    clock.now = refused.quota.next_free_at
    assert isinstance(await store.jobs.create_reserved(new_job(), req), Reserved)


# --- moderator settings ------------------------------------------------------------------------------------------


async def test_limit_precedence_member_over_role_over_guild_over_fallback(store: Store) -> None:
    async def limit(roles: tuple[int, ...] = ()) -> int:
        return (await store.quotas.status(GUILD, USER, request(limit=5, roles=roles))).limit

    assert await limit() == 5
    await store.quotas.set_guild_default(GUILD, 3, actor_id=MOD)
    assert await limit() == 3
    await store.quotas.set_role_limit(GUILD, 1, 8, actor_id=MOD)
    await store.quotas.set_role_limit(GUILD, 2, 12, actor_id=MOD)
    assert await limit(roles=(1,)) == 8
    assert await limit(roles=(1, 2, 3)) == 12  # the highest of the member's roles
    assert await limit(roles=(3,)) == 3  # a role without a limit changes nothing
    await store.quotas.set_member_limit(GUILD, USER, 1, actor_id=MOD)
    assert await limit(roles=(1, 2)) == 1
    await store.quotas.set_member_limit(GUILD, USER, None, actor_id=MOD)  # cleared
    assert await limit(roles=(1, 2)) == 12
    await store.quotas.set_role_limit(GUILD, 2, None, actor_id=MOD)
    assert await limit(roles=(1, 2)) == 8
    assert await store.quotas.role_limits(GUILD) == {1: 8}
    await store.quotas.set_guild_default(GUILD, None, actor_id=MOD)
    assert await limit() == 5


async def test_member_limit_applies_to_the_next_reservation(store: Store) -> None:
    await reserve(store)
    await store.quotas.set_member_limit(GUILD, USER, 1, actor_id=MOD)
    refused = await store.jobs.create_reserved(new_job(), request())
    assert isinstance(refused, Refused)
    assert (refused.refusal, refused.quota.limit, refused.quota.used) == (Refusal.OVER_LIMIT, 1, 1)
    with pytest.raises(ValueError, match="negative"):
        await store.quotas.set_member_limit(GUILD, USER, -1, actor_id=MOD)


async def test_reset_clears_past_uses_only(store: Store, clock: FakeClock) -> None:
    req = request(limit=2)
    await reserve(store, req)
    await reserve(store, req)
    assert isinstance(await store.jobs.create_reserved(new_job(), req), Refused)
    await store.quotas.reset(GUILD, USER, actor_id=MOD, reason="fresh start")  # same clock tick as the uses
    status = await store.quotas.status(GUILD, USER, req)
    assert (status.used, status.next_free_at) == (0, None)
    await reserve(store, req)
    clock.advance(1)
    assert (await store.quotas.status(GUILD, USER, req)).used == 1


async def test_block_wins_over_everything_and_unblock_lifts_it(store: Store) -> None:
    await store.quotas.set_member_limit(GUILD, USER, 50, actor_id=MOD)
    await store.quotas.grant(GUILD, USER, 5, actor_id=MOD)
    await store.quotas.block(GUILD, USER, actor_id=MOD, reason="spam")
    refused = await store.jobs.create_reserved(new_job(), request())
    assert isinstance(refused, Refused)
    assert refused.refusal is Refusal.BLOCKED
    assert refused.quota.block_reason == "spam"
    await store.quotas.unblock(GUILD, USER, actor_id=MOD)
    status = await store.quotas.status(GUILD, USER, request())
    assert (status.blocked, status.block_reason) == (False, None)
    assert isinstance(await store.jobs.create_reserved(new_job(), request()), Reserved)


async def test_grant_adds_videos_for_one_window(store: Store, clock: FakeClock) -> None:
    req = request(limit=1)
    await reserve(store, req)
    await store.quotas.grant(GUILD, USER, 2, actor_id=MOD, reason="contest winner")
    assert (await store.quotas.status(GUILD, USER, req)).remaining == 2
    await reserve(store, req)
    await reserve(store, req)
    refused = await store.jobs.create_reserved(new_job(), req)
    assert isinstance(refused, Refused)
    assert refused.quota.granted == 2
    clock.advance(WINDOW)  # uses and grant have left the window
    status = await store.quotas.status(GUILD, USER, req)
    assert (status.used, status.granted, status.remaining) == (0, 0, 1)
    with pytest.raises(ValueError, match="at least one"):
        await store.quotas.grant(GUILD, USER, 0, actor_id=MOD)


async def test_reset_also_ends_earlier_grants(store: Store) -> None:
    await store.quotas.grant(GUILD, USER, 3, actor_id=MOD)
    await store.quotas.reset(GUILD, USER, actor_id=MOD)
    assert (await store.quotas.status(GUILD, USER, request())).granted == 0


# --- isolation and audit -----------------------------------------------------------------------------------------


async def test_guilds_are_isolated(store: Store) -> None:
    req = request(limit=2)
    await reserve(store, req)
    await reserve(store, req)
    await store.quotas.block(GUILD, USER, actor_id=MOD)
    await store.quotas.set_role_limit(GUILD, 1, 0, actor_id=MOD)
    await store.quotas.set_guild_default(GUILD, 0, actor_id=MOD)
    other = await store.quotas.status(OTHER_GUILD, USER, request(limit=2, roles=(1,)))
    assert (other.used, other.limit, other.blocked, other.active) == (0, 2, False, 0)
    assert isinstance(await store.jobs.create_reserved(new_job(guild_id=OTHER_GUILD), req), Reserved)
    assert all(e.guild_id == OTHER_GUILD for e in await store.quotas.ledger(OTHER_GUILD))
    assert len(await store.quotas.ledger(OTHER_GUILD)) == 1
    assert [r.user_id for r in await store.quotas.usage(OTHER_GUILD, 0, 2e9)] == [USER]
    assert (await store.quotas.usage(OTHER_GUILD, 0, 2e9))[0].started == 1


async def test_members_are_isolated(store: Store) -> None:
    await reserve(store, request(limit=1))
    await store.quotas.block(GUILD, USER, actor_id=MOD)
    status = await store.quotas.status(GUILD, USER + 1, request(limit=1))
    assert (status.used, status.blocked) == (0, False)


async def test_ledger_rows_carry_actor_reason_and_time(store: Store, clock: FakeClock) -> None:
    t0 = clock()
    job = await reserve(store)
    clock.advance(1)
    await store.quotas.set_member_limit(GUILD, USER, 7, actor_id=MOD, reason="trusted")
    await store.quotas.set_role_limit(GUILD, 5, 2, actor_id=MOD, reason="newcomers")
    await store.quotas.set_guild_default(GUILD, 4, actor_id=MOD, reason="budget")
    await store.quotas.grant(GUILD, USER, 1, actor_id=MOD, reason="bug report")
    await store.quotas.block(GUILD, USER, actor_id=MOD, reason="spam")
    await store.quotas.unblock(GUILD, USER, actor_id=MOD, reason="appeal")
    await store.quotas.reset(GUILD, USER, actor_id=MOD, reason="new month")
    assert await store.quotas.refund(job.id, "goodwill", actor_id=MOD)
    rows = await store.quotas.ledger(GUILD)
    assert [(r.kind, r.amount, r.actor_id, r.reason) for r in rows] == [
        (LedgerKind.RESERVE, 1, None, None),
        (LedgerKind.MEMBER_LIMIT, 7, MOD, "trusted"),
        (LedgerKind.ROLE_LIMIT, 2, MOD, "newcomers"),
        (LedgerKind.GUILD_DEFAULT, 4, MOD, "budget"),
        (LedgerKind.GRANT, 1, MOD, "bug report"),
        (LedgerKind.BLOCK, None, MOD, "spam"),
        (LedgerKind.UNBLOCK, None, MOD, "appeal"),
        (LedgerKind.RESET, None, MOD, "new month"),
        (LedgerKind.REFUND, 1, MOD, "goodwill"),
    ]
    assert rows[0].job_id == job.id
    assert rows[0].at == t0
    assert rows[2].role_id == 5
    assert rows[2].user_id is None
    assert all(r.at == t0 + 1 for r in rows[1:])
    assert len(await store.quotas.ledger(GUILD, since=t0 + 1)) == 8
    assert [r.kind for r in await store.quotas.ledger(GUILD, until=t0 + 1)] == [LedgerKind.RESERVE]
    assert len(await store.quotas.ledger(GUILD, user_id=USER)) == 7  # not the role or guild rows
    assert [r.kind for r in await store.quotas.ledger(GUILD, limit=2)] == [LedgerKind.RESET, LedgerKind.REFUND]


async def test_usage_report_per_member(store: Store, clock: FakeClock) -> None:
    t0 = clock()
    delivered = await reserve(store)
    for old, new in [
        (S.QUEUED, S.SUBMITTING),
        (S.SUBMITTING, S.GENERATING),
        (S.GENERATING, S.DOWNLOADING),
        (S.DOWNLOADING, S.DELIVERING),
        (S.DELIVERING, S.DELIVERED),
    ]:
        await store.jobs.transition(delivered.id, old, new)
    failed = await reserve(store)
    await store.jobs.transition(failed.id, S.QUEUED, S.FAILED)
    cancelled = await reserve(store, user_id=USER + 1)
    await store.jobs.transition(cancelled.id, S.QUEUED, S.CANCELLED)
    await reserve(store, user_id=USER + 1)  # still queued
    free = NewJob(GUILD, CHANNEL, USER, "again", 10, "16:9", "m", (REF,), retry_of=failed.id, free=True)
    assert isinstance(await store.jobs.create_reserved(free, request()), Reserved)
    clock.advance(10)
    await reserve(store, user_id=USER + 2)  # after the period

    rows = {r.user_id: r for r in await store.quotas.usage(GUILD, t0, t0 + 10)}
    assert set(rows) == {USER, USER + 1}
    mine = rows[USER]
    assert (mine.started, mine.charged, mine.refunds, mine.net_used) == (3, 2, 1, 1)
    assert (mine.delivered, mine.failed, mine.cancelled, mine.seconds) == (1, 1, 0, 5)
    theirs = rows[USER + 1]
    assert (theirs.started, theirs.refunds, theirs.delivered, theirs.cancelled, theirs.seconds) == (2, 1, 0, 1, 0)
    assert [r.user_id for r in await store.quotas.usage(GUILD, t0, t0 + 10)] == [USER, USER + 1]  # most seconds first

"""The jobs table on a real database (each backend of REELBOT_TEST_BACKENDS): atomic reservation under races,
compare-and-set transitions guarded in Python and by the database's trigger, and the poller's queries."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque

import pytest

from bot.domain.clock import FakeClock
from bot.domain.jobs import ACTIVE, TRANSITIONS, FailureKind, InvalidTransition, Job, JobStatus, Reference
from bot.domain.quotas import Refusal
from bot.storage import JobNotFound, NewJob, QuotaRequest, Refused, Reserved, Store
from tests.pg import RawRefused, RawSql

S = JobStatus
GUILD, CHANNEL, USER = 111, 222, 333
APPROVALS_CHANNEL = 223  # moderators approve every video started there
REF = Reference("https://cdn.example/a.png", "a.png", "image/png", 12_345, 800, 600, attachment_id=9)
ROOMY = QuotaRequest(window_seconds=86_400, fallback_limit=10_000, max_active=10_000)


def new_job(
    user_id: int = USER, *, guild_id: int = GUILD, duration: int = 5, model: str = "m", channel_id: int = CHANNEL
) -> NewJob:
    return NewJob(guild_id, channel_id, user_id, "a cat surfing", duration, "16:9", model, (REF,))


async def make(store: Store, **kw: object) -> Job:
    result = await store.jobs.create_reserved(new_job(**kw), ROOMY)  # type: ignore[arg-type]
    assert isinstance(result, Reserved)
    return result.job


def _path_to(target: JobStatus, start: JobStatus = S.QUEUED) -> list[JobStatus]:
    """The shortest chain of allowed transitions from `start` to `target`."""
    paths = {start: [start]}
    todo = deque([start])
    while todo:
        state = todo.popleft()
        for nxt in sorted(TRANSITIONS[state]):
            if nxt not in paths:
                paths[nxt] = [*paths[state], nxt]
                todo.append(nxt)
    return paths[target]


async def job_in(store: Store, state: JobStatus) -> Job:
    if state is S.AWAITING_APPROVAL:
        await store.teams.set_approvals(GUILD, APPROVALS_CHANNEL, True, actor_id=1)
        job = await make(store, channel_id=APPROVALS_CHANNEL)
        path = [state]
    else:
        job = await make(store)
        path = _path_to(state)
    for old, new in itertools.pairwise(path):
        moved = await store.jobs.transition(job.id, old, new)
        assert moved is not None
        job = moved
    assert job.status is state
    return job


# --- atomic reservation ------------------------------------------------------------------------------------------


async def test_fifty_concurrent_reservations_with_limit_five_give_exactly_five(store: Store) -> None:
    request = QuotaRequest(window_seconds=86_400, fallback_limit=5, max_active=100)
    results = await asyncio.gather(*(store.jobs.create_reserved(new_job(), request) for _ in range(50)))
    reserved = [r for r in results if isinstance(r, Reserved)]
    refused = [r for r in results if isinstance(r, Refused)]
    assert len(reserved) == 5
    assert len(refused) == 45
    assert {r.refusal for r in refused} == {Refusal.OVER_LIMIT}
    assert sorted(r.quota.used for r in reserved) == [1, 2, 3, 4, 5]
    assert len(await store.jobs.list_for_user(GUILD, USER, limit=100)) == 5
    assert len(await store.quotas.ledger(GUILD, user_id=USER)) == 5
    assert (await store.quotas.status(GUILD, USER, request)).remaining == 0


async def test_active_job_limit_holds_under_the_same_race(store: Store) -> None:
    request = QuotaRequest(window_seconds=86_400, fallback_limit=100, max_active=2)
    results = await asyncio.gather(*(store.jobs.create_reserved(new_job(), request) for _ in range(50)))
    reserved = [r for r in results if isinstance(r, Reserved)]
    assert len(reserved) == 2
    assert {r.refusal for r in results if isinstance(r, Refused)} == {Refusal.TOO_MANY_ACTIVE}
    # Finishing one frees exactly one active slot.
    await store.jobs.transition(reserved[0].job.id, S.QUEUED, S.CANCELLED)
    again = await asyncio.gather(*(store.jobs.create_reserved(new_job(), request) for _ in range(10)))
    assert sum(isinstance(r, Reserved) for r in again) == 1


async def test_two_processes_on_one_database_cannot_interleave(store_url: str, clock: FakeClock) -> None:
    # Two Store objects = separate connections (and asyncio locks), as two bot processes would have: only the
    # database stands between them (SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory lock on the member).
    request = QuotaRequest(window_seconds=86_400, fallback_limit=5, max_active=100)
    async with await Store.open(store_url, clock=clock) as one, await Store.open(store_url, clock=clock) as two:
        calls = [s.jobs.create_reserved(new_job(), request) for s in (one, two) for _ in range(25)]
        results = await asyncio.gather(*calls)
    assert sum(isinstance(r, Reserved) for r in results) == 5


async def test_reservation_is_recorded_with_a_fresh_nonce_and_due_now(store: Store, clock: FakeClock) -> None:
    result = await store.jobs.create_reserved(new_job(), ROOMY)
    assert isinstance(result, Reserved)
    job = result.job
    assert job.status is S.QUEUED
    assert job.references == (REF,)
    assert job.created_at == job.updated_at == job.next_poll_at == clock()
    assert 0 < len(job.delivery_nonce) <= 25
    other = await make(store)
    assert other.delivery_nonce != job.delivery_nonce
    assert await store.jobs.get(job.id) == job
    assert result.quota.used == 1
    assert result.quota.active == 1


async def test_refused_reservation_writes_nothing(store: Store) -> None:
    request = QuotaRequest(window_seconds=86_400, fallback_limit=0, max_active=2)
    result = await store.jobs.create_reserved(new_job(), request)
    assert isinstance(result, Refused)
    assert result.refusal is Refusal.OVER_LIMIT
    assert await store.jobs.list_for_user(GUILD, USER) == []
    assert await store.quotas.ledger(GUILD) == []


async def test_free_retry_is_not_charged_but_respects_block_and_active_limit(store: Store) -> None:
    request = QuotaRequest(window_seconds=86_400, fallback_limit=1, max_active=2)
    first = await store.jobs.create_reserved(new_job(), request)
    assert isinstance(first, Reserved)
    await store.jobs.transition(first.job.id, S.QUEUED, S.FAILED, failure_kind=FailureKind.PROVIDER_UNAVAILABLE)
    used_up = await store.jobs.create_reserved(new_job(), request)
    assert isinstance(used_up, Reserved)  # the refund gave the unit back
    free = NewJob(GUILD, CHANNEL, USER, "again", 5, "16:9", "m", (REF,), retry_of=first.job.id, free=True)
    retry = await store.jobs.create_reserved(free, request)
    assert isinstance(retry, Reserved)
    assert retry.job.retry_of == first.job.id
    assert retry.quota.used == 1  # not charged
    assert await store.jobs.is_free(retry.job.id)
    # Failing a free job refunds nothing (there was nothing charged).
    await store.jobs.transition(retry.job.id, S.QUEUED, S.FAILED)
    assert (await store.quotas.status(GUILD, USER, request)).used == 1
    await store.quotas.block(GUILD, USER, actor_id=1)
    blocked = await store.jobs.create_reserved(free, request)
    assert isinstance(blocked, Refused)
    assert blocked.refusal is Refusal.BLOCKED


# --- transitions -------------------------------------------------------------------------------------------------

ALLOWED = [(old, new) for old, nexts in TRANSITIONS.items() for new in sorted(nexts)]
REFUSED = [(old, new) for old, new in itertools.product(JobStatus, JobStatus) if new not in TRANSITIONS[old]]


@pytest.mark.parametrize(("old", "new"), ALLOWED)
async def test_every_allowed_transition_works(store: Store, clock: FakeClock, old: JobStatus, new: JobStatus) -> None:
    job = await job_in(store, old)
    clock.advance(7)
    moved = await store.jobs.transition(job.id, old, new, last_error="note")
    assert moved is not None
    assert moved.status is new
    assert moved.updated_at == clock()
    assert moved.last_error == "note"
    # The end of a job is when it ended: removing a delivered video later keeps the delivery's time.
    assert moved.finished_at == (job.finished_at if job.terminal else clock() if moved.terminal else None)
    assert await store.jobs.get(job.id) == moved


async def test_every_other_transition_is_refused_by_the_repository(store: Store) -> None:
    jobs = {state: await job_in(store, state) for state in JobStatus}
    for old, new in REFUSED:
        with pytest.raises(InvalidTransition):
            await store.jobs.transition(jobs[old].id, old, new)
        assert (await store.jobs.get(jobs[old].id)) == jobs[old]  # untouched


async def test_every_other_transition_is_refused_by_the_database_trigger(store: Store, raw: RawSql) -> None:
    jobs = {state: await job_in(store, state) for state in JobStatus}
    for old, new in REFUSED:
        if old == new:
            continue  # rewriting the same status is not a transition
        with pytest.raises(RawRefused, match="invalid job transition"):
            await raw.execute("UPDATE jobs SET status = ? WHERE id = ?", new.value, jobs[old].id)
    for old, new in ALLOWED:
        job = await job_in(store, old)
        await raw.execute("UPDATE jobs SET status = ? WHERE id = ?", new.value, job.id)
        assert (await store.jobs.get(job.id)).status is new  # type: ignore[union-attr]
    with pytest.raises(RawRefused):
        await raw.execute("UPDATE jobs SET status = 'lost' WHERE id = ?", jobs[S.QUEUED].id)
    with pytest.raises(RawRefused, match="must start queued or awaiting approval"):
        await raw.execute(
            "INSERT INTO jobs (guild_id, channel_id, user_id, prompt, duration, aspect_ratio, model,"
            ' "references", status, created_at, updated_at, delivery_nonce)'
            " VALUES (1, 1, 1, 'p', 5, '16:9', 'm', '[]', 'delivered', 0, 0, 'n')"
        )
    assert all([await store.jobs.get(j.id) == j for j in jobs.values()])


async def test_compare_and_set_loses_when_the_job_moved(store: Store) -> None:
    job = await job_in(store, S.GENERATING)
    # The poller and a Cancel click race: exactly one wins.
    results = await asyncio.gather(
        store.jobs.transition(job.id, S.GENERATING, S.DOWNLOADING, video_url="https://cdn/v.mp4"),
        store.jobs.transition(job.id, S.GENERATING, S.CANCELLED, failure_kind=FailureKind.CANCELLED),
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert (await store.jobs.get(job.id)) == winners[0]
    assert await store.jobs.transition(job.id, S.GENERATING, S.FAILED) is None


async def test_transition_accepts_several_expected_states(store: Store) -> None:
    queued = await job_in(store, S.QUEUED)
    generating = await job_in(store, S.GENERATING)
    for job in (queued, generating):
        moved = await store.jobs.transition(job.id, (S.QUEUED, S.GENERATING), S.CANCELLED)
        assert moved is not None
        assert moved.status is S.CANCELLED
    with pytest.raises(InvalidTransition):  # downloading → cancelled is not allowed, so the whole call is refused
        await store.jobs.transition(queued.id, (S.QUEUED, S.DOWNLOADING), S.CANCELLED)
    assert await store.jobs.transition(10_000, S.QUEUED, S.SUBMITTING) is None


async def test_transition_sets_fields_and_refuses_key_columns(store: Store) -> None:
    job = await job_in(store, S.SUBMITTING)
    moved = await store.jobs.transition(
        job.id, S.SUBMITTING, S.GENERATING, generation_id="gen-1", submitted_at=5.0, submit_attempts=1
    )
    assert moved is not None
    assert (moved.generation_id, moved.submitted_at, moved.submit_attempts) == ("gen-1", 5.0, 1)
    for field in ("id", "user_id", "guild_id", "status", "delivery_nonce", "created_at", "nonsense"):
        with pytest.raises(ValueError, match="cannot be set"):
            await store.jobs.transition(job.id, S.GENERATING, S.DOWNLOADING, **{field: 1})
        with pytest.raises(ValueError, match="cannot be set"):
            await store.jobs.update_fields(job.id, **{field: 1})
    assert (await store.jobs.get(job.id)) == moved


async def test_update_fields_changes_no_status(store: Store, clock: FakeClock) -> None:
    job = await make(store)
    clock.advance(3)
    updated = await store.jobs.update_fields(job.id, thread_id=5, status_message_id=6, poll_errors=2, next_poll_at=9.5)
    assert updated.status is S.QUEUED
    assert (updated.thread_id, updated.status_message_id, updated.poll_errors, updated.next_poll_at) == (5, 6, 2, 9.5)
    assert updated.updated_at == clock()
    new_refs = (Reference("https://cdn.example/b.png", "b.png", "image/png", 1, 300, 300),)
    assert (await store.jobs.update_fields(job.id, references=new_refs)).references == new_refs
    with pytest.raises(JobNotFound):
        await store.jobs.update_fields(999, poll_errors=1)


# --- the poller's queries ----------------------------------------------------------------------------------------


async def test_due_returns_unfinished_jobs_whose_time_has_come(store: Store, clock: FakeClock) -> None:
    t0 = clock()
    a = await make(store)
    b = await make(store)
    c = await make(store)
    done = await job_in(store, S.DELIVERED)
    await store.jobs.update_fields(a.id, next_poll_at=t0 + 30)
    await store.jobs.update_fields(b.id, next_poll_at=t0 + 10)
    await store.jobs.update_fields(c.id, next_poll_at=t0 + 10)
    await store.jobs.update_fields(done.id, next_poll_at=t0)
    assert await store.jobs.due(t0) == []
    assert [j.id for j in await store.jobs.due(t0 + 10)] == [b.id, c.id]
    assert [j.id for j in await store.jobs.due(t0 + 60)] == [b.id, c.id, a.id]
    assert [j.id for j in await store.jobs.due(t0 + 60, limit=1)] == [b.id]
    assert await store.jobs.next_due_at() == t0 + 10
    assert {j.id for j in await store.jobs.unfinished()} == {a.id, b.id, c.id}


async def test_next_due_at_is_none_when_nothing_is_pending(store: Store) -> None:
    assert await store.jobs.next_due_at() is None
    await job_in(store, S.EXPIRED)
    assert await store.jobs.next_due_at() is None
    assert await store.jobs.unfinished() == []


async def test_recent_durations_of_the_same_model_and_duration(store: Store) -> None:
    for took, duration, model in [(60.0, 5, "m"), (90.0, 5, "m"), (300.0, 10, "m"), (10.0, 5, "other")]:
        job = await job_in(store, S.GENERATING)
        await store.jobs.update_fields(job.id, duration=duration, model=model, submitted_at=1000.0)
        await store.jobs.transition(
            job.id, S.GENERATING, S.DOWNLOADING, provider_finished_at=1000.0 + took + job.id / 1000
        )
    await job_in(store, S.GENERATING)  # not finished: no duration yet
    durations = await store.jobs.recent_durations("m", 5)
    assert [round(d) for d in durations] == [90, 60]  # newest first
    assert len(await store.jobs.recent_durations("m", 5, limit=1)) == 1
    assert await store.jobs.recent_durations("m", 7) == []


async def test_queue_position_counts_queued_jobs_in_every_guild(store: Store) -> None:
    a = await make(store)
    b = await make(store, guild_id=GUILD + 1, user_id=USER + 1)
    c = await make(store)
    assert [await store.jobs.queue_position(j.id) for j in (a, b, c)] == [1, 2, 3]
    await store.jobs.transition(a.id, S.QUEUED, S.SUBMITTING)
    assert [await store.jobs.queue_position(j.id) for j in (a, b, c)] == [None, 1, 2]
    assert await store.jobs.queue_position(12345) is None


async def test_list_for_user_is_newest_first_and_per_guild(store: Store) -> None:
    mine = [await make(store) for _ in range(3)]
    await make(store, guild_id=GUILD + 1)  # same member, another guild
    await make(store, user_id=USER + 1)
    assert [j.id for j in await store.jobs.list_for_user(GUILD, USER)] == [j.id for j in reversed(mine)]
    assert len(await store.jobs.list_for_user(GUILD, USER, limit=2)) == 2


async def test_counts_by_status_lists_every_status(store: Store) -> None:
    await make(store)
    await job_in(store, S.DELIVERED)
    await job_in(store, S.DELIVERED)
    counts = await store.jobs.counts_by_status()
    assert set(counts) == set(JobStatus)
    assert counts[S.QUEUED] == 1
    assert counts[S.DELIVERED] == 2
    assert sum(counts[s] for s in ACTIVE) == 1


async def test_jobs_survive_a_restart(store_url: str, clock: FakeClock) -> None:
    async with await Store.open(store_url, clock=clock) as store:
        job = await job_in(store, S.GENERATING)
    async with await Store.open(store_url, clock=clock) as store:
        assert await store.jobs.get(job.id) == job
        assert [j.id for j in await store.jobs.unfinished()] == [job.id]


async def test_cancelled_callers_leave_the_store_consistent_and_usable(store: Store) -> None:
    # The poller's stop() cancels tasks mid-call. Cancel calls at increasingly later points (after k turns of
    # the event loop: waiting for the lock, inside BEGIN, between statements, in COMMIT...). Whatever point each
    # reached, every job must have exactly its reserve row and the connection must not stay inside a transaction.
    for k in range(25):
        task = asyncio.create_task(store.jobs.create_reserved(new_job(), ROOMY))
        for _ in range(k):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert isinstance(await store.jobs.create_reserved(new_job(), ROOMY), Reserved)
    jobs = await store.jobs.list_for_user(GUILD, USER, limit=100)
    ledger = await store.quotas.ledger(GUILD)
    assert sorted(e.job_id for e in ledger if e.job_id is not None) == sorted(j.id for j in jobs)
    assert len(jobs) >= 25


async def test_get_can_be_limited_to_one_guild(store: Store) -> None:
    job = await make(store)
    assert await store.jobs.get(job.id, guild_id=GUILD) == job
    assert await store.jobs.get(job.id, guild_id=GUILD + 1) is None
    assert await store.jobs.get(job.id + 100) is None


async def test_the_quota_returned_with_a_reservation_is_what_a_fresh_read_gives(store: Store, clock: FakeClock) -> None:
    # The status after a reservation is worked out from the one read before the insert; it must match a re-read
    # exactly, with earlier uses, a refund, a grant and a free retry in the mix.
    request = QuotaRequest(window_seconds=3_600, fallback_limit=3, max_active=10)
    first = await store.jobs.create_reserved(new_job(), request)
    assert isinstance(first, Reserved)
    clock.advance(600)
    await store.quotas.grant(GUILD, USER, 2, actor_id=1)
    second = await store.jobs.create_reserved(new_job(), request)
    assert isinstance(second, Reserved)
    await store.jobs.transition(second.job.id, S.QUEUED, S.FAILED, failure_kind=FailureKind.INTERNAL)
    clock.advance(60)
    for free in (False, True, False, False):
        clock.advance(1)
        new = NewJob(GUILD, CHANNEL, USER, "again", 5, "16:9", "m", (REF,), retry_of=first.job.id, free=free)
        result = await store.jobs.create_reserved(new, request)
        assert isinstance(result, Reserved)
        assert result.quota == await store.quotas.status(GUILD, USER, request)


async def test_a_free_retry_skips_the_window_limit_but_not_the_active_limit_or_a_block(store: Store) -> None:
    request = QuotaRequest(window_seconds=3_600, fallback_limit=1, max_active=1)
    first = await store.jobs.create_reserved(new_job(), request)
    assert isinstance(first, Reserved)
    free = NewJob(GUILD, CHANNEL, USER, "again", 5, "16:9", "m", (REF,), retry_of=first.job.id, free=True)

    busy = await store.jobs.create_reserved(free, request)  # the first job is still queued: one at a time
    assert isinstance(busy, Refused)
    assert busy.refusal is Refusal.TOO_MANY_ACTIVE

    await store.jobs.transition(first.job.id, S.QUEUED, S.CANCELLED)  # refunded; the window is free again
    await store.quotas.block(GUILD, USER, actor_id=1, reason="spam")
    blocked = await store.jobs.create_reserved(free, request)
    assert isinstance(blocked, Refused)
    assert blocked.refusal is Refusal.BLOCKED

    await store.quotas.unblock(GUILD, USER, actor_id=1)
    await store.jobs.create_reserved(new_job(), request)  # uses the one unit of the window
    await store.jobs.transition((await store.jobs.list_for_user(GUILD, USER, 1))[0].id, S.QUEUED, S.CANCELLED)
    spent = await store.jobs.create_reserved(new_job(), request)
    assert isinstance(spent, Reserved)  # cancelled jobs are refunded, so this still fits
    await store.jobs.transition(spent.job.id, S.QUEUED, S.SUBMITTING)
    await store.jobs.transition(spent.job.id, S.SUBMITTING, S.GENERATING)
    await store.jobs.transition(spent.job.id, S.GENERATING, S.DOWNLOADING)
    await store.jobs.transition(spent.job.id, S.DOWNLOADING, S.DELIVERING)
    await store.jobs.transition(spent.job.id, S.DELIVERING, S.DELIVERED)
    assert isinstance(await store.jobs.create_reserved(new_job(), request), Refused)  # the window is used up
    assert isinstance(await store.jobs.create_reserved(free, request), Reserved)  # but a free retry fits

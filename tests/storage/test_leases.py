"""Job leases and new-job wake-ups, on each backend of REELBOT_TEST_BACKENDS: which process works on a job, a
dead process's jobs taken over once its lease runs out, concurrent claimers (in two stores, as two processes
would be) never given the same job, and a worker woken when a job is created."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import pytest

from bot.domain.clock import FakeClock
from bot.domain.jobs import Job, JobStatus, Reference
from bot.storage import Lease, NewJob, QuotaRequest, Refused, Reserved, Store
from bot.storage.database import JobSignal
from tests.pg import PostgresCluster

S = JobStatus
LEASE = 30.0
ROOMY = QuotaRequest(window_seconds=86_400, fallback_limit=10_000, max_active=10_000)
REF = Reference("https://cdn.example/a.png", "a.png", "image/png", 1, 400, 400)


async def make(store: Store, user_id: int = 1) -> Job:
    result = await store.jobs.create_reserved(NewJob(7, 8, user_id, "p", 5, "16:9", "m", (REF,)), ROOMY)
    assert isinstance(result, Reserved)
    return result.job


async def test_claim_takes_due_unfinished_free_jobs_most_overdue_first(store: Store, clock: FakeClock) -> None:
    t0 = clock()
    late, later, future, done = [await make(store) for _ in range(4)]
    await store.jobs.update_fields(late.id, next_poll_at=t0 - 20)
    await store.jobs.update_fields(later.id, next_poll_at=t0 - 5)
    await store.jobs.update_fields(future.id, next_poll_at=t0 + 60)
    await store.jobs.transition(done.id, S.QUEUED, S.CANCELLED)

    claimed = await store.jobs.claim_due("worker-a", lease_seconds=LEASE)
    assert [j.id for j in claimed] == [late.id, later.id]
    assert claimed[0] == await store.jobs.get(late.id)  # the job as stored; claiming changes no job field
    assert await store.jobs.lease(late.id) == Lease(late.id, "worker-a", t0 + LEASE)
    assert await store.jobs.lease(future.id) is None
    assert await store.jobs.claim_due("worker-b", lease_seconds=LEASE) == []  # held, or not due yet

    clock.advance(60)  # `future` is due now; the two claimed ones are still due but their lease ran out too
    taken = await store.jobs.claim_due("worker-b", lease_seconds=LEASE, limit=1)
    assert [j.id for j in taken] == [late.id]


async def test_a_lease_that_ran_out_is_taken_over_and_its_old_holder_told(store: Store, clock: FakeClock) -> None:
    job = await make(store)
    [claimed] = await store.jobs.claim_due("dead-worker", lease_seconds=LEASE)
    clock.advance(LEASE - 1)
    assert await store.jobs.expired_leases() == []
    assert await store.jobs.claim_due("worker-b", lease_seconds=LEASE) == []
    clock.advance(1)  # the lease's last instant: it has run out
    assert [j.id for j in await store.jobs.expired_leases()] == [job.id]

    [taken] = await store.jobs.claim_due("worker-b", lease_seconds=LEASE)
    assert taken.id == claimed.id
    assert await store.jobs.lease(job.id) == Lease(job.id, "worker-b", clock() + LEASE)
    assert await store.jobs.expired_leases() == []
    # The old holder wakes up: it can neither renew nor release what is no longer its own.
    assert await store.jobs.renew_lease(job.id, "dead-worker", lease_seconds=LEASE) is False
    assert await store.jobs.release_lease(job.id, "dead-worker") is False
    assert (await store.jobs.lease(job.id)).owner == "worker-b"  # type: ignore[union-attr]


async def test_renew_extends_and_release_frees_at_once(store: Store, clock: FakeClock) -> None:
    job = await make(store)
    await store.jobs.claim_due("w", lease_seconds=LEASE)
    clock.advance(20)
    assert await store.jobs.renew_lease(job.id, "w", lease_seconds=LEASE) is True
    clock.advance(20)  # 40 s after the claim, 20 s after the renewal: still held
    assert await store.jobs.claim_due("other", lease_seconds=LEASE) == []
    assert await store.jobs.release_lease(job.id, "w") is True
    assert await store.jobs.lease(job.id) is None
    assert [j.id for j in await store.jobs.claim_due("other", lease_seconds=LEASE)] == [job.id]
    with pytest.raises(ValueError, match="longer than zero"):
        await store.jobs.renew_lease(job.id, "other", lease_seconds=0)


async def test_a_finished_job_is_never_claimed_or_renewed(store: Store) -> None:
    job = await make(store)
    await store.jobs.claim_due("w", lease_seconds=LEASE)
    await store.jobs.transition(job.id, S.QUEUED, S.CANCELLED)
    assert await store.jobs.renew_lease(job.id, "w", lease_seconds=LEASE) is False
    assert await store.jobs.expired_leases() == []
    assert await store.jobs.release_lease(job.id, "w") is True  # tidying up after itself is still allowed


async def test_lease_columns_move_only_through_the_lease_methods(store: Store) -> None:
    job = await make(store)
    for field in ("lease_owner", "lease_until"):
        with pytest.raises(ValueError, match="cannot be set"):
            await store.jobs.update_fields(job.id, **{field: 1})


async def test_concurrent_claimers_in_two_processes_never_share_a_job(store_url: str, clock: FakeClock) -> None:
    async with await Store.open(store_url, clock=clock) as one, await Store.open(store_url, clock=clock) as two:
        jobs = [await make(one, user_id=i % 5) for i in range(60)]
        claims: dict[str, list[int]] = {}

        async def claimer(store: Store, owner: str) -> None:
            mine = claims.setdefault(owner, [])
            while batch := await store.jobs.claim_due(owner, lease_seconds=LEASE, limit=3):
                mine.extend(j.id for j in batch)

        await asyncio.gather(*(claimer(s, f"{name}-{i}") for name, s in (("one", one), ("two", two)) for i in range(4)))
    times = Counter(job_id for ids in claims.values() for job_id in ids)
    assert sorted(times) == sorted(j.id for j in jobs)  # every job claimed...
    assert set(times.values()) == {1}  # ...by exactly one claimer
    assert sum(1 for ids in claims.values() if ids) >= 2  # the work really was shared


async def wake(signal: JobSignal, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await signal.wait()
            return True
    return False


async def test_a_created_job_wakes_a_listening_worker(store: Store) -> None:
    async with store.jobs.listen_for_new() as created:
        assert await wake(created, 0.05) is False  # nothing yet
        await make(store)
        assert await wake(created, 5) is True
        assert await wake(created, 0.05) is False  # one creation, one wake-up
        refused = await store.jobs.create_reserved(
            NewJob(7, 8, 1, "p", 5, "16:9", "m", (REF,)), QuotaRequest(86_400, 0, 10)
        )
        assert isinstance(refused, Refused)
        assert await wake(created, 0.2) is False  # nothing was created


async def test_postgresql_wakes_workers_of_other_processes(postgres: PostgresCluster, clock: FakeClock) -> None:
    url = postgres.new_database()
    async with await Store.open(url, clock=clock) as gateway, await Store.open(url, clock=clock) as worker:
        signal = worker.jobs.listen_for_new()
        async with signal as created:
            await make(gateway)
            assert await wake(created, 5) is True


async def test_only_the_lease_holder_moves_or_reschedules_a_job(store: Store, clock: FakeClock) -> None:
    job = await make(store)
    await store.jobs.claim_due("paused", lease_seconds=LEASE)
    clock.advance(LEASE)
    await store.jobs.claim_due("alive", lease_seconds=LEASE)  # took it over

    # The paused worker wakes up and tries to go on: nothing changes.
    assert await store.jobs.transition(job.id, JobStatus.QUEUED, JobStatus.SUBMITTING, holder="paused") is None
    await store.jobs.reschedule(job.id, clock() + 999, holder="paused")
    unchanged = await store.jobs.get(job.id)
    assert unchanged is not None
    assert unchanged.status is JobStatus.QUEUED
    assert unchanged.next_poll_at == job.next_poll_at

    moved = await store.jobs.transition(job.id, JobStatus.QUEUED, JobStatus.SUBMITTING, holder="alive")
    assert moved is not None
    assert moved.status is JobStatus.SUBMITTING
    # Without a holder (a member's Cancel through a gateway) the compare-and-set on the status alone decides.
    assert await store.jobs.transition(job.id, JobStatus.QUEUED, JobStatus.CANCELLED) is None


async def test_one_process_claims_a_thread_step_until_it_ends_or_runs_out(store: Store, clock: FakeClock) -> None:
    job = await make(store)
    await store.jobs.update_fields(job.id, status_message_id=555)
    assert await store.jobs.claim_thread(job.id, "a", lease_seconds=LEASE) is True
    assert await store.jobs.claim_thread(job.id, "b", lease_seconds=LEASE) is False
    assert await store.jobs.claim_thread(job.id, "a", lease_seconds=LEASE) is True  # renewed by its holder
    clock.advance(LEASE)
    assert await store.jobs.claim_thread(job.id, "b", lease_seconds=LEASE) is True  # "a" went silent
    await store.jobs.record_thread(job.id, thread_id=555)
    assert await store.jobs.claim_thread(job.id, "a", lease_seconds=LEASE) is False  # nothing left to start


async def test_a_scan_claims_every_thread_step_nobody_else_holds_in_one_go(store: Store, clock: FakeClock) -> None:
    held, free, done, no_card = [await make(store, user_id=u) for u in (1, 2, 3, 4)]
    for job in (held, free, done):
        await store.jobs.update_fields(job.id, status_message_id=500 + job.id)
    await store.jobs.record_thread(done.id, thread_id=500 + done.id)
    assert await store.jobs.claim_thread(held.id, "b", lease_seconds=LEASE) is True

    claimed = await store.jobs.claim_threads("a", lease_seconds=LEASE)
    assert [j.id for j in claimed] == [free.id]  # not b's, not a finished step, not a job without its card yet
    assert claimed[0].status_message_id == 500 + free.id  # the whole row, ready to start the step with
    assert await store.jobs.claim_thread(free.id, "b", lease_seconds=LEASE) is False
    assert [j.id for j in await store.jobs.claim_threads("a", lease_seconds=LEASE)] == [free.id]  # renewed
    clock.advance(LEASE)
    assert [j.id for j in await store.jobs.claim_threads("a", lease_seconds=LEASE)] == [held.id, free.id]
    assert no_card.status_message_id is None


async def test_scans_by_several_processes_at_once_never_claim_a_thread_step_twice(store_url: str) -> None:
    clock = FakeClock(1_000_000.0)
    async with await Store.open(store_url, clock=clock) as first:
        jobs = [await make(first, user_id=u) for u in range(1, 41)]
        for job in jobs:
            await first.jobs.update_fields(job.id, status_message_id=900 + job.id)
        stores = [await Store.open(store_url, clock=clock) for _ in range(3)]
        try:
            found = await asyncio.gather(
                *(s.jobs.claim_threads(f"p{i}", lease_seconds=LEASE) for i, s in enumerate([first, *stores]))
            )
        finally:
            for s in stores:
                await s.close()
    ids = Counter(j.id for claimed in found for j in claimed)
    assert set(ids) == {j.id for j in jobs}
    assert max(ids.values()) == 1

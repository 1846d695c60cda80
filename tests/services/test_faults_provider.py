"""The AI/ML API failing in every way docs/provider.md lists, each driven through the real poller, store, client and
downloader against the simulator (FakeChat stands in for Discord, one fake clock for both sides).

Whatever goes wrong, a member must end up with exactly one of: the video (once), or a plain-words failure and
their unit back. `assert_settled` checks that for every job, plus the quota ledger: one charge per job, one
refund per job that ended without a video, none otherwise.
"""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from bot.domain.jobs import REFUNDED_ON, TERMINAL, FailureKind, Job, JobStatus
from bot.provider.client import AimlClient
from bot.sim.aimlapi import JobScript
from bot.storage import LedgerKind, Store
from tests.fakes import GUILD, KEY, THREAD, Env, FakeChat, make_env

pytestmark = pytest.mark.timeout(60)


async def assert_settled(store: Store, chat: FakeChat | None = None, *, guilds: tuple[int, ...] = (GUILD,)) -> None:
    """Every job is terminal, no video was posted twice, and the ledger balances job by job."""
    jobs: list[Job] = []
    for guild in guilds:
        for user in {e.user_id for e in await store.quotas.ledger(guild) if e.user_id is not None}:
            jobs.extend(await store.jobs.list_for_user(guild, user, limit=100_000))
    assert jobs, "no jobs to check"
    for job in jobs:
        assert job.status in TERMINAL, f"job {job.id} stuck in {job.status}"
    entries = [e for guild in guilds for e in await store.quotas.ledger(guild)]
    reserves = collections.Counter(e.job_id for e in entries if e.kind is LedgerKind.RESERVE)
    refunds = collections.Counter(e.job_id for e in entries if e.kind is LedgerKind.REFUND)
    for job in jobs:
        assert reserves[job.id] == 1, f"job {job.id} charged {reserves[job.id]} times"
        expected = 1 if job.status in REFUNDED_ON else 0
        assert refunds[job.id] == expected, f"job {job.id} ({job.status}) refunded {refunds[job.id]} times"
    if chat is not None:
        nonces = [p.nonce for p in chat.files if p.nonce is not None]
        assert len(nonces) == len(set(nonces)), "a video was posted twice"
        delivered = [j for j in jobs if j.status is JobStatus.DELIVERED]
        assert len(chat.files) <= len(delivered)


def failure_posts(env: Env) -> list[str]:
    return [p.content for p in env.chat.posts_in(THREAD) if p.filename is None]


async def short_timeout_client(env: Env, seconds: float) -> AimlClient:
    session = aiohttp.ClientSession(trust_env=False)
    env.stack.push_async_callback(session.close)
    return AimlClient(session, env.sim.base_url, SecretStr(KEY), timeout=seconds)


# ---------------------------------------------------------------- rate limits


async def test_submit_429_with_retry_after_waits_as_asked_then_submits_once(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        env.sim.script_next(JobScript(submit_status=429, submit_retry_after=42.0))
        poller = env.poller()
        job = await env.new_job()
        await poller.run_once()

        waiting = await env.job(job.id)
        assert waiting.status is JobStatus.QUEUED
        assert waiting.next_poll_at is not None
        # Never earlier than the server asked (jitter only adds).
        assert 42.0 <= waiting.next_poll_at - env.clock.now <= 42.0 * 1.1
        env.clock.advance(41.0)
        await poller.run_once()
        assert env.submits() == 1  # not retried before its time

        done = await env.drive(poller, job.id)
        assert done.status is JobStatus.DELIVERED
        assert len(env.sim.generations) == 1  # one paid job despite two POSTs
        await assert_settled(env.store, env.chat)


async def test_submit_429_without_retry_after_slows_the_pace_and_the_job_goes_back_in_line(tmp_path: Path) -> None:
    # The AI/ML API's documented 429 carries no Retry-After: it says "too fast", which is the pacer's business (it
    # cuts the rate), not a reason to park this one job for a poll interval.
    async with make_env(tmp_path) as env:
        env.sim.script_next(JobScript(submit_status=429))
        poller = env.poller()
        rate_before = poller.pacer.rate
        job = await env.new_job()
        await poller.run_once()

        waiting = await env.job(job.id)
        assert waiting.status is JobStatus.QUEUED
        assert waiting.next_poll_at == env.clock.now  # back in line at once
        assert poller.pacer.limited == 1
        assert poller.pacer.rate < rate_before

        await poller.run_once()  # same instant: its turn comes at the slower pace
        assert env.submits() == 2
        done = await env.drive(poller, job.id)
        assert done.status is JobStatus.DELIVERED
        assert len(env.sim.generations) == 1  # one paid job despite two POSTs
        await assert_settled(env.store, env.chat)


async def test_poll_429_with_retry_after_is_honoured_by_the_job_and_still_delivers_once(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        env.sim.script_next(JobScript(queued_s=5, generating_s=10, poll_faults=(429, 429), poll_retry_after=30.0))
        poller = env.poller()
        job = await env.new_job()
        done = await env.drive(poller, job.id, step=5.0)
        assert done.status is JobStatus.DELIVERED
        assert done.poll_errors == 2
        assert len(env.chat.files) == 1
        assert env.submits() == 1
        await assert_settled(env.store, env.chat)


async def test_poll_429_without_retry_after_is_retried_at_the_slower_pace_and_still_delivers_once(
    tmp_path: Path,
) -> None:
    async with make_env(tmp_path) as env:
        env.sim.script_next(JobScript(queued_s=5, generating_s=10, poll_faults=(429, 429)))
        poller = env.poller()
        job = await env.new_job()
        done = await env.drive(poller, job.id, step=5.0)
        assert done.status is JobStatus.DELIVERED
        assert done.poll_errors == 0  # retried in the same round, in the pacer's next turns
        assert poller.pacer.limited == 2
        assert len(env.chat.files) == 1
        assert env.submits() == 1
        await assert_settled(env.store, env.chat)


# ---------------------------------------------------------------- server errors


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_submit_5xx_is_retried_a_bounded_number_of_times_then_fails_and_refunds(
    tmp_path: Path, status: int
) -> None:
    async with make_env(tmp_path) as env:
        env.sim.script_next(*[JobScript(submit_status=status)] * 3)
        poller = env.poller()
        job = await env.new_job()
        done = await env.drive(poller, job.id, step=30.0)
        assert done.status is JobStatus.FAILED
        assert done.failure_kind is FailureKind.PROVIDER_UNAVAILABLE
        assert env.submits() == 3  # max_submit_attempts, never an endless stream of possibly-paid POSTs
        assert await env.used() == 0
        [message] = failure_posts(env)
        assert "refunded" in message
        await assert_settled(env.store, env.chat)


async def test_one_submit_5xx_then_success_delivers(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        env.sim.script_next(JobScript(submit_status=502))
        poller = env.poller()
        job = await env.new_job()
        done = await env.drive(poller, job.id, step=10.0)
        assert done.status is JobStatus.DELIVERED
        assert env.submits() == 2
        assert len(env.sim.generations) == 1
        await assert_settled(env.store, env.chat)


async def test_poll_5xx_storm_is_ridden_out(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        env.sim.script_next(JobScript(queued_s=5, generating_s=10, poll_faults=(500, 502, 503, 504, 500)))
        poller = env.poller()
        job = await env.new_job()
        done = await env.drive(poller, job.id, step=20.0)
        assert done.status is JobStatus.DELIVERED
        assert len(env.chat.files) == 1
        await assert_settled(env.store, env.chat)


# ---------------------------------------------------------------- timeouts


async def test_submit_timeout_is_never_resubmitted_and_is_refunded(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        env.provider = await short_timeout_client(env, 0.1)
        env.sim.script_next(JobScript(submit_delay_s=0.5))
        poller = env.poller()
        job = await env.new_job()
        done = await env.drive(poller, job.id)
        assert done.status is JobStatus.FAILED
        assert done.failure_kind is FailureKind.SUBMIT_UNCERTAIN
        for _ in range(100):  # the simulator logs the stalled POST only when its handler ends
            if env.submits():
                break
            await asyncio.sleep(0.02)
        assert len(env.sim.generations) == 1  # the provider did make (and bill) it...
        assert env.submits() == 1  # a second POST could have been a second paid video
        assert await env.used() == 0
        await assert_settled(env.store, env.chat)


async def test_poll_timeouts_are_retried_until_the_video_arrives(tmp_path: Path) -> None:
    async with make_env(tmp_path, script=JobScript(queued_s=1, generating_s=2)) as env:
        env.provider = await short_timeout_client(env, 0.2)
        poller = env.poller()
        job = await env.new_job()
        await poller.run_once()
        [generation] = env.sim.generations.values()
        generation.script.poll_delay_s = 1.0  # every poll hangs past the client's timeout...
        env.clock.advance(10)
        await poller.run_once()
        await poller.run_once()
        env.clock.advance(30)
        await poller.run_once()
        assert (await env.job(job.id)).poll_errors >= 1
        generation.script.poll_delay_s = 0.0  # ...until the provider recovers
        done = await env.drive(poller, job.id, step=30.0)
        assert done.status is JobStatus.DELIVERED
        await assert_settled(env.store, env.chat)


# ---------------------------------------------------------------- unreadable and unexpected answers


async def test_malformed_submit_answer_is_treated_as_maybe_submitted(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        env.sim.script_next(JobScript(submit_raw_body="<html>502 Bad Gateway</html>"))
        poller = env.poller()
        job = await env.new_job()
        done = await env.drive(poller, job.id)
        assert done.status is JobStatus.FAILED
        assert done.failure_kind is FailureKind.SUBMIT_UNCERTAIN
        assert env.submits() == 1
        await assert_settled(env.store, env.chat)


@pytest.mark.parametrize("body", ["{not json", "[]", '{"status": 7}', '{"id": "x"}', "null", ""])
async def test_malformed_poll_answers_are_retried_and_the_job_still_finishes(tmp_path: Path, body: str) -> None:
    async with make_env(tmp_path, script=JobScript(queued_s=1, generating_s=2)) as env:
        poller = env.poller()
        job = await env.new_job()
        await poller.run_once()
        [generation] = env.sim.generations.values()
        generation.script.poll_raw_body = body
        env.clock.advance(15)
        await poller.run_once()
        broken = await env.job(job.id)
        assert broken.status is JobStatus.GENERATING
        assert broken.poll_errors == 1
        generation.script.poll_raw_body = None
        done = await env.drive(poller, job.id, step=30.0)
        assert done.status is JobStatus.DELIVERED
        await assert_settled(env.store, env.chat)


async def test_unknown_statuses_keep_the_job_polling_until_it_completes(tmp_path: Path) -> None:
    script = JobScript(queued_s=5, generating_s=20, raw_status_sequence=("warming_up", "rendering", "completed"))
    async with make_env(tmp_path, script=script) as env:
        poller = env.poller()
        job = await env.new_job()
        done = await env.drive(poller, job.id)
        assert done.status is JobStatus.DELIVERED
        assert done.poll_attempts >= 2
        await assert_settled(env.store, env.chat)


async def test_completed_without_a_video_url_fails_and_refunds(tmp_path: Path) -> None:
    async with make_env(tmp_path, script=JobScript(queued_s=1, generating_s=2, completed_without_url=True)) as env:
        poller = env.poller()
        job = await env.new_job()
        done = await env.drive(poller, job.id)
        assert done.status is JobStatus.FAILED
        assert env.chat.files == []
        assert await env.used() == 0
        await assert_settled(env.store, env.chat)


# ---------------------------------------------------------------- jobs that never end, videos that never arrive


async def test_a_job_that_never_finishes_expires_refunds_and_stops_polling(tmp_path: Path) -> None:
    async with make_env(tmp_path, script=JobScript(queued_s=5, generating_s=10**9), job_timeout=600) as env:
        poller = env.poller()
        job = await env.new_job()
        done = await env.drive(poller, job.id, step=20.0)
        assert done.status is JobStatus.EXPIRED
        assert done.failure_kind is FailureKind.TIMEOUT
        assert await env.used() == 0
        [message] = failure_posts(env)
        assert "refunded" in message
        polls = len([r for r in env.sim.requests if r.method == "GET"])
        env.clock.advance(3600)
        await poller.run_once()
        assert len([r for r in env.sim.requests if r.method == "GET"]) == polls
        await assert_settled(env.store, env.chat)


@pytest.mark.parametrize("status", [404, 410, 403])
async def test_video_url_gone_fails_the_download_and_refunds(tmp_path: Path, status: int) -> None:
    async with make_env(tmp_path, script=JobScript(queued_s=1, generating_s=2, video_status=status)) as env:
        poller = env.poller()
        job = await env.new_job()
        done = await env.drive(poller, job.id)
        assert done.status is JobStatus.FAILED
        assert done.failure_kind is FailureKind.DOWNLOAD_FAILED
        assert env.chat.files == []
        [message] = failure_posts(env)
        assert "refunded" in message
        assert await env.used() == 0
        await assert_settled(env.store, env.chat)


async def test_truncated_download_is_retried_and_the_complete_file_is_posted_once(tmp_path: Path) -> None:
    async with make_env(tmp_path, script=JobScript(queued_s=1, generating_s=2, video_size=2 * 1024 * 1024)) as env:
        poller = env.poller()
        job = await env.new_job()
        await poller.run_once()
        [generation] = env.sim.generations.values()
        generation.script.truncate_video = True
        env.clock.advance(15)
        await poller.run_once()
        cut = await env.job(job.id)
        assert cut.status is JobStatus.DOWNLOADING
        assert generation.video_requests == 1
        generation.script.truncate_video = False
        done = await env.drive(poller, job.id, step=30.0)
        assert done.status is JobStatus.DELIVERED
        [post] = env.chat.files
        assert post.data == env.sim.video_bytes(generation.id)  # the whole file, not the cut one
        assert not list((tmp_path / "media").iterdir())
        await assert_settled(env.store, env.chat)


async def test_a_download_that_is_always_cut_ends_as_expired_not_stuck(tmp_path: Path) -> None:
    script = JobScript(queued_s=1, generating_s=2, video_size=1024 * 1024, truncate_video=True)
    async with make_env(tmp_path, script=script, job_timeout=900) as env:
        poller = env.poller()
        job = await env.new_job()
        done = await env.drive(poller, job.id, step=60.0)
        assert done.status is JobStatus.EXPIRED
        assert env.chat.files == []
        assert not list((tmp_path / "media").iterdir())  # no half file left behind
        await assert_settled(env.store, env.chat)


# ---------------------------------------------------------------- many jobs, mixed faults


async def test_a_mixed_bag_of_faults_leaves_every_job_settled(tmp_path: Path) -> None:
    scripts = [
        JobScript(queued_s=2, generating_s=10),
        JobScript(submit_status=429),
        JobScript(queued_s=2, generating_s=10, poll_faults=(503, 429)),
        JobScript(queued_s=2, generating_s=10, outcome="error", error_shape="detail"),
        JobScript(queued_s=2, generating_s=10, video_status=404),
        JobScript(submit_status=400),
        JobScript(submit_status=403),
        JobScript(queued_s=2, generating_s=10, raw_status_sequence=("waiting", "processing", "completed")),
    ]
    async with make_env(tmp_path, job_timeout=900) as env:
        env.sim.script_next(*scripts)
        poller = env.poller()
        jobs = [await env.new_job(f"job {i}", user_id=500 + i) for i in range(len(scripts) + 1)]
        for job in jobs:
            await env.drive(poller, job.id, step=10.0)
        statuses = [(await env.job(j.id)).status for j in jobs]
        assert statuses.count(JobStatus.DELIVERED) == 5  # ok, 429 then ok, poll faults, odd statuses, the extra
        assert len(env.chat.files) == 5
        await assert_settled(env.store, env.chat)

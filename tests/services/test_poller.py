"""The poller end to end on the service side: real store, real client and downloader against the AI/ML API
simulator over loopback, FakeChat for Discord, and one FakeClock shared by the poller and the simulator."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.domain.jobs import JobStatus as S
from bot.domain.quotas import Allowance
from bot.provider.client import AimlClient
from bot.services.poller import Poller
from bot.services.presenter import CardContext
from bot.sim.aimlapi import JobScript
from tests.fakes import CARD, CHANNEL, GUILD, KEY, THREAD, USER, make_env


async def test_happy_path_delivers_the_mp4_once_in_the_thread(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        seen: list[JobStatus] = []

        async def on_change(changed: Job) -> None:
            seen.append(changed.status)

        poller = env.poller(on_change=on_change)
        job = await env.new_job()

        assert await poller.run_once() == 1
        job = await env.job(job.id)
        assert job.status is JobStatus.GENERATING
        assert job.generation_id in env.sim.generations
        assert env.sim.poll_count(job.generation_id) == 0  # not polled the moment it was submitted
        # No history yet: the first poll is one interval after the submit, not at once.
        assert job.submitted_at is not None
        assert job.next_poll_at == pytest.approx(job.submitted_at + 10.0)

        done = await env.drive(poller, job.id)

        assert done.status is JobStatus.DELIVERED
        files = env.chat.files
        assert len(files) == 1
        post = files[0]
        assert post.channel_id == THREAD
        assert job.generation_id is not None
        assert post.data == env.sim.video_bytes(job.generation_id)
        assert post.filename == f"reelbot-{job.id}.mp4"
        assert post.mention_user_id == USER
        assert f"<@{USER}>" in post.content
        assert post.nonce == job.delivery_nonce
        assert done.delivered_message_id == post.message_id
        assert env.submits() == 1
        assert await env.used() == 1  # charged, not refunded
        assert list((tmp_path / "media").iterdir()) == []  # temp file deleted
        # The card followed the job and ended on "delivered".
        assert env.chat.cards[-1][:2] == (CHANNEL, CARD)
        assert "Delivered" in env.chat.cards[-1][2].fields[0][1]
        assert seen == [S.SUBMITTING, S.GENERATING, S.DOWNLOADING, S.DELIVERING, S.DELIVERED]


async def test_first_poll_comes_near_the_median_of_recent_jobs(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        poller = env.poller()
        first = await env.new_job()
        first = await env.drive(poller, first.id, step=5.0)
        assert first.provider_finished_at is not None
        assert first.submitted_at is not None
        took = first.provider_finished_at - first.submitted_at

        second = await env.new_job()
        await poller.run_once()
        second = await env.job(second.id)
        assert second.submitted_at is not None
        assert second.next_poll_at == pytest.approx(second.submitted_at + took)


async def test_provider_error_fails_refunds_and_tells_the_thread(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        env.sim.script_next(
            JobScript(queued_s=1, generating_s=2, outcome="error", error_message="Could not detect a face in image 2")
        )
        poller = env.poller()
        job = await env.new_job()
        assert await env.used() == 1

        done = await env.drive(poller, job.id)

        assert done.status is JobStatus.FAILED
        assert done.failure_kind is FailureKind.REJECTED_CONTENT
        assert await env.used() == 0
        [told] = env.chat.posts_in(THREAD)
        assert "Could not detect a face in image 2" in told.content
        assert "refunded" in told.content
        assert env.chat.files == []
        assert "Failed" in env.chat.cards[-1][2].fields[0][1]


async def test_submit_429_requeues_and_submits_once_later(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        env.sim.script_next(JobScript(submit_status=429, submit_retry_after=30))
        poller = env.poller()
        job = await env.new_job()

        await poller.run_once()
        job = await env.job(job.id)
        assert job.status is JobStatus.QUEUED
        assert job.next_poll_at is not None
        assert job.next_poll_at >= env.clock.now + 30
        assert env.sim.generations == {}

        env.clock.advance(20)
        await poller.run_once()  # still inside retry-after: the provider is left alone
        assert env.submits() == 1

        done = await env.drive(poller, job.id)
        assert done.status is JobStatus.DELIVERED
        assert env.submits() == 2
        assert len(env.sim.generations) == 1  # one paid job
        assert len(env.chat.files) == 1


async def test_transient_poll_errors_still_deliver(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        env.sim.script_next(JobScript(queued_s=1, generating_s=2, poll_faults=(503, 429, 502), poll_retry_after=7))
        poller = env.poller()
        job = await env.new_job()

        done = await env.drive(poller, job.id, step=10.0)

        assert done.status is JobStatus.DELIVERED
        assert done.poll_errors == 3
        assert len(env.chat.files) == 1
        assert await env.used() == 1


async def test_timeout_expires_refunds_and_tells_the_thread(tmp_path: Path) -> None:
    async with make_env(tmp_path, job_timeout=120.0) as env:
        env.sim.script_next(JobScript(queued_s=1, generating_s=10_000))
        poller = env.poller()
        job = await env.new_job()

        done = await env.drive(poller, job.id, step=15.0)

        assert done.status is JobStatus.EXPIRED
        assert done.finished_at is not None
        assert done.finished_at - done.created_at >= 120.0
        assert await env.used() == 0
        [told] = env.chat.posts_in(THREAD)
        assert "not ready in time" in told.content
        assert "refunded" in told.content


async def test_video_over_the_upload_limit_is_posted_as_a_link(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        env.chat.upload_limits[GUILD] = 64 * 1024
        env.sim.script_next(JobScript(queued_s=1, generating_s=2, video_size=512 * 1024))
        poller = env.poller()
        job = await env.new_job()

        done = await env.drive(poller, job.id)

        assert done.status is JobStatus.DELIVERED
        assert env.chat.files == []
        [link] = env.chat.posts_in(THREAD)
        assert done.generation_id is not None
        assert env.sim.video_url(done.generation_id) in link.content
        assert "upload limit" in link.content
        assert link.mention_user_id == USER
        assert done.delivered_message_id == link.message_id
        assert await env.used() == 1
        assert list((tmp_path / "media").iterdir()) == []


async def test_rejected_input_on_submit_fails_with_the_providers_words(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        poller = env.poller()
        job = await env.new_job(duration=7)  # not in the provider's enum: the simulator answers 400

        await poller.run_once()

        done = await env.job(job.id)
        assert done.status is JobStatus.FAILED
        assert done.failure_kind is FailureKind.REJECTED_INPUT
        assert "duration" in (done.last_error or "")
        assert await env.used() == 0
        [told] = env.chat.posts_in(THREAD)
        assert "duration" in told.content


async def test_out_of_credits_tells_member_not_their_fault_and_logs_for_operators(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_env(tmp_path) as env:
        env.sim.script_next(JobScript(submit_status=403))
        poller = env.poller()
        job = await env.new_job()

        with caplog.at_level(logging.DEBUG):
            await poller.run_once()

        done = await env.job(job.id)
        assert done.failure_kind is FailureKind.OUT_OF_CREDITS
        assert await env.used() == 0
        [told] = env.chat.posts_in(THREAD)
        assert "not your fault" in told.content
        assert any(r.levelno == logging.ERROR and "out of credits" in r.getMessage() for r in caplog.records)
        assert KEY not in caplog.text


async def test_unknown_generation_fails_and_refunds(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        poller = env.poller()
        job = await env.new_job()
        await poller.run_once()
        env.sim.generations.clear()  # the provider forgot the job
        env.clock.advance(60)

        done = await env.drive(poller, job.id)

        assert done.status is JobStatus.FAILED
        assert await env.used() == 0
        assert "refunded" in env.chat.posts_in(THREAD)[0].content


async def test_video_gone_from_the_cdn_fails_as_download_failed_and_refunds(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        env.sim.script_next(JobScript(queued_s=1, generating_s=2, video_status=404))
        poller = env.poller()
        job = await env.new_job()

        done = await env.drive(poller, job.id)

        assert done.status is JobStatus.FAILED
        assert done.failure_kind is FailureKind.DOWNLOAD_FAILED
        assert await env.used() == 0
        assert "could not be fetched" in env.chat.posts_in(THREAD)[0].content
        assert list((tmp_path / "media").iterdir()) == []


async def test_card_context_hook_adds_the_quota_line(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:

        async def quota_for(job: Job) -> CardContext:
            return CardContext(allowance=Allowance(used=2, total=5))

        poller = Poller(
            store=env.store,
            provider=env.client,
            downloader=env.downloader,
            chat=env.chat,
            config=env.config,
            clock=env.clock,
            card_context=quota_for,
        )
        env.pollers.append(poller)
        job = await env.new_job()
        await env.drive(poller, job.id)

        fields = dict(env.chat.cards[-1][2].fields)
        assert fields["Your quota"] == "3 of 5 videos left"
        assert "Delivered" in fields["Status"]


async def test_submit_5xx_is_retried_a_bounded_number_of_times(tmp_path: Path) -> None:
    async with make_env(tmp_path, max_submit_attempts=2) as env:
        env.sim.script_next(JobScript(submit_status=503), JobScript(submit_status=500))
        poller = env.poller()
        job = await env.new_job()

        done = await env.drive(poller, job.id, step=30.0)

        assert done.status is JobStatus.FAILED
        assert done.failure_kind is FailureKind.PROVIDER_UNAVAILABLE
        assert env.submits() == 2
        assert await env.used() == 0
        assert "unavailable" in env.chat.posts_in(THREAD)[0].content


async def test_submit_that_times_out_is_never_resubmitted(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        env.sim.script_next(JobScript(submit_delay_s=30.0))
        session = aiohttp.ClientSession(trust_env=False)
        env.stack.push_async_callback(session.close)
        env.provider = AimlClient(session, env.sim.base_url, SecretStr(KEY), timeout=0.2)
        poller = env.poller()
        job = await env.new_job()

        for _ in range(5):
            await poller.run_once()
            env.clock.advance(60)

        done = await env.job(job.id)
        assert done.status is JobStatus.FAILED
        assert done.failure_kind is FailureKind.SUBMIT_UNCERTAIN
        assert await env.used() == 0
        assert len(env.sim.generations) == 0  # the single attempt never completed; no second one was sent
        assert "charging twice" in env.chat.posts_in(THREAD)[0].content


async def test_unreadable_submit_answer_is_treated_as_uncertain(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        env.sim.script_next(JobScript(submit_raw_body="<html>oops</html>"))
        poller = env.poller()
        job = await env.new_job()

        for _ in range(3):
            await poller.run_once()
            env.clock.advance(60)

        done = await env.job(job.id)
        assert done.failure_kind is FailureKind.SUBMIT_UNCERTAIN
        assert env.submits() == 1

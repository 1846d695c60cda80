"""The poller and team channels: a job waiting for approval is never submitted, survives a restart untouched and
expires (refunded) at the job timeout; an approved job gets the whole job timeout from its approval; the credits
the provider reports are stored; the delivered video carries its Delete and Details buttons."""

from __future__ import annotations

from pathlib import Path

from bot.domain.jobs import FailureKind, JobStatus
from bot.services.presenter import Controls
from tests.fakes import CARD, CHANNEL, GUILD, THREAD, make_env

MOD = 99
TIMEOUT = 1800.0


async def test_a_waiting_job_is_never_submitted_and_expires_refunded_at_the_job_timeout(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        await env.store.teams.set_approvals(GUILD, CHANNEL, True, actor_id=MOD)
        job = await env.new_job()
        assert job.status is JobStatus.AWAITING_APPROVAL
        poller = env.poller()
        for _ in range(10):
            await poller.run_once()
            env.clock.advance(TIMEOUT / 10 - 1)
        assert env.submits() == 0
        assert (await env.job(job.id)).status is JobStatus.AWAITING_APPROVAL
        assert await env.used() == 1

        restarted = env.poller()  # a restart in between leaves it waiting with its deadline
        await restarted.recover()
        assert (await env.job(job.id)).next_poll_at == job.created_at + TIMEOUT
        env.clock.advance(10)
        done = await env.drive(restarted, job.id)
        assert (done.status, done.failure_kind) == (JobStatus.EXPIRED, FailureKind.TIMEOUT)
        assert done.finished_at == job.created_at + TIMEOUT  # at its deadline, to the second
        assert env.submits() == 0
        assert await env.used() == 0
        [told] = env.chat.posts_in(THREAD)
        assert "No moderator approved it in time" in told.content
        assert "Not approved in time" in dict(env.chat.cards[-1][2].fields)["Status"]


async def test_an_approved_job_gets_the_whole_timeout_from_its_approval_and_its_cost_is_kept(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        await env.store.teams.set_approvals(GUILD, CHANNEL, True, actor_id=MOD)
        job = await env.new_job()
        env.clock.advance(TIMEOUT - 10)  # approved ten seconds before it would have expired
        approved = await env.store.jobs.transition(
            job.id,
            JobStatus.AWAITING_APPROVAL,
            JobStatus.QUEUED,
            reviewed_by=MOD,
            reviewed_at=env.clock(),
            next_poll_at=env.clock(),
        )
        assert approved is not None
        done = await env.drive(env.poller(), job.id, step=10.0)  # generating takes 25 s, past the old deadline
        assert done.status is JobStatus.DELIVERED
        assert done.credits_used == 1_120_000.0
        assert env.submits() == 1
        [video] = env.chat.files
        assert video.controls == Controls(job.id, ("delete", "details"))
        assert env.chat.cards[-1][1] == CARD

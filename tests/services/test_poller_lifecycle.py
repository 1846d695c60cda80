"""The poller as the bot runs it: `run()` in a task, `wake()` after a new job, `stop()` on shutdown.

These use the wall clock (the loop really sleeps) with simulated jobs of a fraction of a second.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.services.tasks import BackgroundTasks
from bot.sim.aimlapi import JobScript
from tests.fakes import Env, make_env


async def _wait_for_status(env: Env, job_id: int, *statuses: JobStatus, within: float = 10.0) -> Job:
    async def poll() -> Job:
        while True:
            job = await env.job(job_id)
            if job.status in statuses:
                return job
            await asyncio.sleep(0.01)

    return await asyncio.wait_for(poll(), within)


async def test_wake_starts_a_new_job_at_once_and_the_loop_sleeps_only_until_it_is_due(tmp_path: Path) -> None:
    # A 30 s interval: were the job picked up only by the interval, or polled only every interval, the test
    # would time out. wake() and "sleep until next_poll_at" are what deliver it within moments.
    script = JobScript(queued_s=0.0, generating_s=0.05)
    async with make_env(tmp_path, script, real_time=True, poll_interval=30.0, first_poll_default=0.1) as env:
        poller = env.poller()
        runner = asyncio.create_task(poller.run())
        await asyncio.sleep(0.05)  # the loop is now idle, sleeping for the interval

        job = await env.new_job()
        poller.wake()

        done = await _wait_for_status(env, job.id, JobStatus.DELIVERED)
        assert len(env.chat.files) == 1
        assert done.submitted_at is not None

        await asyncio.wait_for(poller.stop(), 10)
        await asyncio.wait_for(runner, 10)


async def test_stop_during_a_hanging_poll_returns_and_leaves_the_job_resumable(tmp_path: Path) -> None:
    script = JobScript(queued_s=0.0, generating_s=0.05, poll_delay_s=60.0)
    async with make_env(tmp_path, script, real_time=True, poll_interval=0.05, first_poll_default=0.05) as env:
        poller = env.poller()
        runner = asyncio.create_task(poller.run())
        job = await env.new_job()
        poller.wake()
        await _wait_for_status(env, job.id, JobStatus.GENERATING)
        while not env.sim.generations or not next(iter(env.sim.generations.values())).polls:
            await asyncio.sleep(0.01)  # the first poll is now hanging at the provider

        await asyncio.wait_for(poller.stop(), 10)
        await asyncio.wait_for(runner, 10)

        job = await env.job(job.id)
        assert job.status is JobStatus.GENERATING
        assert job.generation_id is not None

        # The next process picks it up where it was.
        next(iter(env.sim.generations.values())).script = JobScript(queued_s=0.0, generating_s=0.05)
        restarted = env.poller()
        await restarted.recover()
        done = await env.drive(restarted, job.id, step=0.1)
        assert done.status is JobStatus.DELIVERED
        assert env.submits() == 1


async def test_stop_during_a_hanging_submit_is_settled_as_uncertain_at_the_next_start(tmp_path: Path) -> None:
    hanging = JobScript(queued_s=0.0, generating_s=0.05, submit_delay_s=60.0)
    async with make_env(tmp_path, real_time=True, poll_interval=0.05) as env:
        env.sim.script_next(hanging)  # a second submit would not hang, and would be recorded
        poller = env.poller()
        runner = asyncio.create_task(poller.run())
        job = await env.new_job()
        poller.wake()
        await _wait_for_status(env, job.id, JobStatus.SUBMITTING)

        await asyncio.wait_for(poller.stop(), 10)
        await asyncio.wait_for(runner, 10)
        assert (await env.job(job.id)).status is JobStatus.SUBMITTING

        restarted = env.poller()
        await restarted.recover()
        await restarted.run_once()
        done = await env.job(job.id)
        assert done.status is JobStatus.FAILED
        assert done.failure_kind is FailureKind.SUBMIT_UNCERTAIN
        assert await env.used() == 0
        assert env.submits() == 0  # the hung one is recorded only when it ends; no second one was sent


async def test_background_task_failures_are_logged_with_the_task_name(caplog: pytest.LogCaptureFixture) -> None:
    tasks = BackgroundTasks()

    async def broken() -> None:
        raise RuntimeError("kaput")

    task = tasks.spawn(broken(), name="reelbot-test-task")
    assert len(tasks) == 1  # referenced while it runs
    await asyncio.wait({task})
    await asyncio.sleep(0)  # done callbacks run on the next loop iteration

    assert len(tasks) == 0
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "reelbot-test-task" in record.getMessage()
    assert record.exc_info is not None
    assert "kaput" in str(record.exc_info[1])

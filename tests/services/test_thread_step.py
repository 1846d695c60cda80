"""The thread is a step of the job's pipeline: the poller starts it on the status card, beside the provider work;
nothing is posted for a job before its thread exists; the channel is used only when Discord refuses the thread
for good, and then the message says why. Service side: real store and provider simulator, FakeChat for Discord."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from bot.domain.jobs import FailureKind, JobStatus
from bot.services.delivery import delivery_target
from bot.services.ports import ChatError
from bot.sim.aimlapi import JobScript
from tests.fakes import CARD, CHANNEL, THREAD, FakeChat, make_env


@dataclass
class SlowThreadsChat(FakeChat):
    """Discord with a busy thread bucket: each thread is started only when the test opens the gate."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def start_thread(self, channel_id: int, message_id: int, name: str) -> int:
        await self.gate.wait()
        return await super().start_thread(channel_id, message_id, name)


async def test_the_poller_starts_the_thread_on_the_card_and_the_video_goes_there(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        poller = env.poller()
        job = await env.new_job(thread=None)  # what /video leaves: the card recorded, no thread yet

        await poller.run_once()
        started = await env.job(job.id)
        assert started.thread_id == CARD  # Discord gives a thread started on a message the message's id
        assert env.chat.threads == {CARD: CARD}
        assert env.chat.calls.count("start_thread") == 1

        done = await env.drive(poller, job.id)
        assert done.status is JobStatus.DELIVERED
        [video] = env.chat.files
        assert video.channel_id == CARD
        assert "rather than in a thread" not in video.content
        assert env.chat.calls.count("start_thread") == 1  # once per job, however many rounds


async def test_a_video_ready_before_its_thread_waits_for_it(tmp_path: Path) -> None:
    script = JobScript(queued_s=0.1, generating_s=0.2)
    async with make_env(tmp_path, script=script, real_time=True, poll_interval=0.2) as env:
        env.chat = SlowThreadsChat()
        poller = env.poller()
        job = await env.new_job(thread=None)
        running = asyncio.create_task(poller.run())
        try:
            # The provider work does not wait for the thread: submitted, done, downloaded, then it waits.
            for _ in range(100):
                if (await env.job(job.id)).status is JobStatus.DELIVERING:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            assert (await env.job(job.id)).status is JobStatus.DELIVERING
            assert env.chat.posts == []  # nothing posted while the thread does not exist

            env.chat.gate.set()
            for _ in range(100):
                if (await env.job(job.id)).status is JobStatus.DELIVERED:
                    break
                await asyncio.sleep(0.05)
        finally:
            await poller.stop()
            await running
        assert (await env.job(job.id)).status is JobStatus.DELIVERED
        assert [(p.channel_id, p.filename is not None) for p in env.chat.posts] == [(CARD, True)]
        assert poller.errors == 0  # it waited; it did not try and fail


async def test_delivery_refuses_to_post_for_a_job_whose_thread_is_still_being_started(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        job = await env.new_job(thread=None)
        job = await env.store.jobs.transition(job.id, JobStatus.QUEUED, JobStatus.FAILED)  # any row will do
        assert job is not None
        assert job.thread_pending
        with pytest.raises(ValueError, match="thread is still being started"):
            delivery_target(job)
        assert delivery_target(replace(job, thread_id=THREAD)) == (THREAD, None)
        refused = replace(job, thread_refused="this channel cannot hold threads")
        assert delivery_target(refused) == (CHANNEL, "this channel cannot hold threads")


async def test_a_thread_refused_for_good_sends_the_video_to_the_channel_saying_why(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        env.chat.fail_next("start_thread", ChatError("Missing Permissions", permanent=True, status=403, code=50013))
        poller = env.poller()
        job = await env.new_job(thread=None)
        done = await env.drive(poller, job.id)

        assert done.status is JobStatus.DELIVERED
        assert done.thread_id is None
        assert done.thread_refused == "I am not allowed to start threads in this channel"
        [video] = env.chat.files
        assert video.channel_id == CHANNEL
        assert "rather than in a thread because I am not allowed to start threads in this channel" in video.content
        assert env.chat.calls.count("start_thread") == 1  # refused for good: not asked again


async def test_a_thread_already_started_before_a_restart_is_adopted(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        env.chat.threads[CARD] = CARD  # started, but the bot stopped before recording it
        poller = env.poller()
        job = await env.new_job(thread=None)
        done = await env.drive(poller, job.id)
        assert done.thread_id == CARD
        assert done.thread_refused is None
        assert [p.channel_id for p in env.chat.files] == [CARD]


async def test_transient_thread_failures_are_retried(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        env.chat.fail_next("start_thread", ChatError("502 Bad Gateway", permanent=False, status=502))
        poller = env.poller()
        job = await env.new_job(thread=None)
        done = await env.drive(poller, job.id)
        assert done.thread_id == CARD
        assert env.chat.calls.count("start_thread") == 2
        assert [p.channel_id for p in env.chat.files] == [CARD]


async def test_a_thread_that_keeps_failing_is_given_up_and_the_video_still_arrives(tmp_path: Path) -> None:
    async with make_env(tmp_path, max_thread_attempts=2) as env:
        broken = ChatError("502 Bad Gateway", permanent=False, status=502)
        env.chat.fail_next("start_thread", broken, broken)
        poller = env.poller()
        job = await env.new_job(thread=None)
        done = await env.drive(poller, job.id)
        assert done.status is JobStatus.DELIVERED
        assert done.thread_refused == "Discord kept failing to start a thread"
        [video] = env.chat.files
        assert video.channel_id == CHANNEL
        assert "Discord kept failing to start a thread" in video.content


async def test_a_restart_resumes_a_thread_step_that_was_cut_short(tmp_path: Path) -> None:
    async with make_env(tmp_path, script=JobScript(queued_s=600, generating_s=600)) as env:
        job = await env.new_job(thread=None)
        env.chat = SlowThreadsChat()
        stopping = env.poller()
        stopping.threads.ensure(job)  # waiting for Discord when the bot is stopped
        await asyncio.sleep(0.05)
        await stopping.stop()
        assert (await env.job(job.id)).thread_pending  # stored: still to do

        env.chat = FakeChat()
        restarted = env.poller()
        await restarted.recover()
        await restarted.run_once()
        assert (await env.job(job.id)).thread_id == CARD
        assert env.chat.calls.count("start_thread") == 1


async def test_a_failure_notice_waits_for_the_thread_and_goes_there(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        env.sim.script_next(JobScript(submit_status=400))
        env.chat = SlowThreadsChat()
        poller = env.poller()
        job = await env.new_job(thread=None)
        round_ = asyncio.create_task(poller.run_once())
        await asyncio.sleep(0.3)
        failed = await env.job(job.id)
        assert failed.status is JobStatus.FAILED
        assert failed.failure_kind is FailureKind.REJECTED_INPUT
        assert env.chat.posts == []  # the notice waits for the thread rather than land in the channel
        env.chat.gate.set()
        await round_
        [notice] = env.chat.posts
        assert notice.channel_id == CARD
        assert "refunded" in notice.content


async def test_without_a_card_there_is_no_thread_and_the_video_says_why(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        poller = env.poller()
        job = await env.new_job(thread=None)
        await env.store.jobs.update_fields(job.id, status_message_id=None)  # the answer to /video never arrived
        done = await env.drive(poller, job.id)
        assert done.status is JobStatus.DELIVERED
        assert env.chat.calls.count("start_thread") == 0
        [video] = env.chat.files
        assert video.channel_id == CHANNEL
        assert "its status card could not be posted" in video.content


async def test_the_card_shows_no_expected_time_without_history(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        poller = env.poller()
        job = await env.new_job()
        await poller.run_once()
        assert (await env.job(job.id)).status is JobStatus.GENERATING
        _, _, card = env.chat.cards[-1]
        status = dict(card.fields)["Status"]
        assert status.startswith("🎬 Generating")
        assert "expected" not in status  # no history, no guess


async def test_a_claim_with_no_step_running_is_let_go_so_another_process_starts_the_thread(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        job = await env.new_job(thread=None)
        first, second = env.poller(), env.poller()  # two processes on one store
        # The first claimed the thread step, but no step of its own runs for it (its step had just ended when its
        # scan claimed the job again): a claim held for nothing.
        assert await first.threads._claim(job.id)
        await first.threads.renew_claims()  # its lease upkeep lets that claim go instead of keeping it alive
        env.clock.advance(env.config.lease_seconds)
        await first.threads.renew_claims()

        started = await asyncio.wait_for(second.threads.wait(await env.job(job.id)), timeout=5)
        assert started.thread_id == CARD
        assert env.chat.calls.count("start_thread") == 1


async def test_a_thread_step_another_process_holds_is_left_to_it_and_waited_for_only_when_needed(
    tmp_path: Path,
) -> None:
    async with make_env(tmp_path) as env:
        env.chat = SlowThreadsChat()
        job = await env.new_job(thread=None)
        first, second = env.poller(), env.poller()  # two processes on one store
        doing = first.threads.ensure(job)
        assert doing is not None
        await asyncio.sleep(0.05)  # the first claimed the step and waits for Discord
        reads = env.store.jobs.get
        looked: list[int] = []

        async def counted_get(job_id: int, **kwargs: object) -> object:
            looked.append(job_id)
            return await reads(job_id, **kwargs)  # type: ignore[arg-type]

        env.store.jobs.get = counted_get  # type: ignore[method-assign]
        # Claiming the job for its provider work, the second process finds the step taken: nothing runs for it
        # there, and nothing keeps reading the job's row.
        there = second.threads.ensure(job)
        assert there is not None
        assert await asyncio.wait_for(there, timeout=1) is None
        await asyncio.sleep(0.6)
        assert looked == []
        # Its delivery needs the thread: it waits until the first process has started it.
        waiting = asyncio.create_task(second.threads.wait(job))
        await asyncio.sleep(0.6)
        assert not waiting.done()
        env.chat.gate.set()
        started = await asyncio.wait_for(waiting, timeout=5)
        assert started.thread_id == CARD
        assert (await doing).thread_id == CARD  # type: ignore[union-attr]
        assert env.chat.calls.count("start_thread") == 1

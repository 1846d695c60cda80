"""Start-up recovery and isolation: what a restarted process does with the rows a crash left behind, and
that one job's failure never stops the others."""

from __future__ import annotations

from pathlib import Path

from bot.domain.jobs import FailureKind, JobStatus
from bot.provider.models import Generation, GenerationRequest
from bot.services.ports import ChatError, ProviderPort
from bot.services.presenter import video_message
from bot.sim.aimlapi import JobScript
from tests.fakes import THREAD, make_env


async def test_job_caught_submitting_is_failed_refunded_and_never_resubmitted(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        job = await env.new_job()
        # The previous process wrote `submitting` and died before the provider answered.
        await env.store.jobs.transition(job.id, JobStatus.QUEUED, JobStatus.SUBMITTING, submit_attempts=1)

        poller = env.poller()
        summary = await poller.recover()
        for _ in range(5):
            await poller.run_once()
            env.clock.advance(60)

        done = await env.job(job.id)
        assert summary.failed_uncertain == 1
        assert done.status is JobStatus.FAILED
        assert done.failure_kind is FailureKind.SUBMIT_UNCERTAIN
        assert await env.used() == 0
        assert env.submits() == 0
        [told] = env.chat.posts_in(THREAD)
        assert "restarted" in told.content
        assert "refunded" in told.content


async def test_delivering_job_already_posted_is_marked_delivered_without_a_second_post(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        first = env.poller()
        job = await env.new_job()
        env.chat.fail_next("post_file", ChatError("Discord 503", permanent=False))
        for _ in range(10):
            await first.run_once()
            if (await env.job(job.id)).status is JobStatus.DELIVERING:
                break
            env.clock.advance(10)
        job = await env.job(job.id)
        assert job.status is JobStatus.DELIVERING
        assert env.chat.files == []
        # The crashed process had in fact posted the video (e.g. the answer was lost): the thread shows it.
        posted = env.chat.seed(THREAD, video_message(job))

        restarted = env.poller()
        await restarted.recover()
        await restarted.run_once()

        done = await env.job(job.id)
        assert done.status is JobStatus.DELIVERED
        assert done.delivered_message_id == posted
        assert len(env.chat.posts_in(THREAD)) == 1
        assert list((tmp_path / "media").iterdir()) == []


async def test_delivering_job_not_yet_posted_is_posted_once_after_restart(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        first = env.poller()
        job = await env.new_job()
        env.chat.fail_next("post_file", ChatError("Discord 503", permanent=False))
        for _ in range(10):
            await first.run_once()
            if (await env.job(job.id)).status is JobStatus.DELIVERING:
                break
            env.clock.advance(10)

        restarted = env.poller()
        await restarted.recover()
        await restarted.run_once()

        done = await env.job(job.id)
        assert done.status is JobStatus.DELIVERED
        [post] = env.chat.files
        assert done.generation_id is not None
        assert post.data == env.sim.video_bytes(done.generation_id)


async def test_generating_job_resumes_polling_at_once_after_restart(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        first = env.poller()
        job = await env.new_job()
        await first.run_once()
        env.clock.advance(5)  # the crash happens before the next scheduled poll (10 s after submit)

        restarted = env.poller()
        summary = await restarted.recover()
        assert summary.resumed == 1
        resumed = await env.job(job.id)
        assert resumed.next_poll_at == env.clock.now

        done = await env.drive(restarted, job.id)
        assert done.status is JobStatus.DELIVERED
        assert env.submits() == 1
        assert len(env.chat.files) == 1


async def test_restart_mid_download_downloads_again_and_removes_files_of_finished_jobs(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        media = tmp_path / "media"
        first = env.poller()
        job = await env.new_job()
        await first.run_once()
        env.clock.advance(30)
        # Pretend the provider finished and the process died half way through the download.
        generation = next(iter(env.sim.generations))
        await env.store.jobs.transition(
            job.id,
            JobStatus.GENERATING,
            JobStatus.DOWNLOADING,
            video_url=env.sim.video_url(generation),
            provider_finished_at=env.clock.now,
        )
        media.mkdir()
        (media / f"{job.id}.mp4.part").write_bytes(b"half a vid")
        (media / "999.mp4").write_bytes(b"left over by a job that already ended")

        restarted = env.poller()
        await restarted.recover()
        assert not (media / "999.mp4").exists()
        await restarted.run_once()

        done = await env.job(job.id)
        assert done.status is JobStatus.DELIVERED
        [post] = env.chat.files
        assert post.data == env.sim.video_bytes(generation)
        assert list(media.iterdir()) == []


class _ExplodingPolls:
    """The real client, except that polling one generation hits a bug."""

    def __init__(self, inner: ProviderPort) -> None:
        self.inner = inner
        self.bad: set[str] = set()

    async def submit(self, request: GenerationRequest) -> Generation:
        generation = await self.inner.submit(request)
        if request.prompt == "boom":
            self.bad.add(generation.id)
        return generation

    async def poll(self, generation_id: str) -> Generation:
        if generation_id in self.bad:
            raise RuntimeError("a bug in the poll path")
        return await self.inner.poll(generation_id)


async def test_a_job_whose_handling_raises_does_not_stop_the_others(tmp_path: Path) -> None:
    async with make_env(tmp_path, script=JobScript(queued_s=1, generating_s=2)) as env:
        env.provider = _ExplodingPolls(env.client)
        poller = env.poller(max_internal_errors=3)
        bad = await env.new_job("boom")
        good = await env.new_job("a calm lake at dawn")

        good_done = await env.drive(poller, good.id, step=10.0)
        bad_done = await env.drive(poller, bad.id, step=60.0)

        assert good_done.status is JobStatus.DELIVERED
        assert len(env.chat.files) == 1
        assert bad_done.status is JobStatus.FAILED
        assert bad_done.failure_kind is FailureKind.INTERNAL
        assert poller.errors == 3
        assert await env.used() == 1  # the broken job was refunded, the delivered one was not

"""Delivery: exactly one post per finished video, whatever Discord does in between."""

from __future__ import annotations

from pathlib import Path

from bot.domain.jobs import FailureKind, JobStatus
from bot.services.ports import ChatError
from bot.sim.aimlapi import JobScript
from tests.fakes import CHANNEL, THREAD, USER, make_env

FAST = JobScript(queued_s=1, generating_s=2)


async def test_transient_discord_error_is_retried_and_posts_once(tmp_path: Path) -> None:
    async with make_env(tmp_path, script=FAST) as env:
        env.chat.fail_next("post_file", ChatError("Discord 502", permanent=False, status=502))
        poller = env.poller()
        job = await env.new_job()

        done = await env.drive(poller, job.id)

        assert done.status is JobStatus.DELIVERED
        assert env.chat.calls.count("post_file") == 2
        [post] = env.chat.files
        assert done.delivered_message_id == post.message_id
        assert done.poll_errors == 1


async def test_lost_answer_after_posting_does_not_post_twice(tmp_path: Path) -> None:
    async with make_env(tmp_path, script=FAST) as env:
        env.chat.lose_reply_next("post_file")
        poller = env.poller()
        job = await env.new_job()

        done = await env.drive(poller, job.id)

        assert done.status is JobStatus.DELIVERED
        [post] = env.chat.posts_in(THREAD)
        assert done.delivered_message_id == post.message_id


async def test_deleted_thread_fails_refunds_and_tells_the_member_in_the_channel(tmp_path: Path) -> None:
    async with make_env(tmp_path, script=FAST) as env:
        env.chat.gone_channels.add(THREAD)
        poller = env.poller()
        job = await env.new_job()

        done = await env.drive(poller, job.id)

        assert done.status is JobStatus.FAILED
        assert done.failure_kind is FailureKind.DELIVERY_FAILED
        assert await env.used() == 0
        [told] = env.chat.posts_in(CHANNEL)
        assert f"<@{USER}>" in told.content
        assert "no longer exists" in told.content
        assert "refunded" in told.content
        assert list((tmp_path / "media").iterdir()) == []


async def test_discord_refusing_the_file_as_too_large_gets_a_link_instead(tmp_path: Path) -> None:
    async with make_env(tmp_path, script=FAST) as env:
        env.chat.fail_next("post_file", ChatError("Request entity too large", permanent=True, status=413))
        poller = env.poller()
        job = await env.new_job()

        done = await env.drive(poller, job.id)

        assert done.status is JobStatus.DELIVERED
        assert env.chat.files == []
        [link] = env.chat.posts_in(THREAD)
        assert done.generation_id is not None
        assert env.sim.video_url(done.generation_id) in link.content
        assert done.delivered_message_id == link.message_id


async def test_video_fitting_after_download_but_not_anymore_at_post_time_becomes_a_link(tmp_path: Path) -> None:
    async with make_env(tmp_path, script=FAST) as env:
        env.chat.fail_next("post_file", ChatError("Discord 503", permanent=False))
        poller = env.poller()
        job = await env.new_job()
        for _ in range(10):
            await poller.run_once()
            if (await env.job(job.id)).status is JobStatus.DELIVERING:
                break
            env.clock.advance(10)
        env.chat.default_upload_limit = 100  # the server lost its boost meanwhile

        done = await env.drive(poller, job.id)

        assert done.status is JobStatus.DELIVERED
        assert env.chat.files == []
        assert "upload limit" in env.chat.posts_in(THREAD)[0].content


async def test_card_update_failure_never_fails_the_job(tmp_path: Path) -> None:
    async with make_env(tmp_path, script=FAST) as env:
        env.chat.fail_next("update_card", *[ChatError("Unknown Message", permanent=True, status=404)] * 10)
        poller = env.poller()
        job = await env.new_job()

        done = await env.drive(poller, job.id)

        assert done.status is JobStatus.DELIVERED
        assert len(env.chat.files) == 1

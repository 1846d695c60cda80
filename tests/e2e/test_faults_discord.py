"""Discord failing in the ways docs/discord.md describes, end to end: real discord.py against the Discord
simulator, the real poller and store, the AI/ML API simulator. Whatever fails, the member gets the video exactly
once, or a plain explanation and their unit back; the ledger balances (see `assert_settled`)."""

from __future__ import annotations

import asyncio

import pytest

from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.sim.aimlapi import JobScript
from bot.sim.discord import Perm, SimMessage
from tests import e2e_world
from tests.e2e_world import World
from tests.services.test_faults_provider import assert_settled

pytestmark = pytest.mark.timeout(60)

world = e2e_world.world  # the end-to-end fixture: both simulators and a real bot
POSTS = "/channels/{channel_id}/messages"
SLOW = JobScript(queued_s=0.2, generating_s=1.5)


async def start_job(world: World, script: JobScript = SLOW, **bot_settings: object) -> SimMessage:
    world.aiml.script_next(script)
    if world.bot is None:
        await world.start_bot(**bot_settings)
    card = await (await world.video()).wait_response(timeout=5)
    await world.discord.wait_for(lambda: world.thread_of(card) is not None, timeout=5)
    return card


async def settled(world: World) -> None:
    assert world.bot is not None
    await assert_settled(world.bot.store, guilds=(world.guild.id,))
    channels = [world.channel, *(t.id for t in world.discord.threads(world.channel))]
    files = [m for c in channels for m in world.posts_with_files(c)]
    assert len({m.nonce for m in files if m.nonce}) == len(files), "a video was posted twice"


async def wait_delivered_once(world: World, card: SimMessage) -> SimMessage:
    await world.discord.wait_for(lambda: bool(world.posts_with_files(card.id)), timeout=30)
    assert world.bot is not None
    await world.discord.wait_for(
        lambda: "Delivered" in str(getattr(world.discord.message(card.id), "embeds", "")), timeout=15
    )
    [post] = world.posts_with_files(card.id)
    return post


async def wait_failed(world: World) -> Job:
    """The member's only job, once it has ended without a video."""
    assert world.bot is not None
    store = world.bot.store
    for _ in range(400):
        [job] = await store.jobs.list_for_user(world.guild.id, world.member)
        if job.status in (JobStatus.FAILED, JobStatus.EXPIRED):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job did not fail: {job}")


# ---------------------------------------------------------------- rate limits and server errors


@pytest.mark.parametrize("global_", [False, True], ids=["bucket", "global"])
async def test_429_on_the_delivery_post_is_waited_out_and_the_video_arrives_once(world: World, global_: bool) -> None:
    card = await start_job(world)
    world.discord.inject_fault("POST", POSTS, 429, count=2, retry_after=0.3, global_=global_)
    post = await wait_delivered_once(world, card)
    assert post.mentioned_user_ids == [world.member]
    assert "used **1** of **5**" in await world.quota_text()
    await settled(world)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_on_the_delivery_post_is_retried_and_the_video_arrives_once(world: World, status: int) -> None:
    card = await start_job(world)
    # One failure: discord.py itself sleeps 1 s, 3 s, ... between its retries of 500/502/504 (503 comes back to us).
    world.discord.inject_fault("POST", POSTS, status, count=1)
    await wait_delivered_once(world, card)
    await settled(world)


async def test_5xx_on_status_card_edits_never_stops_the_job(world: World) -> None:
    card = await start_job(world)
    world.discord.inject_fault("PATCH", "/channels/{channel_id}/messages/{message_id}", 503, count=20)
    await world.discord.wait_for(lambda: bool(world.posts_with_files(card.id)), timeout=30)
    assert len(world.posts_with_files(card.id)) == 1
    await settled(world)


# ---------------------------------------------------------------- the thread becomes unusable


@pytest.mark.parametrize(
    ("denied", "label"),
    [(Perm.SEND_MESSAGES_IN_THREADS, "post"), (Perm.ATTACH_FILES, "attach")],
    ids=["no-send-in-threads", "no-attach-files"],
)
async def test_403_missing_permission_fails_refunds_and_tells_the_member_in_the_channel(
    world: World, denied: int, label: str
) -> None:
    card = await start_job(world)
    world.discord.set_bot_permissions(world.channel, allow=None, deny=int(denied))
    job = await wait_failed(world)
    assert job.status is JobStatus.FAILED
    assert job.failure_kind is FailureKind.DELIVERY_FAILED
    assert world.posts_with_files(card.id) == []
    if label == "post":  # the thread is closed to the bot: the parent channel gets the explanation
        told = await world.wait_for_text(world.channel, "did not produce a video")
        assert "refunded" in told.content
        assert told.mentioned_user_ids == [world.member]
    assert "used **0** of **5**" in await world.quota_text()
    await settled(world)


async def test_deleted_thread_fails_refunds_and_tells_the_member_in_the_channel(world: World) -> None:
    card = await start_job(world)
    world.discord.delete_channel(card.id)  # the thread's id is the card's id
    job = await wait_failed(world)
    assert job.status is JobStatus.FAILED
    told = await world.wait_for_text(world.channel, "did not produce a video")
    assert "no longer exists" in told.content
    assert "used **0** of **5**" in await world.quota_text()
    await settled(world)


async def test_archived_thread_is_reopened_by_the_post_and_gets_the_video(world: World) -> None:
    card = await start_job(world)
    world.discord.archive_thread(card.id)
    await wait_delivered_once(world, card)
    thread = world.thread_of(card)
    assert thread is not None
    assert not thread.archived  # Discord unarchives a thread when a message is sent in it
    await settled(world)


async def test_locked_thread_fails_refunds_and_tells_the_member_in_the_channel(world: World) -> None:
    card = await start_job(world)
    world.discord.lock_thread(card.id)  # only Manage Threads may post in a locked thread; the bot lacks it
    job = await wait_failed(world)
    assert job.status is JobStatus.FAILED
    assert world.posts_with_files(card.id) == []
    told = await world.wait_for_text(world.channel, "did not produce a video")
    assert "refunded" in told.content
    await settled(world)


async def test_413_file_too_large_is_answered_with_a_link_once(world: World) -> None:
    card = await start_job(world)
    world.discord.inject_fault("POST", POSTS, 413, count=1, code=40005)
    message = await world.wait_for_text(card.id, "your video is ready", timeout=30)
    assert message.attachments == []
    assert "http://127.0.0.1" in message.content
    await world.discord.wait_for(
        lambda: "Delivered" in str(getattr(world.discord.message(card.id), "embeds", "")), timeout=15
    )
    ready = [m for m in world.discord.messages(card.id) if "your video is ready" in m.content]
    assert len(ready) == 1
    assert "used **1** of **5**" in await world.quota_text()
    await settled(world)

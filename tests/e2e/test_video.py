"""The promises of docs/architecture.md, end to end: real discord.py against the Discord simulator, the real
provider client against the AI/ML API simulator, a real SQLite file and the real poller."""

from __future__ import annotations

import logging

import pytest

from bot.sim.aimlapi import JobScript
from tests.e2e_world import World, image

pytestmark = pytest.mark.timeout(60)

MIB = 1024 * 1024


async def test_accepted_job_gets_card_thread_and_video_mentioning_only_the_requester(world: World) -> None:
    await world.start_bot()
    handle = await world.video(duration=10, aspect_ratio="9:16")
    card = await handle.wait_response(timeout=5)

    # Behaviour 1 and 4: acknowledged at once with a public "thinking…", which then becomes the card; a thread on it.
    assert handle.response_type == 5
    assert handle.acknowledged_at is not None
    assert handle.first_edit_at is not None
    assert handle.acknowledged_at < handle.first_edit_at
    assert not handle.ephemeral
    assert card.channel_id == world.channel
    assert card.embeds
    assert "the fox from image 1" in card.embeds[0]["description"]
    fields = {f["name"]: f["value"] for f in card.embeds[0]["fields"]}
    assert "10 s · 9:16 · 2 reference images" in fields["Options"]
    assert "4 of 5 videos left" in fields["Your quota"]
    await world.discord.wait_for(lambda: world.thread_of(card) is not None, timeout=5)

    await world.discord.wait_for(lambda: bool(world.posts_with_files(card.id)), timeout=20)
    [post] = world.posts_with_files(card.id)
    [generation] = world.aiml.generations
    assert bytes(post.attachments[0].data) == world.aiml.video_bytes(generation)
    assert post.attachments[0].filename.endswith(".mp4")
    assert post.mentioned_user_ids == [world.member]
    assert not post.mention_everyone
    assert not post.mentioned_role_ids

    # The provider got one submit with the member's choices and the two reference URLs.
    [body] = world.aiml.submissions
    assert body["prompt"] == "the fox from image 1 runs through the forest of image 2"
    assert len(body["image_list"]) == 2
    assert str(body["duration"]) == "10"
    assert body["aspect_ratio"] == "9:16"

    await world.discord.wait_for(lambda: "Delivered" in str(world.discord.message(card.id).embeds), timeout=5)
    assert "used **1** of **5**" in await world.quota_text()


@pytest.mark.parametrize(
    ("images", "prompt", "expected"),
    [
        ({"image1": image("cat.gif", content_type="image/gif")}, "a cat", "use a PNG, JPEG or WebP"),
        ({"image1": image("tiny.png", 200, 200)}, "a cat", "at least 300 px"),
        ({"image1": image("strip.png", 3000, 1000)}, "a cat", "between 1:2.5 and 2.5:1"),
        ({"image1": image("huge.png", size=11 * MIB)}, "a cat", "the limit is 10 MiB"),
        ({"image1": image("ok.png")}, " \u200b\u0007 ", "The prompt is empty"),
        ({"image1": image("ok.png")}, "x" * 2600, "the limit is 2500"),
    ],
    ids=["gif", "too-small", "aspect", "too-large", "empty-prompt", "long-prompt"],
)
async def test_invalid_input_is_explained_privately_and_charges_nothing(
    world: World, images: dict[str, object], prompt: str, expected: str
) -> None:
    await world.start_bot()
    handle = await world.video(prompt, images=images)  # type: ignore[arg-type]
    reply = await handle.wait_response(timeout=5)
    assert handle.response_type == 4  # answered privately at once: nothing, not even "thinking…", in public
    assert handle.ephemeral
    assert expected in reply.content
    assert "Nothing was charged" in reply.content
    assert world.aiml.submissions == []
    assert world.discord.threads(world.channel) == []
    assert "used **0** of **5**" in await world.quota_text()


async def test_eight_problems_at_once_are_all_named(world: World) -> None:
    await world.start_bot()
    images = {"image1": image("a.gif", content_type="image/gif"), "image2": image("b.png", 100, 100)}
    reply = await (await world.video("", images=images)).wait_response(timeout=5)
    assert "Image 1 (`a.gif`)" in reply.content
    assert "Image 2 (`b.png`)" in reply.content


async def test_over_quota_is_refused_with_when_the_next_slot_frees(world: World) -> None:
    await world.start_bot(quota_default_limit=1)
    first = await (await world.video()).wait_response(timeout=5)
    assert first.embeds
    handle = await world.video()
    refusal = await handle.wait_response(timeout=5)
    assert handle.ephemeral
    assert "reached your video limit" in refusal.content
    assert "used **1** of **1**" in refusal.content
    assert "next video slot frees <t:" in refusal.content
    await world.discord.wait_for(lambda: len(world.aiml.submissions) >= 1, timeout=10)
    assert len(world.aiml.submissions) == 1


async def test_over_the_active_job_limit_is_refused(world: World) -> None:
    world.aiml.script_next(JobScript(queued_s=5, generating_s=30))
    await world.start_bot(max_active_jobs_per_user=1)
    assert (await (await world.video()).wait_response(timeout=5)).embeds
    handle = await world.video()
    refusal = await handle.wait_response(timeout=5)
    assert handle.ephemeral
    assert "1 videos in progress" in refusal.content or "at once" in refusal.content
    assert "used **1** of **5**" in refusal.content


async def test_provider_failure_is_explained_in_the_thread_and_refunded(world: World) -> None:
    world.aiml.script_next(JobScript(queued_s=0.1, generating_s=0.3, outcome="error", error_message="NSFW content"))
    await world.start_bot()
    card = await (await world.video()).wait_response(timeout=5)
    message = await world.wait_for_text(card.id, "did not produce a video", timeout=20)
    assert "NSFW content" in message.content
    assert "refunded" in message.content
    assert message.mentioned_user_ids == [world.member]
    assert world.posts_with_files(card.id) == []
    assert "used **0** of **5**" in await world.quota_text()


async def test_transient_poll_errors_still_deliver(world: World) -> None:
    world.aiml.script_next(JobScript(queued_s=0.1, generating_s=0.5, poll_faults=(503, 429, 502)))
    await world.start_bot()
    card = await (await world.video()).wait_response(timeout=5)
    await world.discord.wait_for(lambda: bool(world.posts_with_files(card.id)), timeout=30)
    assert len(world.posts_with_files(card.id)) == 1
    assert len(world.aiml.submissions) == 1


async def test_video_over_the_upload_limit_arrives_as_a_link_with_the_reason(world: World) -> None:
    world.aiml.script_next(JobScript(queued_s=0.1, generating_s=0.3, video_size=11 * MIB))
    await world.start_bot()
    card = await (await world.video()).wait_response(timeout=5)
    message = await world.wait_for_text(card.id, "your video is ready", timeout=20)
    assert message.attachments == []
    assert "larger than this server's 10.0 MiB upload limit" in message.content
    assert "http://127.0.0.1" in message.content
    assert message.mentioned_user_ids == [world.member]


async def test_boosted_guild_gets_the_same_video_as_a_file(world: World) -> None:
    world.discord.set_premium_tier(world.guild.id, 2)
    world.aiml.script_next(JobScript(queued_s=0.1, generating_s=0.3, video_size=11 * MIB))
    await world.start_bot()
    card = await (await world.video()).wait_response(timeout=5)
    await world.discord.wait_for(lambda: bool(world.posts_with_files(card.id)), timeout=30)
    [post] = world.posts_with_files(card.id)
    assert post.attachments[0].size == 11 * MIB


async def test_delivery_after_the_interaction_token_expired(world: World) -> None:
    world.aiml.script_next(JobScript(queued_s=0.1, generating_s=1.5))
    await world.start_bot()
    card = await (await world.video()).wait_response(timeout=5)
    world.discord.clock_offset = 3600.0  # an hour later: the interaction token is long dead
    await world.discord.wait_for(lambda: bool(world.posts_with_files(card.id)), timeout=30)
    await world.discord.wait_for(lambda: "Delivered" in str(world.discord.message(card.id).embeds), timeout=10)
    interaction_calls = [r for r in world.discord.requests if "/webhooks/" in r.path and r.started > 0]
    assert all(r.status < 400 for r in interaction_calls)  # nothing relied on the dead token


async def test_command_refused_where_no_thread_can_be_started(world: World) -> None:
    await world.start_bot()
    handle = await world.video(channel_id=world.guild.forum_channel_id)
    reply = await handle.wait_response(timeout=5)
    assert handle.ephemeral
    assert "text channel" in reply.content
    world.discord.set_bot_permissions(world.channel, allow=None, deny=1 << 35)  # Create Public Threads
    handle = await world.video()
    reply = await handle.wait_response(timeout=5)
    assert handle.ephemeral
    assert "Create Public Threads" in reply.content
    assert world.aiml.submissions == []
    assert "used **0** of **5**" in await world.quota_text()


async def test_the_card_keeps_showing_the_members_role_based_allowance_to_the_end(world: World) -> None:
    bot = await world.start_bot()
    everyone = world.guild.id  # the @everyone role has the guild's id; every member has it
    await bot.store.quotas.set_role_limit(world.guild.id, everyone, 20, actor_id=world.guild.moderator_id)
    card = await (await world.video()).wait_response(timeout=5)
    await world.discord.wait_for(lambda: "Delivered" in str(world.discord.message(card.id).embeds), timeout=20)
    final = world.discord.message(card.id)
    assert final is not None
    fields = {f["name"]: f["value"] for f in final.embeds[0]["fields"]}
    assert fields["Your quota"] == "19 of 20 videos left"


async def test_an_unexpected_error_gets_one_friendly_private_line_and_a_reference_in_the_log(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await world.start_bot()

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away at /srv/secret/path")

    bot.intake.quota = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="bot.app"):
        handle = await world.discord.invoke_command("quota", user_id=world.member, channel_id=world.channel)
        reply = await handle.wait_response(timeout=5)
    assert handle.ephemeral
    assert "Something went wrong on the bot's side" in reply.content
    assert "secret" not in reply.content
    reference = reply.content.split("`")[1]
    [record] = [r for r in caplog.records if reference in r.getMessage()]
    assert record.exc_info is not None
    assert "database went away" in str(record.exc_info[1])

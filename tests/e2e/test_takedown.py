"""Delete, Details and the real cost, end to end: the delivered video carries Delete and Details; a moderator who
is not the requester takes it down (the message goes, the job is recorded as removed and stays charged, the
mod-log names the moderator); Details answers privately with how the video was made and what it cost; the usage
report and its CSV carry the credits the provider reported."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from bot.domain.jobs import JobStatus
from bot.sim.discord import SimChannel, SimMessage
from bot.sim.discord.state import ChannelType
from tests.e2e_world import World

pytestmark = pytest.mark.timeout(60)

CREDITS = 1_120_000  # what the AI/ML API simulator reports for a finished video


def current(world: World, message_id: int) -> SimMessage:
    message = world.discord.message(message_id, include_ephemeral=True)
    assert message is not None
    return message


def custom_ids(message: SimMessage) -> list[str]:
    return [c["custom_id"] for row in message.components for c in row.get("components", []) if "custom_id" in c]


async def press(world: World, message: SimMessage, custom_id: str, user_id: int) -> SimMessage:
    handle = await world.discord.click_button(message.id, custom_id, user_id=user_id)
    reply = await handle.wait_response(timeout=5)
    await world.discord.wait_for(lambda: not current(world, reply.id).loading, 5)
    assert handle.ephemeral
    return current(world, reply.id)


async def mod(world: World, subcommand: str, **options: Any) -> SimMessage:
    handle = await world.discord.invoke_command(
        "videomod", subcommand=subcommand, user_id=world.guild.moderator_id, channel_id=world.channel, options=options
    )
    await handle.wait_response(timeout=5)
    await world.discord.wait_for(lambda: any(_answers(world, handle)), 5)
    assert handle.ephemeral
    return _answers(world, handle)[-1]


def _answers(world: World, handle: Any) -> list[SimMessage]:
    found = [world.discord.message(m.id, include_ephemeral=True) for m in [handle.response, *handle.followups] if m]
    return [m for m in found if m is not None and not m.loading]


async def delivered(world: World) -> tuple[SimMessage, SimMessage]:
    """A delivered video: its status card and the message in the thread that holds the file."""
    card = await (await world.video()).wait_response(timeout=5)
    await world.discord.wait_for(lambda: bool(world.posts_with_files(card.id)), timeout=20)
    [video] = world.posts_with_files(card.id)
    await world.discord.wait_for(lambda: "Delivered" in str(current(world, card.id).embeds), timeout=5)
    return card, video


async def test_a_moderator_who_is_not_the_requester_takes_a_video_down(world: World) -> None:
    log_channel = world.guild.id + 700
    channel = SimChannel(log_channel, world.guild.id, ChannelType.GUILD_TEXT, "mod-log", position=5)
    world.guild.channels[log_channel] = channel
    world.discord.channels[log_channel] = channel
    await world.start_bot()
    await mod(world, "modlog", channel=log_channel)
    card, video = await delivered(world)
    assert custom_ids(video) == ["reelbot:delete:1", "reelbot:details:1"]

    bob = world.guild.member_ids[1]  # neither the requester nor a moderator
    refused = await press(world, video, "reelbot:delete:1", bob)
    assert "Only the member who asked for this video, or a moderator" in refused.content
    assert world.discord.message(video.id) is not None

    done = await press(world, video, "reelbot:delete:1", world.guild.moderator_id)
    assert "was deleted" in done.content
    assert world.discord.message(video.id) is None  # the message is gone, file and all
    await world.discord.wait_for(lambda: "removed by moderator" in str(current(world, card.id).embeds), 5)
    assert custom_ids(current(world, card.id)) == ["reelbot:details:1"]
    line = await world.wait_for_text(log_channel, "removed the video of job #1")
    assert f"<@{world.guild.moderator_id}>" in line.content
    await world.wait_for_text(card.id, "was removed by a moderator")
    assert "used **1** of **5**" in await world.quota_text()  # the video was made: not refunded
    assert world.bot is not None
    job = await world.bot.store.jobs.get(1)
    assert job is not None
    assert (job.status, job.removed_by) == (JobStatus.REMOVED, world.guild.moderator_id)


async def test_the_requester_deletes_their_own_video(world: World) -> None:
    await world.start_bot()
    _, video = await delivered(world)
    assert "was deleted" in (await press(world, video, "reelbot:delete:1", world.member)).content
    assert world.discord.message(video.id) is None


async def test_details_answer_privately_with_how_it_was_made_and_what_it_cost(world: World) -> None:
    await world.start_bot()
    card, video = await delivered(world)
    for message in (card, video):
        answer = await press(world, message, "reelbot:details:1", world.guild.member_ids[1])  # anyone may ask
        [embed] = answer.embeds
        assert embed["title"] == "Details of video #1"
        assert "the fox from image 1 runs through the forest of image 2" in embed["description"]
        details = {f["name"]: f["value"] for f in embed["fields"]}
        assert "5 s · 16:9" in details["Options"]
        assert "fox.png (1024×768" in details["Images"]
        assert "forest.png (960×960" in details["Images"]
        assert "not needed" in details["Approval"]
        for step in ("requested", "generating", "generated", "delivered"):
            assert f"{step}: <t:" in details["Timings"]
        assert details["Credits used"].startswith("1,120,000 credits")
        assert f"<@{world.member}>, charged to the member's own quota" in details["Requested by"]


async def test_the_report_shows_credits_per_member_and_in_total(world: World) -> None:
    await world.start_bot()
    await mod(world, "price", usd_per_second=0.1)
    await delivered(world)
    answer = await mod(world, "report")
    assert "1,120,000 credits" in answer.embeds[0]["description"]
    [attachment] = answer.attachments
    rows = {row["user_id"]: row for row in csv.DictReader(io.StringIO(attachment.data.decode()))}
    assert rows[str(world.member)]["credits_used"] == str(CREDITS)
    assert rows["TOTAL"]["credits_used"] == str(CREDITS)
    assert rows["TOTAL"]["estimated_cost_usd"] == "0.50"

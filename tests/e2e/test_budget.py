"""Channel budgets end to end (`/videomod budget`): videos started in the channel draw from its pool, shown on the
card and in `/quota` there; two members racing for the last unit get one video and one refusal; a failed video
gives its unit back to the pool it came from, even after the budget was changed; every draw and refund is a
ledger row naming the pool."""

from __future__ import annotations

import asyncio

import pytest

from bot.sim.aimlapi import JobScript
from bot.sim.discord import SimChannel, SimMessage
from bot.sim.discord.state import ChannelType
from bot.storage import LedgerKind
from tests.e2e_world import World

pytestmark = pytest.mark.timeout(60)

BROKEN = JobScript(submit_status=401)  # the provider refuses the bot's key: the job fails and is refunded
SLOW = JobScript(queued_s=0.2, generating_s=30.0)


def team_channel(world: World) -> int:
    """#creative-team, a second text channel (added before the bot starts, so its guild cache has it)."""
    channel_id = world.guild.id + 600
    channel = SimChannel(channel_id, world.guild.id, ChannelType.GUILD_TEXT, "creative-team", position=5)
    world.guild.channels[channel_id] = channel
    world.discord.channels[channel_id] = channel
    return channel_id


async def quota_in(world: World, channel_id: int, user_id: int | None = None) -> str:
    handle = await world.discord.invoke_command("quota", user_id=user_id or world.member, channel_id=channel_id)
    reply = await handle.wait_response(timeout=5)
    assert handle.ephemeral
    return str(reply.content)


def fields(world: World, card: SimMessage) -> dict[str, str]:
    current = world.discord.message(card.id)
    assert current is not None
    return {f["name"]: f["value"] for f in current.embeds[0]["fields"]}


async def test_videos_in_the_channel_draw_from_its_budget_and_show_it(world: World) -> None:
    team = team_channel(world)
    await world.start_bot()
    reply = await world.mod("budget", channel=team, videos=3, period="month")
    assert f"set the team budget of <#{team}> to 3 videos per month" in reply
    assert "3 of 3 videos left this month; resets on 1 " in reply

    card = await (await world.video(channel_id=team)).wait_response(timeout=5)
    assert fields(world, card)["Team budget"].startswith("2 of 3 videos left this month; resets on 1 ")
    assert "Your quota" not in fields(world, card)
    here = await quota_in(world, team)
    assert "This channel's team budget: **2** of **3** videos left this month" in here
    assert "used **0** of **5**" in here  # the member's own quota, for other channels, is untouched
    assert "used **0** of **5**" in await world.quota_text()  # in #general: their own quota only
    assert "team budget" not in await world.quota_text()

    # Another member draws from the same pool.
    bob = world.guild.member_ids[1]
    await (await world.video(channel_id=team, user_id=bob)).wait_response(timeout=5)
    assert "**1** of **3**" in await quota_in(world, team, bob)
    # The card keeps showing the pool as the job moves on.
    await world.discord.wait_for(lambda: "Delivered" in fields(world, card)["Status"], timeout=20)
    assert fields(world, card)["Team budget"].startswith("1 of 3 videos left")


async def test_two_members_racing_for_the_last_unit_get_one_video_and_one_refusal(world: World) -> None:
    world.aiml.script_next(SLOW, SLOW)
    team = team_channel(world)
    await world.start_bot()
    await world.mod("budget", channel=team, videos=1, period="day")
    alice, bob = world.guild.member_ids
    handles = await asyncio.gather(
        world.video(channel_id=team, user_id=alice), world.video(channel_id=team, user_id=bob)
    )
    replies = [await h.wait_response(timeout=5) for h in handles]
    cards = [r for r, h in zip(replies, handles, strict=True) if not h.ephemeral]
    refusals = [r for r, h in zip(replies, handles, strict=True) if h.ephemeral]
    assert len(cards) == 1
    assert len(refusals) == 1
    assert "This channel's team budget is used up for now." in refusals[0].content
    assert "**0** of **1** videos left today; it resets at 00:00 UTC" in refusals[0].content
    assert "Nothing was charged" in refusals[0].content
    await world.discord.wait_for(lambda: len(world.aiml.submissions) == 1, timeout=10)
    assert world.bot is not None
    draws = await world.bot.store.quotas.ledger(world.guild.id, kinds=[LedgerKind.RESERVE])
    assert len(draws) == 1
    assert draws[0].pool_id is not None


async def test_a_failed_video_gives_the_unit_back_to_its_pool_even_after_the_budget_changed(world: World) -> None:
    world.aiml.script_next(SLOW, BROKEN)
    team = team_channel(world)
    await world.start_bot()
    await world.mod("budget", channel=team, videos=2)
    first = await (await world.video(channel_id=team)).wait_response(timeout=5)
    await world.discord.wait_for(lambda: "Generating" in fields(world, first)["Status"], timeout=10)
    bob = world.guild.member_ids[1]
    assert world.bot is not None
    # The moderators change the pool while a job charged to it is still running; the broken one then fails.
    await world.mod("budget", channel=team, videos=5, period="week")
    second = await (await world.video(channel_id=team, user_id=bob)).wait_response(timeout=5)
    await world.discord.wait_for(lambda: "Failed" in fields(world, second)["Status"], timeout=20)
    assert "**4** of **5** videos left this week" in await quota_in(world, team)  # only the first still counts
    assert "used **0** of **5**" in await world.quota_text(bob)  # bob's own quota was never charged

    # Removed pool: a later refund of a job charged to it still goes back to that pool, not to the member.
    await world.mod("budget", channel=team)
    assert "team budget" not in await quota_in(world, team)
    press = await world.discord.click_button(first.id, "reelbot:cancel:1", user_id=world.member)
    await press.wait_response(timeout=5)
    await world.discord.wait_for(lambda: "Cancelled" in fields(world, first)["Status"], timeout=10)
    refunds = await world.bot.store.quotas.ledger(world.guild.id, kinds=[LedgerKind.REFUND])
    draws = await world.bot.store.quotas.ledger(world.guild.id, kinds=[LedgerKind.RESERVE])
    assert {r.job_id for r in refunds} == {1, 2}
    assert {r.pool_id for r in refunds} == {draws[0].pool_id}
    assert {r.pool_id for r in draws} == {draws[0].pool_id}
    assert "used **0** of **5**" in await world.quota_text()

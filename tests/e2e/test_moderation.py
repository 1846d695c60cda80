"""`/videomod` and `/jobs` end to end: what moderators change shows in the member's `/quota` at once, every
change is an audited ledger row, non-moderators are refused at run time, guilds are isolated, and the mod-log
channel gets every action and every job with working Block and Cancel buttons."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.sim.aimlapi import AimlSimulator, JobScript
from bot.sim.discord import DiscordSimulator, SimChannel, SimGuild, SimMember, SimMessage, SimRole, default_guild
from bot.sim.discord.state import EVERYONE_PERMISSIONS, MODERATOR_PERMISSIONS, ChannelType
from bot.sim.wiring import SIM_KEY, SIM_TOKEN
from bot.storage import LedgerKind
from tests.e2e_world import FAST, World

pytestmark = pytest.mark.timeout(60)

SLOW = JobScript(queued_s=0.2, generating_s=30.0)


def add_text_channel(world: World, channel_id: int, name: str) -> int:
    """A second text channel in the default guild (before the bot starts, so its guild cache has it)."""
    channel = SimChannel(channel_id, world.guild.id, ChannelType.GUILD_TEXT, name, position=5)
    world.guild.channels[channel_id] = channel
    world.discord.channels[channel_id] = channel
    return channel_id


def reply_of(world: World, message_id: int) -> SimMessage:
    message = world.discord.message(message_id, include_ephemeral=True)
    assert message is not None
    return message


async def test_each_change_shows_in_the_members_quota_at_once_and_is_audited(world: World) -> None:
    await world.start_bot()
    alice, moderator = world.member, world.guild.moderator_id

    text = await world.mod("limit", member=alice, videos=2, reason="trial period")
    assert "set <@" in text
    assert "limit to 2" in text
    assert "trial period" in text
    assert "used **0** of **2**" in await world.quota_text()

    assert "**5** of **5** videos left" in await world.mod("grant", member=alice, videos=3)
    await (await world.video()).wait_response(timeout=5)
    assert "used **1** of **5**" in await world.quota_text()  # the limit of 2 plus the 3 granted
    assert "3 granted by a moderator" in await world.quota_text()
    await world.mod("reset", member=alice, reason="new sprint")  # which also ends the grant
    assert "used **0** of **2**" in await world.quota_text()

    await world.mod("clear", member=alice)
    assert "used **0** of **5**" in await world.quota_text()
    await world.mod("default", videos=1)
    assert "used **0** of **1**" in await world.quota_text()
    world.discord.give_role(alice, world.guild.moderator_role_id)
    await world.mod("role-limit", role=world.guild.moderator_role_id, videos=9)
    assert "used **0** of **9**" in await world.quota_text()
    await world.mod("role-limit", role=world.guild.moderator_role_id)
    await world.mod("default")
    assert "used **0** of **5**" in await world.quota_text()

    # Every moderator action is a ledger row with the moderator and the reason.
    assert world.bot is not None
    rows = [r for r in await world.bot.store.quotas.ledger(world.guild.id) if r.actor_id is not None]
    assert [r.kind for r in rows] == [
        LedgerKind.MEMBER_LIMIT,
        LedgerKind.GRANT,
        LedgerKind.RESET,
        LedgerKind.MEMBER_LIMIT,
        LedgerKind.GUILD_DEFAULT,
        LedgerKind.ROLE_LIMIT,
        LedgerKind.ROLE_LIMIT,
        LedgerKind.GUILD_DEFAULT,
    ]
    assert {r.actor_id for r in rows} == {moderator}
    assert rows[0].reason == "trial period"
    assert rows[2].reason == "new sprint"
    check = await world.mod("check", member=alice)
    assert "member_limit" in check
    assert "new sprint" in check


async def test_block_tells_the_member_why_and_unblock_lifts_it(world: World) -> None:
    await world.start_bot()
    text = await world.mod("block", member=world.member, reason="spamming the channel")
    assert "blocked" in text
    reply = await (await world.video()).wait_response(timeout=5)
    assert "cannot start videos" in reply.content
    assert "spamming the channel" in reply.content
    assert world.aiml.submissions == []
    await world.mod("unblock", member=world.member)
    card = await (await world.video()).wait_response(timeout=5)
    assert card.embeds


async def test_non_moderators_are_refused_at_run_time_and_a_moderator_role_passes(world: World) -> None:
    helper_role = world.guild.id + 500  # a role without Manage Server
    world.guild.roles[helper_role] = SimRole(helper_role, "Helpers", EVERYONE_PERMISSIONS, position=1)
    await world.start_bot()
    # A server admin opened the command to everyone in Integrations: Discord now lets anyone reach it.
    for command in world.discord.guild_commands[world.guild.id]:
        if command["name"] == "videomod":
            assert str(command["default_member_permissions"]) == str(1 << 5)  # Manage Server
            command["default_member_permissions"] = None
    bob = world.guild.member_ids[1]
    text = await world.mod("limit", user_id=bob, member=bob, videos=100)
    assert "Only moderators" in text
    assert "used **0** of **5**" in await world.quota_text(bob)
    assert world.bot is not None
    assert [r for r in await world.bot.store.quotas.ledger(world.guild.id) if r.actor_id == bob] == []

    # A role set with /videomod modrole passes the run-time check.
    await world.mod("modrole", role=helper_role)
    world.discord.give_role(bob, helper_role)
    text = await world.mod("grant", user_id=bob, member=world.member, videos=1)
    assert "granted" in text


async def test_pause_and_channels_refuse_before_charging(world: World) -> None:
    other = add_text_channel(world, world.guild.id + 600, "videos")
    await world.start_bot()
    await world.mod("pause", reason="budget reached")
    reply = await (await world.video()).wait_response(timeout=5)
    assert "paused" in reply.content
    assert "Nothing was charged" in reply.content
    await world.mod("resume")

    text = await world.mod("channels allow", channel=other)
    assert f"<#{other}>" in text
    reply = await (await world.video()).wait_response(timeout=5)
    assert "cannot be started in this channel" in reply.content
    assert f"<#{other}>" in reply.content
    assert world.aiml.submissions == []
    assert "used **0** of **5**" in await world.quota_text()
    card = await (await world.video(channel_id=other)).wait_response(timeout=5)
    assert card.embeds
    assert f"<#{other}>" in await world.mod("channels list")
    await world.mod("channels disallow", channel=other)
    assert "every channel" in await world.mod("channels list")


async def test_report_answers_who_spent_what_with_a_csv(world: World) -> None:
    await world.start_bot()
    bob = world.guild.member_ids[1]
    await world.mod("price", usd_per_second=0.1)
    world.aiml.script_next(FAST, JobScript(submit_status=401))
    first = await (await world.video(duration=10)).wait_response(timeout=5)
    await world.discord.wait_for(lambda: "Delivered" in str(reply_of(world, first.id).embeds), timeout=20)
    second = await (await world.video(user_id=bob)).wait_response(timeout=5)
    await world.discord.wait_for(lambda: "Failed" in str(reply_of(world, second.id).embeds), timeout=20)

    handle = await world.discord.invoke_command(
        "videomod", subcommand="report", user_id=world.guild.moderator_id, channel_id=world.channel, options={}
    )
    await handle.wait_response(timeout=5)
    await world.discord.wait_for(lambda: _report_message(world, handle) is not None, 5)
    answer = _report_message(world, handle)
    assert answer is not None
    assert handle.ephemeral
    description = answer.embeds[0]["description"]
    assert "**2** videos started by **2** member(s)" in description
    assert "$1.00" in description  # 10 s delivered at $0.10
    [attachment] = answer.attachments
    rows = list(csv.DictReader(io.StringIO(attachment.data.decode())))
    by_user = {row["user_id"]: row for row in rows}
    assert by_user[str(world.member)]["seconds_delivered"] == "10"
    assert by_user[str(world.member)]["estimated_cost_usd"] == "1.00"
    assert by_user[str(bob)]["failed"] == "1"
    assert by_user[str(bob)]["refunds"] == "1"
    assert by_user["TOTAL"]["videos_started"] == "2"


async def test_modlog_gets_actions_and_jobs_with_block_and_cancel(world: World) -> None:
    log_channel = add_text_channel(world, world.guild.id + 700, "mod-log")
    world.aiml.script_next(SLOW)
    await world.start_bot()
    await world.mod("modlog", channel=log_channel)
    await world.mod("limit", member=world.member, videos=4, reason="event week")
    line = await world.wait_for_text(log_channel, "limit to 4")
    assert "event week" in line.content
    assert f"<@{world.guild.moderator_id}>" in line.content

    await (await world.video()).wait_response(timeout=5)
    await world.discord.wait_for(lambda: any(m.embeds for m in world.discord.messages(log_channel)), timeout=5)
    [entry] = [m for m in world.discord.messages(log_channel) if m.embeds]
    assert entry.embeds[0]["title"] == "Job #1"
    assert "the fox from image 1" in entry.embeds[0]["description"]
    assert entry.embeds[0]["thumbnail"]["url"]
    ids = [c["custom_id"] for row in entry.components for c in row["components"]]
    assert ids == ["reelbot:block:1", "reelbot:cancel:1"]

    # Only moderators may press them.
    refused = await world.discord.click_button(entry.id, "reelbot:block:1", user_id=world.guild.member_ids[1])
    assert "Only moderators" in (await refused.wait_response(timeout=5)).content
    handle = await world.discord.click_button(entry.id, "reelbot:cancel:1", user_id=world.guild.moderator_id)
    await handle.wait_response(timeout=5)
    await world.discord.wait_for(lambda: "cancelled" in str(reply_of(world, entry.id).embeds), timeout=5)
    assert [c["custom_id"] for row in reply_of(world, entry.id).components for c in row["components"]] == [
        "reelbot:block:1"
    ]
    handle = await world.discord.click_button(entry.id, "reelbot:block:1", user_id=world.guild.moderator_id)
    await handle.wait_response(timeout=5)
    await world.discord.wait_for(lambda: "blocked" in (handle.response.content if handle.response else ""), 5)
    assert "A moderator has blocked you" in await world.quota_text()


async def test_jobs_lists_own_jobs_with_threads_and_quota(world: World) -> None:
    await world.start_bot()
    card = await (await world.video()).wait_response(timeout=5)
    await world.discord.wait_for(lambda: world.thread_of(card) is not None, timeout=5)
    await world.video(user_id=world.guild.member_ids[1], prompt="bob's own video of image 1")
    await world.discord.wait_for(lambda: len(world.aiml.submissions) == 2, timeout=10)
    handle = await world.discord.invoke_command("jobs", user_id=world.member, channel_id=world.channel)
    text = (await handle.wait_response(timeout=5)).content
    assert handle.ephemeral
    assert "**#1**" in text
    assert f"<#{card.id}>" in text  # the thread (its id is the card's)
    assert "bob's" not in text
    assert "used **1** of **5**" in text


# ---------------------------------------------------------------------- two guilds


def second_guild(first: SimGuild) -> SimGuild:
    """Another server that shares alice with the first; its own owner, moderator, channel and ids."""
    gid = first.id + 10_000
    text_id, mod_role = gid + 10, gid + 20
    alice = first.members[first.member_ids[0]].user
    owner = first.members[first.owner_id].user
    from bot.sim.discord import SimUser

    moderator2 = SimUser(gid + 101, "mod2", global_name="Other Moderator")
    return SimGuild(
        id=gid,
        name="Other Guild",
        owner_id=owner.id,
        roles={
            gid: SimRole(gid, "@everyone", EVERYONE_PERMISSIONS),
            mod_role: SimRole(mod_role, "Moderator", MODERATOR_PERMISSIONS, position=2),
        },
        channels={text_id: SimChannel(text_id, gid, ChannelType.GUILD_TEXT, "general")},
        members={
            owner.id: SimMember(owner),
            moderator2.id: SimMember(moderator2, roles=[mod_role]),
            alice.id: SimMember(alice),
        },
        text_channel_id=text_id,
        moderator_id=moderator2.id,
        moderator_role_id=mod_role,
        member_ids=[alice.id],
    )


@pytest.fixture
async def two_guilds(tmp_path: Path) -> AsyncIterator[tuple[World, SimGuild]]:
    first = default_guild()
    other = second_guild(first)
    discord_sim = DiscordSimulator(token=SIM_TOKEN, guilds=[first, other])
    aiml = AimlSimulator(key=SIM_KEY, default_script=SLOW)
    await discord_sim.start()
    await aiml.start()
    w = World(discord=discord_sim, aiml=aiml, tmp=tmp_path, overrides={"dev_guild_id": None})
    try:
        yield w, other
    finally:
        await w.stop_bot()
        await aiml.stop()
        await discord_sim.stop()


async def test_guilds_are_isolated(two_guilds: tuple[World, SimGuild]) -> None:
    world, other = two_guilds
    await world.start_bot()
    alice = world.member
    card = await (await world.video()).wait_response(timeout=5)

    # The other server's moderator limits and blocks alice there: nothing changes here.
    async def other_mod(subcommand: str, **options: Any) -> str:
        handle = await world.discord.invoke_command(
            "videomod",
            subcommand=subcommand,
            user_id=other.moderator_id,
            channel_id=other.text_channel_id,
            options=options,
        )
        await handle.wait_response(timeout=5)
        await world.discord.wait_for(lambda: not reply_of(world, handle.response.id).loading, 5)  # type: ignore[union-attr]
        return str(reply_of(world, handle.response.id).content)  # type: ignore[union-attr]

    await other_mod("limit", member=alice, videos=0)
    await other_mod("block", member=alice, reason="other server only")
    await other_mod("pause")
    assert "used **1** of **5**" in await world.quota_text()
    assert "blocked" not in await world.quota_text()
    assert "**0** videos started" in (await _report_text(world, other))

    # A Cancel for this server's job, pressed in the other server (a crafted custom id), finds nothing.
    assert world.bot is not None
    from bot.services.card_controls import Actor

    result = await world.bot.card_controls.cancel(other.id, 1, Actor(other.moderator_id, is_moderator=True))
    assert result.outcome.value == "not_found"
    assert "Cancelled" not in str(reply_of(world, card.id).embeds)


async def _report_text(world: World, guild: SimGuild) -> str:
    handle = await world.discord.invoke_command(
        "videomod", subcommand="report", user_id=guild.moderator_id, channel_id=guild.text_channel_id, options={}
    )
    await handle.wait_response(timeout=5)
    await world.discord.wait_for(lambda: bool(_report_message(world, handle)), 5)
    return str(_report_message(world, handle).embeds[0]["description"])  # type: ignore[union-attr]


def _report_message(world: World, handle: Any) -> SimMessage | None:
    for message in [handle.response, *handle.followups]:
        current = world.discord.message(message.id, include_ephemeral=True) if message else None
        if current is not None and current.embeds:
            return current
    return None

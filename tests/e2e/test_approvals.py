"""Approvals end to end (`/videomod approvals`): a new video in the channel is charged and waits on its card with
Approve and Reject; nothing reaches the provider before Approve; only moderators may press them; Reject asks for a
reason and refunds; an approval clicked after a restart works; a video nobody approves expires, refunded."""

from __future__ import annotations

import pytest

from bot.domain.jobs import JobStatus
from bot.sim.discord import SimChannel, SimMessage
from bot.sim.discord.state import ChannelType
from tests.e2e_world import World

pytestmark = pytest.mark.timeout(60)


def current(world: World, message_id: int) -> SimMessage:
    message = world.discord.message(message_id, include_ephemeral=True)
    assert message is not None
    return message


def status_of(world: World, card: SimMessage) -> str:
    return str({f["name"]: f["value"] for f in current(world, card.id).embeds[0]["fields"]}["Status"])


def custom_ids(message: SimMessage) -> list[str]:
    return [c["custom_id"] for row in message.components for c in row.get("components", []) if "custom_id" in c]


async def press(world: World, message: SimMessage, custom_id: str, user_id: int) -> str:
    handle = await world.discord.click_button(message.id, custom_id, user_id=user_id)
    reply = await handle.wait_response(timeout=5)
    await world.discord.wait_for(lambda: not current(world, reply.id).loading, 5)
    assert handle.ephemeral
    return str(current(world, reply.id).content)


async def waiting_card(world: World) -> SimMessage:
    await world.mod("approvals", channel=world.channel, enabled=True)
    card = await (await world.video()).wait_response(timeout=5)
    await world.discord.wait_for(lambda: world.thread_of(card) is not None, timeout=5)
    return card


async def test_nothing_is_made_before_a_moderator_approves_it(world: World) -> None:
    await world.start_bot()
    text = await world.mod("approvals", channel=world.channel, enabled=True)
    assert "now wait for a moderator's Approve" in text
    card = await (await world.video()).wait_response(timeout=5)
    assert "Waiting for a moderator to approve it" in status_of(world, card)
    assert custom_ids(card) == ["reelbot:approve:1", "reelbot:reject:1", "reelbot:cancel:1", "reelbot:details:1"]
    assert "used **1** of **5**" in await world.quota_text()  # charged when asked
    assert world.bot is not None
    for _ in range(3):
        await world.bot.poller.run_once()
    assert world.aiml.submissions == []

    # The member (and anyone else who is not a moderator) cannot approve it.
    assert "Only moderators can approve" in await press(world, card, "reelbot:approve:1", world.member)
    assert world.aiml.submissions == []

    assert "Approved" in await press(world, card, "reelbot:approve:1", world.guild.moderator_id)
    await world.discord.wait_for(lambda: bool(world.posts_with_files(card.id)), timeout=20)
    assert len(world.aiml.submissions) == 1
    await world.wait_for_text(card.id, "A moderator approved job #1")
    assert "used **1** of **5**" in await world.quota_text()
    assert "reelbot:approve:1" not in custom_ids(current(world, card.id))
    job = await world.bot.store.jobs.get(1)
    assert job is not None
    assert job.reviewed_by == world.guild.moderator_id


async def test_reject_asks_for_a_reason_refunds_and_tells_the_member(world: World) -> None:
    await world.start_bot()
    card = await waiting_card(world)
    opened = await world.discord.click_button(card.id, "reelbot:reject:1", user_id=world.guild.moderator_id)
    await opened.wait_ack(timeout=5)
    assert opened.modal is not None
    submitted = await world.discord.submit_modal(
        "reelbot:reject-modal:1", {"reason": "colours off brand"}, user_id=world.guild.moderator_id
    )
    await submitted.wait_response(timeout=5)
    await world.discord.wait_for(lambda: "Rejected by a moderator" in status_of(world, card), timeout=5)
    assert "colours off brand" in status_of(world, card)
    assert custom_ids(current(world, card.id)) == ["reelbot:retry:1", "reelbot:details:1"]
    told = await world.wait_for_text(card.id, "A moderator rejected it")
    assert "colours off brand" in told.content
    assert "refunded" in told.content
    assert "used **0** of **5**" in await world.quota_text()
    assert world.aiml.submissions == []


async def test_an_approval_clicked_after_a_restart_works(world: World) -> None:
    await world.start_bot()
    card = await waiting_card(world)
    await world.stop_bot()
    await world.start_bot()
    assert world.aiml.submissions == []  # the restart's recovery leaves a waiting job waiting
    assert "Approved" in await press(world, card, "reelbot:approve:1", world.guild.moderator_id)
    await world.discord.wait_for(lambda: bool(world.posts_with_files(card.id)), timeout=20)
    await world.discord.wait_for(lambda: "Delivered" in status_of(world, card), timeout=5)


async def test_a_video_nobody_approves_expires_refunded(world: World) -> None:
    await world.start_bot(job_timeout_seconds=1.5)
    card = await waiting_card(world)
    await world.discord.wait_for(lambda: "Not approved in time" in status_of(world, card), timeout=10)
    await world.wait_for_text(card.id, "No moderator approved it in time")
    assert "used **0** of **5**" in await world.quota_text()
    assert world.aiml.submissions == []
    assert world.bot is not None
    job = await world.bot.store.jobs.get(1)
    assert job is not None
    assert job.status is JobStatus.EXPIRED
    assert custom_ids(current(world, card.id)) == ["reelbot:retry:1", "reelbot:details:1"]


async def test_moderators_can_approve_from_the_mod_log_entry(world: World) -> None:
    log_channel = world.guild.id + 700
    channel = SimChannel(log_channel, world.guild.id, ChannelType.GUILD_TEXT, "mod-log", position=5)
    world.guild.channels[log_channel] = channel
    world.discord.channels[log_channel] = channel
    await world.start_bot()
    await world.mod("modlog", channel=log_channel)
    card = await waiting_card(world)
    await world.discord.wait_for(lambda: any(m.embeds for m in world.discord.messages(log_channel)), timeout=5)
    [entry] = [m for m in world.discord.messages(log_channel) if m.embeds]
    assert custom_ids(entry) == ["reelbot:approve:1", "reelbot:reject:1", "reelbot:block:1"]
    assert "Approved" in await press(world, entry, "reelbot:approve:1", world.guild.moderator_id)
    await world.discord.wait_for(lambda: "reelbot:approve:1" not in custom_ids(current(world, entry.id)), 5)
    assert custom_ids(current(world, entry.id)) == ["reelbot:block:1", "reelbot:cancel:1"]
    line = await world.wait_for_text(log_channel, "approved job #1")
    assert f"<@{world.guild.moderator_id}>" in line.content
    await world.discord.wait_for(lambda: bool(world.posts_with_files(card.id)), timeout=20)

"""Crowds, end to end: the real bot (discord.py, SQLite, poller) against simulators that enforce Discord's limits
(50 requests/s per bot with interaction callbacks exempt, 5 thread creations and 5 messages per 5 s per channel)
and an AI/ML API that may limit the key's rate. Smaller crowds than the benchmarks (`python -m bench`), sized so
the same failures show: videos outside their thread, 429s, answers held back, a provider pace that starves."""

from __future__ import annotations

import collections
from typing import Any

import pytest

from bot.sim.aimlapi import JobScript
from bot.sim.discord import InteractionHandle, SimChannel, SimMember, SimMessage, SimUser
from bot.sim.discord.state import ChannelType
from tests.e2e_world import World

pytestmark = pytest.mark.timeout(120)

THREADS = "/channels/{channel_id}/messages/{message_id}/threads"
FIRST_MEMBER = 720_000_000_000_000_000
FIRST_CHANNEL = 730_000_000_000_000_000


def add_members(world: World, n: int) -> list[int]:
    guild = world.discord.guild
    ids = []
    for i in range(n):
        user = SimUser(FIRST_MEMBER + i, f"fan{i}", global_name=f"Fan {i}")
        world.discord.users[user.id] = user
        guild.members[user.id] = SimMember(user)
        ids.append(user.id)
    return ids


def add_channels(world: World, n: int) -> list[int]:
    """`n` text channels in all: the guild's own and `n - 1` more (before the bot starts)."""
    guild = world.discord.guild
    ids = [int(guild.text_channel_id)]
    for i in range(1, n):
        channel = SimChannel(FIRST_CHANNEL + i, guild.id, ChannelType.GUILD_TEXT, f"videos-{i}", position=10 + i)
        guild.channels[channel.id] = channel
        world.discord.channels[channel.id] = channel
        ids.append(channel.id)
    return ids


def videos(world: World, channels: list[int]) -> tuple[list[SimMessage], list[SimMessage]]:
    """(videos in a thread, videos posted in a channel itself)."""
    inside, outside = [], []
    for channel in channels:
        outside += [m for m in world.discord.messages(channel) if m.attachments]
        for thread in world.discord.threads(channel):
            inside += [m for m in world.discord.messages(thread.id) if m.attachments]
    return inside, outside


async def burst(world: World, members: list[int], channels: list[int]) -> list[SimMessage]:
    handles: list[InteractionHandle] = []
    for i, member in enumerate(members):
        handles.append(await world.video("a fox", user_id=member, channel_id=channels[i % len(channels)]))
    cards = [await h.wait_response(timeout=10) for h in handles]
    assert not any(h.ephemeral for h in handles)
    return cards


def limited(world: World) -> list[Any]:
    return [r for r in world.discord.requests if r.status == 429]


async def test_a_burst_in_one_channel_puts_every_video_in_its_thread_without_a_429(world: World) -> None:
    # Threads come at 5 per 5 s per channel, videos after about a second: most videos are ready long before
    # their thread may be started, and must wait for it.
    members = add_members(world, 15)
    await world.start_bot()
    channels = [world.channel]
    cards = await burst(world, members, channels)
    await world.discord.wait_for(lambda: sum(map(len, videos(world, channels))) == len(cards), timeout=60)
    inside, outside = videos(world, channels)
    assert outside == []
    assert len(inside) == len(cards)
    # Each in the thread of its own card, mentioning its own member.
    for card in cards:
        [video] = [m for m in world.discord.messages(card.id) if m.attachments]
        assert video.mentioned_user_ids == [card.interaction_user_id]
    assert limited(world) == []


async def test_a_burst_over_ten_channels_draws_no_429_global_or_not(world: World) -> None:
    # Discord's global limit scaled down (50 → 20 per second) with the bot's budget to match (45 → 18), so a
    # crowd of 30 crosses it the way 200 cross the real one.
    world.discord.ratelimiter.global_limit = 20
    members = add_members(world, 30)
    channels = add_channels(world, 10)
    await world.start_bot(discord_requests_per_second=18)
    cards = await burst(world, members, channels)
    await world.discord.wait_for(lambda: sum(map(len, videos(world, channels))) == len(cards), timeout=90)
    inside, outside = videos(world, channels)
    assert (len(inside), outside) == (len(cards), [])
    assert limited(world) == []
    by_second = collections.Counter(int(r.started) for r in world.discord.requests if r.route.startswith("/channels"))
    assert max(by_second.values()) <= 20


async def test_an_interaction_is_answered_while_a_global_429_holds_every_other_request(world: World) -> None:
    first, second = add_members(world, 2)
    await world.start_bot()
    await (await world.video("warm up", user_id=first)).wait_response(timeout=5)
    await world.discord.wait_for(lambda: len(world.discord.threads(world.channel)) == 1, timeout=10)
    # The next bot-token request (the next thread) draws a global 429 asking for 3 seconds.
    world.discord.inject_fault("POST", THREADS, 429, retry_after=3.0, global_=True)
    trigger = await world.video("draws the 429", user_id=first)
    await trigger.wait_response(timeout=5)
    await world.discord.wait_for(lambda: limited(world), timeout=10)
    [hit] = limited(world)

    handle = await world.video("answered meanwhile", user_id=second)
    card = await handle.wait_response(timeout=5)
    assert not handle.ephemeral
    assert handle.acknowledged_at is not None
    # Answered while the global limit was still pending: nothing else reached Discord before it ended.
    assert handle.acknowledged_at < hit.finished + 3.0
    answers = ("/interactions", "/webhooks")  # the interaction's own routes, outside the bot's global limit
    held = [r for r in world.discord.requests if r.started > hit.finished and not r.route.startswith(answers)]
    assert all(r.started >= hit.finished + 2.9 for r in held if not r.path.startswith("/attachments"))
    await world.discord.wait_for(lambda: world.thread_of(card) is not None, timeout=15)


async def test_an_interaction_is_answered_while_its_channel_s_thread_bucket_is_exhausted(world: World) -> None:
    first, second = add_members(world, 2)
    world.discord.rate_limits["POST " + THREADS] = (1, 4.0)
    await world.start_bot()
    card1 = await (await world.video("one", user_id=first)).wait_response(timeout=5)
    await world.discord.wait_for(lambda: world.thread_of(card1) is not None, timeout=10)
    started = world.discord.requests_to(THREADS, "POST")[0]

    handle = await world.video("two", user_id=second)
    card2 = await handle.wait_response(timeout=5)
    assert handle.acknowledged_at is not None
    assert handle.acknowledged_at < started.finished + 4.0  # answered before the bucket let a thread start
    await world.discord.wait_for(lambda: world.thread_of(card2) is not None, timeout=15)
    second_thread = world.discord.requests_to(THREADS, "POST")[1]
    assert second_thread.started >= started.started + 4.0  # waited for the bucket before sending
    assert limited(world) == []


async def test_the_provider_pace_grows_past_a_fixed_guess_when_the_key_allows_it(world: World) -> None:
    # The old fixed 5 requests/s starved a crowd; an unknown key's rate is found instead.
    world.aiml.default_script = JobScript(queued_s=0.2, generating_s=1.0)
    members = add_members(world, 40)
    channels = add_channels(world, 8)  # 5 each: the threads are not what this waits for
    await world.start_bot()
    cards = await burst(world, members, channels)
    await world.discord.wait_for(
        lambda: sum(1 for c in cards if any(m.attachments for m in world.discord.messages(c.id))) == len(cards),
        timeout=90,
    )
    per_second = collections.Counter(int(r.at) for r in world.aiml.requests if r.path.startswith("/v2/"))
    assert max(per_second.values()) > 12  # beyond what 5 per second (plus its burst of 5) could ever send
    assert world.aiml.rate_limited == 0


async def test_a_key_limited_to_a_rate_is_found_with_few_429s_and_every_job_delivered(world: World) -> None:
    world.aiml.requests_per_second = 8
    world.aiml.default_script = JobScript(queued_s=0.5, generating_s=2.0)
    members = add_members(world, 30)
    channels = add_channels(world, 6)
    await world.start_bot()
    cards = await burst(world, members, channels)
    await world.discord.wait_for(
        lambda: sum(1 for c in cards if any(m.attachments for m in world.discord.messages(c.id))) == len(cards),
        timeout=110,
    )
    sent = [r for r in world.aiml.requests if r.path.startswith("/v2/")]
    share = world.aiml.rate_limited / len(sent)
    assert share <= 0.15, f"{world.aiml.rate_limited} of {len(sent)} requests were answered 429"
    assert len(world.aiml.generations) == len(cards)  # a refused submit created nothing; none was paid twice

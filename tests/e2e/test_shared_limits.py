"""Deployment-wide limits, through real processes on one PostgreSQL database: however many processes send with
one bot token, together they stay within Discord's global limit and each channel's buckets; however many workers
use one API key, they find and keep one pace for it.

Discord's global limit is scaled down as in `tests/e2e/test_traffic.py` (50 → 20 per second, the bot's budget
45 → 18), so three processes can each reach it on their own: without a shared budget they draw 429s at once.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.jobs import JobStatus
from bot.sim.aimlapi import AimlSimulator, JobScript
from bot.sim.discord import DiscordSimulator, SimChannel, SimMember, SimUser
from bot.sim.discord.state import ChannelType
from bot.sim.processes import SimDeployment
from bot.sim.wiring import SIM_KEY, SIM_TOKEN
from bot.storage import Store
from tests.e2e.test_scale_out import SETTINGS
from tests.e2e_world import image
from tests.pg import PostgresCluster
from tests.services.test_faults_provider import assert_settled

pytestmark = pytest.mark.timeout(240)

SIM_GLOBAL = 20
BOT_BUDGET = 18
FIRST_CHANNEL = 740_000_000_000_000_000
FIRST_MEMBER = 750_000_000_000_000_000


@pytest.fixture
async def sims(postgres: PostgresCluster, tmp_path: Path) -> AsyncIterator[SimDeployment]:
    discord_sim = DiscordSimulator(token=SIM_TOKEN)
    aiml = AimlSimulator(key=SIM_KEY, default_script=JobScript(queued_s=0.3, generating_s=1.5))
    async with SimDeployment.running(discord_sim, aiml, postgres.new_database(), tmp_path, SETTINGS) as dep:
        yield dep


def most_in_one_second(times: list[float]) -> int:
    """The most of `times` that fall in any one-second stretch (the simulator's global window slides too)."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)), default=0)


def add_channels(sim: DiscordSimulator, n: int) -> list[int]:
    guild = sim.guild
    ids = []
    for i in range(n):
        channel = SimChannel(FIRST_CHANNEL + i, guild.id, ChannelType.GUILD_TEXT, f"crowd-{i}", position=20 + i)
        guild.channels[channel.id] = channel
        sim.channels[channel.id] = channel
        ids.append(channel.id)
    return ids


def add_members(sim: DiscordSimulator, n: int) -> list[int]:
    ids = []
    for i in range(n):
        user = SimUser(FIRST_MEMBER + i, f"fan{i}", global_name=f"Fan {i}")
        sim.users[user.id] = user
        sim.guild.members[user.id] = SimMember(user)
        ids.append(user.id)
    return ids


async def test_three_processes_with_one_token_stay_within_discords_global_limit_together(sims: SimDeployment) -> None:
    dep, sim = sims, sims.discord
    sim.ratelimiter.global_limit = SIM_GLOBAL
    channels = add_channels(sim, 20)
    names = ["crowd-1", "crowd-2", "crowd-3"]
    for name in names:
        await dep.start(
            name,
            "crowd",
            module="tests.e2e.rest_crowd",
            DISCORD_REQUESTS_PER_SECOND=str(BOT_BUDGET),
            CROWD_DIR=str(dep.tmp),
            CROWD_CHANNELS=",".join(map(str, channels)),
            CROWD_ROUNDS="2",
        )
    deadline = time.monotonic() + 60
    while not all((dep.tmp / f"ready-{n}").exists() for n in names):
        if time.monotonic() > deadline or any(p.returncode is not None for p in dep.procs.values()):
            pytest.fail("the processes never logged in:\n" + dep.logs())
        await asyncio.sleep(0.1)
    before = len(sim.requests)
    (dep.tmp / "go").touch()  # all at once: each alone would send as fast as its own budget allows
    exits = [await asyncio.wait_for(proc.wait(), 90) for proc in dep.procs.values()]

    crowd = sim.requests[before:]
    assert [r for r in crowd if r.status == 429] == [], "Discord answered 429"
    assert most_in_one_second([r.started for r in crowd]) <= SIM_GLOBAL
    assert exits == [0, 0, 0], dep.logs()
    posted = [r for r in crowd if r.method == "POST" and r.status == 200]
    assert len(posted) == 3 * 2 * len(channels)  # every message went, each once


async def test_two_workers_share_one_pace_for_the_api_key(sims: SimDeployment) -> None:
    dep, sim = sims, sims.discord
    dep.aiml.requests_per_second = 8
    members = add_members(sim, 15)
    await dep.start("gateway", "gateway")
    await dep.start("worker-1", "worker")
    await dep.start("worker-2", "worker")
    try:
        await sim.wait_for(lambda: bool(sim.gateway.shard_events(0, "READY")) and bool(sim.commands()), timeout=60)
    except TimeoutError:
        pytest.fail("the gateway never connected:\n" + dep.logs())

    asks = [
        sim.invoke_command(
            "video",
            user_id=members[n % len(members)],
            channel_id=int(sim.guild.text_channel_id),
            options={"prompt": f"the fox runs, take {n}"},
            attachments={"image1": image("fox.png")},
        )
        for n in range(len(members) * 2)
    ]
    handles = await asyncio.gather(*asks)
    cards = await asyncio.gather(*(h.wait_response(timeout=30) for h in handles))
    assert all(c.embeds for c in cards), [c.content for c in cards]

    async with await Store.open(dep.url) as store:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            counts = await store.jobs.counts_by_status()
            if counts[JobStatus.DELIVERED] + counts[JobStatus.FAILED] == len(cards):
                break
            await asyncio.sleep(0.5)
        else:
            pytest.fail(f"jobs never settled: {counts}\n{dep.logs()}")
        await assert_settled(store, guilds=(sim.guild.id,))
        assert counts[JobStatus.DELIVERED] == len(cards)

    sent = [r for r in dep.aiml.requests if r.path.startswith("/v2/")]
    share = dep.aiml.rate_limited / len(sent)
    assert share <= 0.10, f"{dep.aiml.rate_limited} of {len(sent)} requests were answered 429"
    assert len(dep.aiml.generations) == len(cards)  # a refused submit created nothing; none was paid twice
    assert {r.agent for r in sent} == {"Reelbot (worker-1)", "Reelbot (worker-2)"}  # both workers did work

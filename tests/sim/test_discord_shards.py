"""Sharding in the Discord simulator: `GET /gateway/bot` recommends shards, IDENTIFY carries `[shard_id,
shard_count]`, each guild's events go to shard `(guild_id >> 22) % shard_count`, and IDENTIFYs faster than
`max_concurrency` per 5 seconds are refused with Invalid Session, as Discord does. The real client here is
discord.py's `AutoShardedBot`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bot.discord_endpoints import point_discord_at
from bot.sim.discord import DiscordSimulator, SimGuild, guild_on_shard, shard_of
from bot.sim.discord.__main__ import build_guilds, parse_args


def four_guilds() -> list[SimGuild]:
    """Two guilds on each of two shards."""
    return [guild_on_shard(shard, 2, index) for index in range(2) for shard in range(2)]


class ShardedBot(commands.AutoShardedBot):
    """`/where` answers in every guild. `eager` skips discord.py's 5-second pause before the IDENTIFYs after the
    first ("always", or "once" per shard, so a refused IDENTIFY is retried after the usual pause)."""

    def __init__(self, eager: str) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.eager = eager
        self._skipped: set[int] = set()
        self.answered: list[int] = []

        @app_commands.command(name="where", description="Say which guild this is")
        async def where(interaction: discord.Interaction) -> None:
            assert interaction.guild_id is not None
            self.answered.append(interaction.guild_id)
            await interaction.response.send_message(f"guild {interaction.guild_id}")

        self.tree.add_command(where)

    async def setup_hook(self) -> None:
        await self.tree.sync()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if self.eager == "always" or (self.eager == "once" and shard_id not in self._skipped):
            self._skipped.add(shard_id or 0)
            return
        await super().before_identify_hook(shard_id, initial=initial)


@contextlib.asynccontextmanager
async def sharded(sim: DiscordSimulator, bot: ShardedBot) -> AsyncIterator[None]:
    point_discord_at(sim.rest_url, sim.gateway_url)
    task = asyncio.create_task(bot.start(sim.token))
    try:
        await asyncio.wait_for(bot.wait_until_ready(), timeout=30)
        yield
    finally:
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError, discord.DiscordException):
            await asyncio.wait_for(task, timeout=5)


@pytest.fixture
async def two_shards() -> AsyncIterator[DiscordSimulator]:
    sim = DiscordSimulator(token="TOKEN", guilds=four_guilds(), shards=2, max_concurrency=2)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def _received_by_shard(caplog: pytest.LogCaptureFixture, event: str) -> list[tuple[int, dict[str, Any]]]:
    """(shard id of the client's socket, payload) for each `event` the client received: discord.py logs every
    gateway message at DEBUG as "For Shard ID %s: WebSocket Event: %s"."""
    out = []
    for record in caplog.records:
        if (
            record.name == "discord.gateway"
            and record.msg.startswith("For Shard ID")
            and isinstance(record.args, tuple)
        ):
            shard_id, message = record.args
            if isinstance(message, dict) and message.get("t") == event:
                out.append((int(shard_id), message["d"]))
    return out


async def test_gateway_bot_recommends_shards_and_concurrency() -> None:
    async with DiscordSimulator(token="TOKEN", shards=3, max_concurrency=2) as sim:
        headers = {"Authorization": f"Bot {sim.token}"}
        async with aiohttp.ClientSession(headers=headers) as http, http.get(f"{sim.rest_url}/gateway/bot") as resp:
            body = await resp.json()
    assert body == {
        "url": sim.gateway_url,
        "shards": 3,
        "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 86_400_000, "max_concurrency": 2},
    }


async def test_each_guilds_interaction_arrives_on_its_own_shard(
    two_shards: DiscordSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    sim = two_shards
    caplog.set_level(logging.DEBUG, logger="discord.gateway")
    bot = ShardedBot(eager="always")  # max_concurrency 2: both shards may IDENTIFY at once
    async with sharded(sim, bot):
        # The client took the shard count from GET /gateway/bot and opened one session per shard.
        assert bot.shard_count == 2
        assert sorted(s.shard_id for s in sim.gateway.sessions.values()) == [0, 1]
        assert sim.gateway.identify_refused == 0
        # READY and GUILD_CREATE: each shard was told about its own two guilds only.
        for shard in (0, 1):
            [ready] = sim.gateway.shard_events(shard, "READY")
            listed = {int(g["id"]) for g in ready["d"]["guilds"]}
            assert listed == {g.id for g in sim.guilds if shard_of(g.id, 2) == shard}
            assert len(listed) == 2
        assert sorted(g.id for g in bot.guilds) == sorted(g.id for g in sim.guilds)

        for guild in sim.guilds:
            expected = shard_of(guild.id, 2)
            h = await sim.invoke_command("where", user_id=guild.member_ids[0], channel_id=guild.text_channel_id)
            assert (await h.wait_response()).content == f"guild {guild.id}"
            # The simulator sent it to that shard's session only...
            on = [f["d"]["id"] for f in sim.gateway.shard_events(expected, "INTERACTION_CREATE")]
            off = [f["d"]["id"] for f in sim.gateway.shard_events(1 - expected, "INTERACTION_CREATE")]
            assert str(h.id) in on
            assert str(h.id) not in off
            # ...and the client received it on that shard's socket.
            received = [shard for shard, d in _received_by_shard(caplog, "INTERACTION_CREATE") if d["id"] == str(h.id)]
            assert received == [expected]
            client_guild = bot.get_guild(guild.id)
            assert client_guild is not None
            assert client_guild.shard_id == expected
        assert bot.answered == [g.id for g in sim.guilds]


async def test_identify_faster_than_max_concurrency_is_refused_and_discord_py_retries() -> None:
    async with DiscordSimulator(token="TOKEN", guilds=four_guilds(), shards=2, max_concurrency=1) as sim:
        # Shard 1 IDENTIFYs right after shard 0 although only one IDENTIFY per 5 s is allowed: Invalid Session.
        # discord.py then pauses its usual 5 seconds and IDENTIFYs again, which is accepted.
        bot = ShardedBot(eager="once")
        async with sharded(sim, bot):
            assert sim.gateway.identify_refused == 1
            assert sim.identify_count == 3
            assert sorted(s.shard_id for s in sim.gateway.sessions.values()) == [0, 1]
            assert sorted(g.id for g in bot.guilds) == sorted(g.id for g in sim.guilds)
            guild = next(g for g in sim.guilds if shard_of(g.id, 2) == 1)
            h = await sim.invoke_command("where", user_id=guild.member_ids[0], channel_id=guild.text_channel_id)
            assert (await h.wait_response()).content == f"guild {guild.id}"


async def _identify(sim: DiscordSimulator, http: aiohttp.ClientSession, shard: list[int]) -> dict[str, Any]:
    """Open a gateway socket, IDENTIFY for `shard`, return the first answer after HELLO."""
    ws = await http.ws_connect(sim.gateway_url)
    hello = json.loads((await ws.receive(timeout=5)).data)
    assert hello["op"] == 10
    identify = {"token": sim.token, "intents": 1, "properties": {}, "shard": shard}
    await ws.send_str(json.dumps({"op": 2, "d": identify}))
    answer: dict[str, Any] = json.loads((await ws.receive(timeout=5)).data)
    return answer


@pytest.mark.parametrize(("max_concurrency", "second_ok"), [(1, False), (2, True)])
async def test_identify_pacing_on_the_wire(max_concurrency: int, second_ok: bool) -> None:
    async with (
        DiscordSimulator(token="TOKEN", guilds=four_guilds(), max_concurrency=max_concurrency) as sim,
        aiohttp.ClientSession() as http,
    ):
        first = await _identify(sim, http, [0, 2])
        second = await _identify(sim, http, [1, 2])
        again = await _identify(sim, http, [0, 2])  # shard 0's key again, right away
        assert first["t"] == "READY"
        if second_ok:
            assert second["t"] == "READY"
        else:
            assert second == {"op": 9, "d": False, "s": None, "t": None}
        assert again == {"op": 9, "d": False, "s": None, "t": None}
        assert sim.gateway.identify_refused == (1 if second_ok else 2)


def test_guilds_on_chosen_shards() -> None:
    guilds = [guild_on_shard(shard, 3, index) for shard in range(3) for index in range(3)]
    assert [shard_of(g.id, 3) for g in guilds] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    ids = [i for g in guilds for i in {g.id, *g.channels, *g.roles}]  # @everyone's role id is the guild id
    assert len(ids) == len(set(ids))
    # Channels and roles share their guild's timestamp part, so an id alone says which shard it belongs to.
    assert all(shard_of(c, 3) == shard_of(g.id, 3) for g in guilds for c in g.channels)
    with pytest.raises(ValueError, match="does not exist"):
        guild_on_shard(2, 2)
    # The command line spreads `--guilds` over `--shards`.
    args = parse_args(["--guilds", "4", "--shards", "2", "--max-concurrency", "2"])
    assert (args.guilds, args.shards, args.max_concurrency) == (4, 2, 2)
    assert sorted(shard_of(g.id, 2) for g in build_guilds(args.guilds, args.shards)) == [0, 0, 1, 1]
    with pytest.raises(SystemExit):
        parse_args(["--shards", "0"])

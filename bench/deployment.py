"""A deployment of several bot processes, as operators run them, between the two simulators in this process.

Four servers (two on each of two gateway shards, so the same servers serve a sharded and an unsharded run), each
with `channels` text channels and `members` members who run `/video` once. The bot is either one all-in-one
`python -m bot` on a SQLite file, or gateway and worker processes (`python -m bot gateway` / `worker`) sharing a
PostgreSQL database on a throw-away cluster. Every process runs at the default settings; only the simulators'
addresses, a metrics port, a process name and the shared media folder are the benchmark's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from bench.world import SpreadSimulator, cpu_seconds
from bot.sim.aimlapi import JobScript
from bot.sim.discord import (
    AttachmentSpec,
    DiscordSimulator,
    InteractionHandle,
    SimChannel,
    SimMember,
    SimUser,
    guild_on_shard,
)
from bot.sim.discord.state import ChannelType, SimGuild
from bot.sim.images import make_png
from bot.sim.processes import SimDeployment
from bot.sim.wiring import SIM_KEY, SIM_TOKEN

__all__ = ["Deployment", "ProviderSimulator", "Shape", "deployment", "job_rows", "postgres_cpu_seconds"]

FIRST_MEMBER = 720_000_000_000_000_000
SERVERS = 4


@dataclass(frozen=True)
class Shape:
    members: int  # per server, one /video each
    channels: int  # text channels per server (Discord allows 5 messages and 5 new threads per 5 s in each)
    durations: tuple[float, float]  # provider seconds per generation, uniform
    shards: int = 1  # what the Discord simulator recommends (GET /gateway/bot)

    @property
    def jobs(self) -> int:
        return SERVERS * self.members


class ProviderSimulator(SpreadSimulator):
    """The AI/ML API simulator (generation times drawn from `durations`) that can catch a process mid-poll:
    after `hold(agent)`, polls sent with that User-Agent wait unanswered, their generations listed in `held`,
    until `release()`. A process killed then dies with those jobs' leases in hand, as a crash mid-request does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hold_agent: str | None = None
        self._released = asyncio.Event()
        self.held: list[str] = []

    def hold(self, agent: str) -> None:
        self._hold_agent = agent

    def release(self) -> None:
        self._hold_agent = None
        self._released.set()

    async def _poll(self, request: web.Request) -> web.StreamResponse:
        if self._hold_agent is not None and request.headers.get("User-Agent") == self._hold_agent:
            self.held.append(request.query.get("generation_id", ""))
            await self._released.wait()
        return await super()._poll(request)

    async def stop(self) -> None:
        self.release()
        await super().stop()


def _guilds(shape: Shape) -> tuple[list[SimGuild], dict[int, SimUser]]:
    guilds = [guild_on_shard(shard, 2, index) for index in range(SERVERS // 2) for shard in range(2)]
    users: dict[int, SimUser] = {}
    for g, guild in enumerate(guilds):
        for i in range(1, shape.channels):
            cid = guild.id + 1000 + i  # same timestamp part as the guild's id: same shard, no collisions
            guild.channels[cid] = SimChannel(cid, guild.id, ChannelType.GUILD_TEXT, f"videos-{i}", position=10 + i)
        guild.member_ids = []
        for i in range(shape.members):
            user = SimUser(FIRST_MEMBER + g * 10_000 + i, f"member{g}-{i}", global_name=f"Member {g}-{i}")
            users[user.id] = user
            guild.members[user.id] = SimMember(user)
            guild.member_ids.append(user.id)
    return guilds, users


def text_channels(guild: SimGuild) -> list[int]:
    return [c.id for c in guild.channels.values() if c.type == ChannelType.GUILD_TEXT and not c.is_thread]


@dataclass
class Deployment(SimDeployment[ProviderSimulator]):
    """The benchmark's processes: each also serves /healthz and /metrics on a port of its own."""

    ports: dict[str, int] = field(default_factory=dict)
    final_cpu: dict[str, float] = field(default_factory=dict)  # CPU of processes that are gone, at their end

    async def start(self, name: str, role: str | None = None, *, module: str = "bot", **extra: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        await super().start(name, role, module=module, METRICS_PORT=str(port), **extra)
        self.ports[name] = port

    async def ready(self) -> None:
        """Until every process's /healthz says ready (a gateway: connected; a worker: its poller running) and the
        commands are synced."""
        async with aiohttp.ClientSession() as session:
            for name, proc in self.procs.items():
                deadline = time.monotonic() + 90
                while True:
                    if proc.returncode is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"{name} did not become ready:\n{self.logs()}")
                    with contextlib.suppress(aiohttp.ClientError):
                        async with session.get(f"http://127.0.0.1:{self.ports[name]}/healthz") as resp:
                            if resp.status == 200:
                                break
                    await asyncio.sleep(0.1)
        await self.discord.wait_for(lambda: self.discord.commands(), timeout=60)

    def cpu(self) -> dict[str, float]:
        """CPU seconds of each bot process so far (a killed one's as it was when it died)."""
        return {
            name: self.final_cpu[name] if name in self.final_cpu else cpu_seconds(proc.pid)
            for name, proc in self.procs.items()
        }

    async def kill(self, name: str) -> float:
        """SIGKILL `name`; returns when it died (epoch seconds)."""
        proc = self.procs[name]
        self.final_cpu[name] = cpu_seconds(proc.pid)
        proc.kill()
        killed_at = time.time()
        await proc.wait()
        return killed_at

    async def ask(self, per_second: float) -> list[InteractionHandle]:
        """Every member runs /video once, servers and channels interleaved, `per_second` commands a second;
        returns once every command has been answered (or 30 s passed)."""
        png = make_png(64, 48)
        images = {"image1": AttachmentSpec("fox.png", "image/png", png, width=1024, height=768)}
        per_server = []
        for guild in self.discord.guilds:
            channels = text_channels(guild)
            per_server.append([(member, channels[i % len(channels)]) for i, member in enumerate(guild.member_ids)])
        asks = [ask for round_ in zip(*per_server, strict=True) for ask in round_]  # the servers interleaved
        handles = []
        first = time.monotonic()
        for i, (member, channel) in enumerate(asks):
            handles.append(
                await self.discord.invoke_command(
                    "video", user_id=member, channel_id=channel, options={"prompt": "a fox"}, attachments=images
                )
            )
            await asyncio.sleep(max(0.0, first + (i + 1) / per_second - time.monotonic()))
        await asyncio.gather(*(h.wait_response(timeout=30) for h in handles), return_exceptions=True)
        return handles

    def videos(self) -> tuple[list[float], int]:
        """When each video in a thread was posted, and how many videos were posted in a channel itself."""
        inside: list[float] = []
        outside = 0
        for channel in list(self.discord.channels.values()):
            files = [m.created_at for m in self.discord.messages(channel.id) if m.attachments]
            if channel.is_thread:
                inside += files
            else:
                outside += len(files)
        return inside, outside

    async def until_videos(self, expected: int, patience: float) -> None:
        # Twice a second: counting every message on every event would stall the simulators' event loop.
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            inside, outside = self.videos()
            if len(inside) + outside >= expected:
                return
            await asyncio.sleep(0.5)


@contextlib.asynccontextmanager
async def deployment(tmp: Path, shape: Shape, url: str | None = None) -> AsyncIterator[Deployment]:
    """The simulators with the four servers; no bot process yet. `url` None: a SQLite file in `tmp`."""
    await asyncio.to_thread(tmp.mkdir, parents=True, exist_ok=True)
    guilds, users = _guilds(shape)
    discord_sim = DiscordSimulator(token=SIM_TOKEN, guilds=guilds, shards=shape.shards, max_concurrency=1)
    discord_sim.users.update(users)
    # Wall-clock time, so the provider's finish times compare with the Discord simulator's message times.
    aiml = ProviderSimulator(SIM_KEY, default_script=JobScript(), durations=shape.durations, clock=time.time)
    # The default poll interval (10 s), which the simulators' recipe lowers for tests.
    defaults = {"poll_interval_seconds": 10}
    async with Deployment.running(discord_sim, aiml, url or f"sqlite:///{tmp / 'bot.db'}", tmp, defaults) as dep:
        yield dep


async def job_rows(url: str) -> list[dict[str, Any]]:
    """Every job row (id, status, channel, thread, delivered message, generation, lease and thread claim)."""
    sql = (
        "SELECT id, status, channel_id, thread_id, delivered_message_id, generation_id, lease_owner, thread_owner"
        " FROM jobs ORDER BY id"
    )
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(sql).fetchall()]
    conn = await asyncpg.connect(url)
    try:
        return [dict(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()


def postgres_cpu_seconds(data_dir: Path) -> float:
    """CPU seconds of a PostgreSQL server: the postmaster, its live children, and its children that have ended."""
    tick = os.sysconf("SC_CLK_TCK")
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    fields = _stat(postmaster)
    total = sum(int(f) for f in fields[11:15])  # utime, stime, and the ended children's cutime, cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                child = _stat(int(entry.name))
                if int(child[1]) == postmaster:
                    total += int(child[11]) + int(child[12])
    return total / tick

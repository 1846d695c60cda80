"""A bot process (`python -m bot`, exactly as operators run it) between the two simulators in this process.

The bot runs in its own process so its CPU and memory are measured alone and it competes for the two cores the
way a deployed bot would with a busy Discord; the simulators record what members see and every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp

from bot.sim.aimlapi import AimlSimulator, JobScript, SimGeneration
from bot.sim.discord import DiscordSimulator, SimChannel, SimMember, SimUser, default_guild
from bot.sim.discord.state import ChannelType
from bot.sim.wiring import SIM_KEY, SIM_TOKEN, settings_env

__all__ = ["BotWorld", "SpreadSimulator", "bot_world", "cpu_seconds", "read_status_kib"]

ROOT = Path(__file__).resolve().parent.parent
FIRST_MEMBER = 700_000_000_000_000_000
FIRST_CHANNEL = 710_000_000_000_000_000


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SpreadSimulator(AimlSimulator):
    """The AI/ML API simulator with each generation's provider time drawn from `durations` (seconds, uniform),
    as real generations vary; a fixed seed keeps runs comparable."""

    def __init__(self, *args: Any, durations: tuple[float, float], seed: int = 9, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._durations = durations
        self._rng = random.Random(seed)
        self.finish: dict[str, float] = {}  # generation id -> when it became ready (simulator clock)

    def _phase(self, gen: SimGeneration, now: float) -> tuple[str, float]:
        if gen.id not in self.finish:
            total = self._rng.uniform(*self._durations)
            gen.script = replace(gen.script, queued_s=total * 0.2, generating_s=total * 0.8)
            self.finish[gen.id] = gen.created + total
        return super()._phase(gen, now)


def read_status_kib(pid: int, field_name: str) -> int:
    """A `VmRSS`/`VmHWM`-style line of /proc/<pid>/status, in KiB (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


@dataclass
class BotWorld:
    discord: DiscordSimulator
    aiml: AimlSimulator
    proc: asyncio.subprocess.Process
    members: list[int]
    log_path: Path
    rss_samples: list[int] = field(default_factory=list)  # KiB, every ~20 ms while sampling

    channels: list[int] = field(default_factory=list)

    @property
    def channel(self) -> int:
        return int(self.discord.guild.text_channel_id)

    def rss_kib(self) -> int:
        return read_status_kib(self.proc.pid, "VmRSS")

    def peak_rss_kib(self) -> int:
        return read_status_kib(self.proc.pid, "VmHWM")

    async def sample_rss(self, stop: asyncio.Event, every: float = 0.02) -> None:
        while not stop.is_set():
            self.rss_samples.append(self.rss_kib())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_ready(proc: asyncio.subprocess.Process, health_url: str, log_path: Path) -> None:
    """Until the bot's /healthz says ready: commands synced, gateway connected, poller running (discord.py
    waits for every guild before it reports ready, so the first seconds after connecting are not yet that)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(1200):
            if proc.returncode is not None:
                raise RuntimeError(f"the bot exited with {proc.returncode}; see {log_path}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(health_url) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"the bot did not become ready; see {log_path}")


@contextlib.asynccontextmanager
async def bot_world(
    tmp: Path,
    *,
    members: int = 0,
    channels: int = 1,
    premium_tier: int = 0,
    script: JobScript | None = None,
    aiml: AimlSimulator | None = None,
    **overrides: Any,
) -> AsyncIterator[BotWorld]:
    """Both simulators, `members` extra guild members, `channels` text channels (the guild's own first), and a
    bot process that has synced and is ready. `aiml` replaces the default AI/ML API simulator (not started)."""
    guild = default_guild()
    channel_ids = [int(guild.text_channel_id)]
    for i in range(1, channels):
        channel = SimChannel(FIRST_CHANNEL + i, guild.id, ChannelType.GUILD_TEXT, f"videos-{i}", position=10 + i)
        guild.channels[channel.id] = channel
        channel_ids.append(channel.id)
    discord_sim = DiscordSimulator(token=SIM_TOKEN, guilds=[guild])
    ids = []
    for i in range(members):
        user = SimUser(FIRST_MEMBER + i, f"member{i}", global_name=f"Member {i}")
        discord_sim.users[user.id] = user
        guild.members[user.id] = SimMember(user)
        ids.append(user.id)
    guild.premium_tier = premium_tier
    aiml = aiml or AimlSimulator(SIM_KEY, default_script=script or JobScript(queued_s=1, generating_s=3))
    await discord_sim.start()
    await aiml.start()
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp),
        **settings_env(discord_sim, aiml, tmp / "bot.db", **{"metrics_port": port, **overrides}),
    }
    log_path = tmp / "bot.log"
    log_file = log_path.open("wb")
    # REELBOT_BENCH_PROFILE=<folder>: run the bot under cProfile, leaving a .prof file there (where the CPU goes).
    profile = os.environ.get("REELBOT_BENCH_PROFILE")
    runner = ["-m", "cProfile", "-o", os.path.join(profile, f"bot-{tmp.name}.prof")] if profile else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *runner, "-m", "bot", cwd=tmp, env=env, stdout=log_file, stderr=log_file
    )
    try:
        await _wait_ready(proc, f"http://127.0.0.1:{port}/healthz", log_path)
        # Commands are synced in the background after connecting; a member can only run synced ones.
        await discord_sim.wait_for(lambda: discord_sim.commands(guild.id), timeout=30)
        yield BotWorld(discord_sim, aiml, proc, ids or list(guild.member_ids), log_path, channels=channel_ids)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log_file.close()
        await aiml.stop()
        await discord_sim.stop()

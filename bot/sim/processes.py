"""Bot processes (`python -m bot [ROLE]`) against the two simulators, sharing one database: the harness of the
multi-process tests and of the scale-out benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

from bot.sim.aimlapi import AimlSimulator
from bot.sim.discord import DiscordSimulator
from bot.sim.wiring import settings_env

__all__ = ["SimDeployment"]

A = TypeVar("A", bound=AimlSimulator)

# The checkout the processes import `bot` from (what the test or benchmark itself runs).
SOURCE_ROOT = Path(__file__).resolve().parents[2]
BOT_NICENESS = 10
"""The bot processes run at this lower scheduling priority. Discord and the provider have machines of their own,
whose clocks no load of ours delays; the simulators standing in for them share the bots' cores and count rate
limits when their event loop gets to a request. Starved by a handful of busy bot processes, that loop fell behind
by up to 0.7 s and then counted a second and a half of requests as one second: 88 where the bots, by their own
clocks, never sent more than 41. Giving the simulators the CPU first keeps their clocks close to arrival."""


@dataclass
class SimDeployment(Generic[A]):
    """Each process is started with the simulators' settings, `settings` on top (as environment variables), the
    deployment's DATABASE_URL and one media folder for all (as a shared volume would be), at a lower priority
    than the simulators (`BOT_NICENESS`), and logs to `<name>.log` in `tmp`."""

    discord: DiscordSimulator
    aiml: A  # the AI/ML API simulator, or a benchmark's variant of it
    url: str  # DATABASE_URL
    tmp: Path
    settings: dict[str, Any] = field(default_factory=dict)
    procs: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls, discord: DiscordSimulator, aiml: A, url: str, tmp: Path, settings: dict[str, Any] | None = None
    ) -> AsyncIterator[Self]:
        """Start both simulators and yield the deployment (no bot process yet); at the end, stop its processes and
        the simulators. Meanwhile this process, the simulators', does not stop for the garbage collector: Discord
        does not pause for ours, and a full collection of a test run's or a benchmark's heap took up to 0.76 s,
        after which the simulator counted the requests that had arrived meanwhile as one burst (429s the bots
        never earned, as in `BOT_NICENESS`). Objects from before are frozen out of the collector's way; anything
        left in cycles meanwhile is collected once the deployment has stopped."""
        gc.collect()
        gc.freeze()
        collecting = gc.isenabled()
        gc.disable()
        try:
            await discord.start()
            await aiml.start()
            dep = cls(discord, aiml, url, tmp, dict(settings or {}))
            try:
                yield dep
            finally:
                await dep.stop_all()
                await aiml.stop()
                await discord.stop()
        finally:
            gc.unfreeze()
            if collecting:
                gc.enable()

    async def start(self, name: str, role: str | None = None, *, module: str = "bot", **extra: str) -> None:
        """`python -m MODULE [ROLE]` as the process `name` (its PROCESS_NAME, and the lease owner it writes), with
        `extra` environment variables."""
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(SOURCE_ROOT),
            "HOME": str(self.tmp),
            **settings_env(self.discord, self.aiml, self.tmp / "bot.db", **self.settings),
            "DATABASE_URL": self.url,
            "DEV_GUILD_ID": "",  # several servers: the commands are global
            "PROCESS_NAME": name,
            "MEDIA_DIR": str(self.tmp / "media"),
            **extra,
        }
        with (self.tmp / f"{name}.log").open("wb") as log:
            proc = self.procs[name] = await asyncio.create_subprocess_exec(
                sys.executable, "-m", module, *([role] if role else []), cwd=self.tmp, env=env, stdout=log, stderr=log
            )
        os.setpriority(os.PRIO_PROCESS, proc.pid, BOT_NICENESS)

    async def stop_all(self) -> None:
        """SIGTERM to every process still running (they stop as a deployment would), SIGKILL after 15 s."""
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    def logs(self) -> str:
        """The end of every process's log, for a failure message."""
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.tmp.glob("*.log"))

"""Crowds: many members run `/video` at once against a bot process (`python -m bot`, default settings) between
simulators that enforce Discord's limits (50 requests/s per bot with interaction callbacks exempt, 5 messages and
5 thread creations per 5 s per channel) and, if asked, a key rate limit on the AI/ML API (429, no Retry-After).

`run_crowd` drives one crowd to its last video and returns what happened; the scenarios (`burst`, `in_flight`,
`provider_limit`) turn that into their tables.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.profile import breakdown
from bench.report import Result, percentile
from bench.world import BotWorld, SpreadSimulator, bot_world, cpu_seconds
from bot.sim.aimlapi import JobScript
from bot.sim.discord import AttachmentSpec, InteractionHandle
from bot.sim.images import make_png
from bot.sim.wiring import SIM_KEY

__all__ = ["ONE_CHANNEL", "TEN_CHANNELS", "Crowd", "CrowdRun", "burst", "run_crowd"]


@dataclass(frozen=True)
class Crowd:
    name: str
    members: int  # one /video each
    channels: int  # spread over this many text channels
    durations: tuple[float, float]  # provider seconds per job, uniform
    per_second: float = 200.0  # how fast the commands arrive
    provider_limit: float | None = None  # the key's request rate limit at the AI/ML API simulator
    patience: float = 900.0  # give up waiting for the last video after this long


ONE_CHANNEL = Crowd("burst, one channel", 40, 1, (2.0, 6.0))
TEN_CHANNELS = Crowd("burst, ten channels", 200, 10, (2.0, 6.0))


@dataclass
class CrowdRun:
    crowd: Crowd
    handles: list[InteractionHandle]
    discord_requests: list[Any]
    provider_requests: int
    provider_limited: int
    inside: int  # videos in their thread
    outside: int  # videos posted in a channel itself
    until_last: float  # seconds from the first /video to the last video
    answer_cpu: float  # bot CPU seconds until every /video was answered
    cpu: float  # bot CPU seconds until the last video
    lags: list[float]  # per delivered job: seconds from the provider's finish to the video in Discord
    spread: float  # seconds over which the commands were sent
    provider_durations: list[float]  # each generation's provider time, in the order they were submitted
    profile: list[tuple[str, float]] = field(default_factory=list)  # where the CPU went, if profiled

    @property
    def latencies(self) -> list[float]:
        return [h.acknowledged_at - h.created_at for h in self.handles if h.acknowledged_at is not None]

    @property
    def shown(self) -> list[float]:
        """Per member: seconds until the answer itself (the card, or a refusal) replaced "thinking…"."""
        return [h.shown_at - h.created_at for h in self.handles if h.shown_at is not None]

    @property
    def delivered(self) -> int:
        return self.inside + self.outside

    def limited(self) -> tuple[int, int]:
        """Discord 429s, and how many of them global."""
        hits = [r for r in self.discord_requests if r.status == 429]
        return len(hits), sum(1 for r in hits if isinstance(r.response_json, dict) and r.response_json.get("global"))


def _videos(w: BotWorld) -> tuple[list[float], list[float]]:
    """When each video was posted: (in its thread, in a channel itself)."""
    inside: list[float] = []
    outside: list[float] = []
    parents = set(w.channels)
    for channel in list(w.discord.channels.values()):  # one pass: this runs on the simulators' event loop
        if channel.id in parents:
            outside += [m.created_at for m in w.discord.messages(channel.id) if m.attachments]
        elif channel.is_thread and channel.parent_id in parents:
            inside += [m.created_at for m in w.discord.messages(channel.id) if m.attachments]
    return inside, outside


async def _until_all_videos(w: BotWorld, expected: int, patience: float) -> None:
    # Looked at twice a second, not at every simulator event: counting thousands of messages on every request
    # would stall the simulators' event loop, and with it their idea of when requests arrived.
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        inside, outside = _videos(w)
        if len(inside) + len(outside) >= expected:
            return
        await asyncio.sleep(0.5)


def _lags(w: BotWorld, aiml: SpreadSimulator, database: Path) -> list[float]:
    """Provider finish → video posted, per delivered job (the bot's own database says which message is whose)."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT generation_id, delivered_message_id FROM jobs WHERE delivered_message_id IS NOT NULL"
        ).fetchall()
    lags = []
    for generation_id, message_id in rows:
        message = w.discord.message(int(message_id))
        finished = aiml.finish.get(generation_id)
        if message is not None and finished is not None:
            lags.append(message.created_at - finished)
    return lags


def _profiled(folder: str) -> list[tuple[str, float]]:
    found = sorted(Path(folder).glob("*.prof"))
    return breakdown(found[0]) if found else []


async def run_crowd(crowd: Crowd, *, profile: bool = False) -> CrowdRun:
    """Run `crowd` to its last video (or `patience`); with `profile`, the bot runs under cProfile."""
    png = make_png(64, 48)
    images = {"image1": AttachmentSpec("fox.png", "image/png", png, width=1024, height=768)}
    # Wall-clock time, so finish times compare with the Discord simulator's message times.
    aiml = SpreadSimulator(
        SIM_KEY, default_script=JobScript(), durations=crowd.durations, clock=time.time,
        requests_per_second=crowd.provider_limit,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as prof_dir:
        if profile:
            os.environ["REELBOT_BENCH_PROFILE"] = prof_dir
        try:
            # Default settings: only the simulators' addresses (and their credentials) are the benchmark's.
            async with bot_world(
                Path(tmp), members=crowd.members, channels=crowd.channels, aiml=aiml, poll_interval_seconds=10
            ) as w:
                before = len(w.discord.requests)
                cpu_before = cpu_seconds(w.proc.pid)
                first = time.monotonic()
                handles = []
                for i, member in enumerate(w.members):
                    channel = w.channels[i % len(w.channels)]
                    handles.append(
                        await w.discord.invoke_command(
                            "video", user_id=member, channel_id=channel, options={"prompt": "a fox"}, attachments=images
                        )
                    )
                    await asyncio.sleep(max(0.0, first + (i + 1) / crowd.per_second - time.monotonic()))
                await asyncio.gather(*(h.wait_response(timeout=30) for h in handles), return_exceptions=True)
                answer_cpu = cpu_seconds(w.proc.pid) - cpu_before
                accepted = sum(1 for h in handles if h.acknowledged_at is not None and not h.ephemeral)
                await _until_all_videos(w, accepted, crowd.patience)
                cpu = cpu_seconds(w.proc.pid) - cpu_before
                inside, outside = _videos(w)
                posted = inside + outside
                until_last = (max(posted) - min(h.created_at for h in handles)) if posted else float("nan")
                lags = _lags(w, aiml, Path(tmp) / "bot.db")
                requests = w.discord.requests[before:]
                provider_requests = sum(1 for r in aiml.requests if r.path.startswith("/v2/"))
                submitted = sorted(aiml.generations.values(), key=lambda gen: gen.created)
                durations = [aiml.finish[gen.id] - gen.created for gen in submitted if gen.id in aiml.finish]
        finally:
            os.environ.pop("REELBOT_BENCH_PROFILE", None)
        where = _profiled(prof_dir) if profile else []
    created = [h.created_at for h in handles]
    return CrowdRun(
        crowd=crowd,
        handles=handles,
        discord_requests=requests,
        provider_requests=provider_requests,
        provider_limited=aiml.rate_limited,
        inside=len(inside),
        outside=len(outside),
        until_last=until_last,
        answer_cpu=answer_cpu,
        cpu=cpu,
        lags=lags,
        spread=max(created) - min(created),
        provider_durations=durations,
        profile=where,
    )


def add_common(result: Result, run: CrowdRun) -> None:
    """The rows every crowd table has: answers, 429s, videos and where they went."""
    n = run.crowd.members
    latencies = run.latencies
    p99 = percentile(latencies, 99)
    result.add("answered", f"{len(latencies)} of {n} (sent over {run.spread:.1f} s)", f"{n}", len(latencies) == n)
    result.add("initial response p50", f"{percentile(latencies, 50) * 1000:.0f} ms")
    result.add("initial response p99", f"{p99 * 1000:.0f} ms", "<= 100 ms", p99 <= 0.1)
    shown = run.shown
    result.add("card shown p50 / p99", f"{percentile(shown, 50):.2f} s / {percentile(shown, 99):.2f} s")
    limited, global_ = run.limited()
    result.add("Discord 429s (of them global)", f"{limited} ({global_})", "0", limited == 0)
    result.add("videos delivered", f"{run.delivered} of {n}", f"{n}", run.delivered == n)
    result.add("videos outside their thread", str(run.outside), "0", run.outside == 0)


def add_notes(result: Result, run: CrowdRun) -> None:
    limited = [r for r in run.discord_requests if r.status == 429]
    if limited:
        routes = collections.Counter(f"{r.method} {r.route}" for r in limited)
        result.notes.append("Discord 429s by route: " + ", ".join(f"{k} x{v}" for k, v in routes.most_common()))
    if run.profile:
        shares = ", ".join(f"{name} {share:.0%}" for name, share in run.profile)
        result.notes.append(f"Where the bot's CPU went (cProfile, which itself slows the bot down): {shares}.")
    result.notes.append(
        "Initial response is the simulator's time from creating the interaction (before the gateway dispatch) to "
        'receiving the callback (a public "thinking…"); card shown, from creating it to the card replacing that '
        "message. The bot runs as `python -m bot`; the simulators run in the benchmark's process."
    )


async def burst(crowd: Crowd, *, profile: bool = False) -> Result:
    run = await run_crowd(crowd, profile=profile)
    result = Result(
        crowd.name,
        f"{crowd.members} members run /video within one second over {crowd.channels} channel(s); provider time "
        f"{crowd.durations[0]:g}–{crowd.durations[1]:g} s; default settings",
    )
    add_common(result, run)
    result.add("time until the last video", f"{run.until_last:.1f} s")
    result.add("bot CPU per /video until all were answered", f"{run.answer_cpu / crowd.members * 1000:.1f} ms")
    result.add("bot CPU per /video, to delivery", f"{run.cpu / crowd.members * 1000:.1f} ms")
    add_notes(result, run)
    return result

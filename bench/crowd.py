"""Crowds on Discord: many members run `/video` at once, against a simulator that enforces Discord's limits
(50 requests/s per bot with interaction callbacks exempt, 5 messages and 5 thread creations per 5 s per channel).

Two shapes, both to the last delivered video, at the default settings:
- one channel: 40 `/video` in one second in a single channel, videos ready 2–6 s after the submit (most are ready
  before Discord lets their thread be created, which is what used to push videos out of their thread);
- ten channels: 200 `/video` in one second spread over 10 channels (enough traffic to cross the global limit
  when thread creations and card edits are fired together).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.report import Result, percentile
from bench.world import BotWorld, SpreadSimulator, bot_world, cpu_seconds
from bot.sim.aimlapi import JobScript
from bot.sim.discord import AttachmentSpec
from bot.sim.images import make_png
from bot.sim.wiring import SIM_KEY

__all__ = ["ONE_CHANNEL", "TEN_CHANNELS", "Crowd", "run"]


@dataclass(frozen=True)
class Crowd:
    name: str
    members: int
    channels: int
    durations: tuple[float, float]  # provider seconds, uniform


ONE_CHANNEL = Crowd("burst, one channel", 40, 1, (2.0, 6.0))
TEN_CHANNELS = Crowd("burst, ten channels", 200, 10, (2.0, 6.0))


def _videos(w: BotWorld) -> tuple[int, int]:
    """(videos in their thread, videos posted in a channel itself)."""
    inside = outside = 0
    for channel in w.channels:
        outside += sum(1 for m in w.discord.messages(channel) if m.attachments)
        for thread in w.discord.threads(channel):
            inside += sum(1 for m in w.discord.messages(thread.id) if m.attachments)
    return inside, outside


async def run(crowd: Crowd, *, patience: float = 600.0) -> Result:
    result = Result(
        crowd.name,
        f"{crowd.members} members run /video within one second over {crowd.channels} channel(s); provider time "
        f"{crowd.durations[0]:g}–{crowd.durations[1]:g} s; default settings",
    )
    started = time.perf_counter()
    png = make_png(64, 48)
    images = {"image1": AttachmentSpec("fox.png", "image/png", png, width=1024, height=768)}
    aiml = SpreadSimulator(SIM_KEY, default_script=JobScript(), durations=crowd.durations)
    with tempfile.TemporaryDirectory() as tmp:
        # Default settings: only the addresses of the simulators are the test's (poll interval included).
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
                await asyncio.sleep(1.0 / crowd.members)
            await asyncio.gather(*(h.wait_response(timeout=30) for h in handles), return_exceptions=True)
            answer_cpu = cpu_seconds(w.proc.pid) - cpu_before
            accepted = sum(1 for h in handles if h.acknowledged_at is not None and not h.ephemeral)
            with contextlib.suppress(TimeoutError):
                await w.discord.wait_for(lambda: sum(_videos(w)) >= accepted, timeout=patience)
            last_video = time.monotonic() - first
            inside, outside = _videos(w)
            bot_cpu = cpu_seconds(w.proc.pid) - cpu_before
            requests = w.discord.requests[before:]
    result.seconds = time.perf_counter() - started
    latencies = [h.acknowledged_at - h.created_at for h in handles if h.acknowledged_at is not None]
    limited = [r for r in requests if r.status == 429]
    global_ = [r for r in limited if isinstance(r.response_json, dict) and r.response_json.get("global")]
    p99 = percentile(latencies, 99)
    n = crowd.members
    spread = max(h.created_at for h in handles) - min(h.created_at for h in handles)
    result.add("answered", f"{len(latencies)} of {n} (sent over {spread:.2f} s)", f"{n}", len(latencies) == n)
    result.add("initial response p50", f"{percentile(latencies, 50) * 1000:.0f} ms")
    result.add("initial response p99", f"{p99 * 1000:.0f} ms", "<= 100 ms", p99 <= 0.1)
    result.add("Discord 429s (of them global)", f"{len(limited)} ({len(global_)})", "0", not limited)
    result.add("videos delivered", f"{inside + outside} of {accepted}", f"{accepted}", inside + outside == accepted)
    result.add("videos outside their thread", str(outside), "0", outside == 0)
    result.add("time until the last video", f"{last_video:.1f} s")
    result.add("bot CPU per /video until all were answered", f"{answer_cpu / n * 1000:.1f} ms")
    result.add("bot CPU per /video, to delivery", f"{bot_cpu / n * 1000:.1f} ms")
    if limited:
        routes = collections.Counter(f"{r.method} {r.route}" for r in limited)
        result.notes.append("429s by route: " + ", ".join(f"{k} x{v}" for k, v in routes.most_common()))
    result.notes.append(
        "Latency is the simulator's time from creating the interaction (before the gateway dispatch) to receiving "
        "the callback. The bot runs as `python -m bot` in its own process; the simulators share the other core."
    )
    return result

"""Discord budget: REST requests per delivered job, and 429s drawn at the simulator's default buckets
(5 messages per 5 s per channel, thread creation likewise, 50 requests/s globally)."""

from __future__ import annotations

import collections
import contextlib
import tempfile
import time
from pathlib import Path

from bench.report import Result
from bench.world import bot_world
from bot.sim.aimlapi import JobScript
from bot.sim.discord import AttachmentSpec
from bot.sim.images import make_png

JOBS = 12


async def run(jobs: int = JOBS) -> Result:
    result = Result("Discord budget", f"{jobs} members each run /video once in the same channel, to delivery")
    started = time.perf_counter()
    png = make_png(64, 48)
    images = {"image1": AttachmentSpec("fox.png", "image/png", png, width=1024, height=768)}
    with tempfile.TemporaryDirectory() as tmp:
        async with bot_world(Path(tmp), members=jobs, script=JobScript(queued_s=0.5, generating_s=2.0)) as w:
            before = len(w.discord.requests)
            cards = []
            for member in w.members:
                handle = await w.discord.invoke_command(
                    "video", user_id=member, channel_id=w.channel, options={"prompt": "a fox"}, attachments=images
                )
                cards.append(await handle.wait_response(timeout=10))

            def delivered() -> int:
                return sum(1 for c in cards if any(m.attachments for m in w.discord.messages(c.id)))

            with contextlib.suppress(TimeoutError):
                await w.discord.wait_for(lambda: delivered() == jobs, timeout=180)
            done = delivered()
            requests = [r for r in w.discord.requests[before:] if not r.path.startswith("/attachments")]
            limited = [r for r in requests if r.status == 429]
            by_route = collections.Counter(f"{r.method} {r.route}" for r in requests)
    result.seconds = time.perf_counter() - started
    result.add("jobs delivered", f"{done} of {jobs}", f"{jobs}", done == jobs)
    result.add("REST requests per job", f"{len(requests) / jobs:.1f}")
    result.add("429s received", str(len(limited)), "0", not limited)
    for route, count in by_route.most_common(6):
        result.add(f"  {route}", f"{count / jobs:.1f} per job")
    if limited:
        routes = collections.Counter(f"{r.method} {r.route}" for r in limited)
        result.notes.append("429s by route: " + ", ".join(f"{k} x{v}" for k, v in routes.items()))
        result.notes.append(
            "Every bot-token request waits for its route's bucket in the Discord scheduler "
            "(docs/traffic-control.md), so a 429 here means a bucket the scheduler did not know or misjudged: "
            "see the routes above."
        )
    return result

"""Large delivery: a 95 MiB video to a boost-tier-3 guild (100 MiB upload limit) → the bot process's RSS growth
while it downloads the file from the provider and uploads it to Discord."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from pathlib import Path

from bench.report import Result
from bench.world import bot_world
from bot.sim.aimlapi import JobScript
from bot.sim.discord import AttachmentSpec
from bot.sim.images import make_png

MIB = 1024 * 1024
SIZE = 95 * MIB


async def run(size: int = SIZE) -> Result:
    result = Result("large delivery", f"a {size / MIB:.0f} MiB video posted to a boost-tier-3 guild")
    started = time.perf_counter()
    png = make_png(64, 48)
    images = {"image1": AttachmentSpec("fox.png", "image/png", png, width=1024, height=768)}
    script = JobScript(queued_s=0.5, generating_s=1.0, video_size=size)
    with tempfile.TemporaryDirectory() as tmp:
        async with bot_world(Path(tmp), premium_tier=3, script=script) as w:
            await asyncio.sleep(1.0)  # let start-up allocations settle
            baseline = w.rss_kib()
            peak_before = w.peak_rss_kib()
            stop = asyncio.Event()
            sampler = asyncio.create_task(w.sample_rss(stop))
            handle = await w.discord.invoke_command(
                "video", user_id=w.members[0], channel_id=w.channel, options={"prompt": "a fox"}, attachments=images
            )
            card = await handle.wait_response(timeout=10)

            def posted() -> list[int]:
                return [a.size for m in w.discord.messages(card.id) for a in m.attachments]

            with contextlib.suppress(TimeoutError):
                await w.discord.wait_for(lambda: bool(posted()), timeout=120)
            stop.set()
            await sampler
            peak = max([w.peak_rss_kib(), *w.rss_samples])
            sizes = posted()
    result.seconds = time.perf_counter() - started
    growth_mib = (peak - max(baseline, 0)) / 1024
    posted_ok = bool(sizes) and sizes[0] == size
    result.add(
        "video posted as a file", f"{sizes[0] / MIB:.1f} MiB" if sizes else "no", f"{size / MIB:.0f} MiB", posted_ok
    )
    result.add("bot RSS before", f"{baseline / 1024:.0f} MiB")
    result.add("bot peak RSS during download and upload", f"{peak / 1024:.0f} MiB")
    result.add("RSS growth", f"{growth_mib:.1f} MiB", "<= 16 MiB", growth_mib <= 16)
    if peak_before > baseline:
        result.notes.append(
            f"The process had already peaked at {peak_before / 1024:.0f} MiB during start-up (command sync, "
            "imports); growth is measured from the settled RSS before the job."
        )
    return result

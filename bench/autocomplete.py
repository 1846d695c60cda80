"""Autocomplete: members type into `/video character1` all at once → how long the suggestions take, against Discord's
3-second window (an autocomplete answer cannot be deferred), on a server full of characters."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.report import Result, percentile
from bench.world import FIRST_MEMBER, bot_world
from bot.domain.cast import Character
from bot.sim.discord import default_guild
from bot.storage import Store

MEMBERS = 100
PER_MEMBER = 25  # CHARACTERS_PER_MEMBER's default: every member at the limit
SHARED = 100  # SHARED_CHARACTERS_PER_SERVER's default: the server at the limit


async def _seed(path: Path, guild_id: int, channel_id: int, members: int) -> None:
    """Every member at their limit and the server's shared pool full, written before the bot starts."""
    sheet = 9_000_000_000_000_000
    async with await Store.open(path) as store:
        owners = [(FIRST_MEMBER + m, f"Hero {m} ", False) for m in range(members)]
        for owner, prefix, shared in [*owners, (1, "Shared ", True)]:
            for n in range(SHARED if shared else PER_MEMBER):
                sheet += 10
                character = Character(sheet, guild_id, owner, f"{prefix}{n}", shared, channel_id, (sheet + 1,), 0.0)
                await store.characters.create(character, personal_limit=PER_MEMBER, shared_limit=SHARED)


async def run(members: int = MEMBERS) -> Result:
    result = Result(
        "autocomplete",
        f"{members} members type into /video character1 within one second; each has {PER_MEMBER} characters and "
        f"the server shares {SHARED}",
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        guild = default_guild()  # the guild bot_world's simulator will have (same ids)
        await _seed(Path(tmp) / "bot.db", guild.id, guild.text_channel_id, members)
        async with bot_world(Path(tmp), members=members) as w:
            handles = []
            for n, member in enumerate(w.members):
                handles.append(
                    await w.discord.autocomplete(
                        "video", user_id=member, channel_id=w.channel, focused="character1", value=("h", "s", "")[n % 3]
                    )
                )
                await asyncio.sleep(1.0 / members)
            answers = await asyncio.gather(*(h.wait_choices(timeout=10) for h in handles), return_exceptions=True)
    result.seconds = time.perf_counter() - started
    latencies = [h.acknowledged_at - h.created_at for h in handles if h.acknowledged_at is not None]
    full = sum(1 for a in answers if isinstance(a, list) and len(a) == 25)
    worst = max(latencies) if latencies else float("inf")
    result.add("answered", f"{len(latencies)} of {members}", f"{members}", len(latencies) == members)
    result.add("answers with the full 25 suggestions", f"{full} of {members}")
    result.add("answer p50", f"{percentile(latencies, 50) * 1000:.0f} ms")
    result.add("answer p99", f"{percentile(latencies, 99) * 1000:.0f} ms")
    result.add("answer max", f"{worst * 1000:.0f} ms", "< 3,000 ms", worst < 3.0)
    result.notes.append(
        "Each answer reads the member's own and the server's shared characters from the store (125 rows here) "
        "and filters them in Python; latency is the simulator's time from creating the interaction to receiving "
        "the callback, as for burst."
    )
    return result

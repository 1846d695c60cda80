"""`python -m bot.sim.discord` runs alone and a discord.py client logs in to it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from bot.discord_endpoints import point_discord_at
from tests.discord_sim_bot import SimTestBot


async def test_cli_serves_a_guild_a_client_can_log_into() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.sim.discord",
        "--port",
        "0",
        "--token",
        "CLI-TOKEN",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        rest = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode().rstrip("\n")
        gateway = (await asyncio.wait_for(proc.stdout.readline(), timeout=5)).decode().rstrip("\n")
        assert rest.startswith("REST http://127.0.0.1:")
        assert rest.endswith("/api/v10")
        port = rest.removeprefix("REST http://127.0.0.1:").removesuffix("/api/v10")
        assert gateway == f"GATEWAY ws://127.0.0.1:{port}/gateway"

        point_discord_at(rest.removeprefix("REST "), gateway.removeprefix("GATEWAY "))
        bot = SimTestBot(0, sync_global=True)
        task = asyncio.create_task(bot.start("CLI-TOKEN"))
        try:
            await asyncio.wait_for(bot.ready_event.wait(), timeout=10)
            [guild] = bot.guilds
            assert {c.name for c in guild.channels} >= {"general", "showcase"}
            assert guild.premium_tier == 0
            assert len(bot.seen["synced"]) == 5
        finally:
            await bot.close()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=5)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

"""One process of a crowd sharing a bot token: `python -m tests.e2e.rest_crowd`, with the bot's settings in the
environment (as `python -m bot` takes them) and what to do in `CROWD_*` variables.

It is wired by `bot.runner.assemble` exactly as a gateway or worker process is (so it paces with the traffic state
that wiring picks), logs in over REST, says it is ready (a file `CROWD_DIR/ready-<PROCESS_NAME>`), waits for the
file `CROWD_DIR/go`, then posts `CROWD_ROUNDS` messages to each channel of `CROWD_CHANNELS` (comma-separated ids),
all at once, and exits. Used by `tests/e2e/test_shared_limits.py`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from discord.http import Route

from bot.app import StartupOptions
from bot.runner import assemble
from bot.settings import load_settings


async def main() -> None:
    settings = load_settings()
    folder = Path(os.environ["CROWD_DIR"])
    channels = [int(c) for c in os.environ["CROWD_CHANNELS"].split(",")]
    rounds = int(os.environ["CROWD_ROUNDS"])
    async with assemble(settings, options=StartupOptions(sync_commands=False, start_poller=False)) as bot:
        await bot.login(settings.discord_token.get_secret_value())
        (folder / f"ready-{settings.process_name}").touch()
        while not (folder / "go").exists():
            await asyncio.sleep(0.02)
        await asyncio.gather(
            *(
                bot.http.request(
                    Route("POST", "/channels/{channel_id}/messages", channel_id=channel),
                    json={"content": f"{settings.process_name}, round {n}"},
                )
                for n in range(rounds)
                for channel in channels
            )
        )


if __name__ == "__main__":
    asyncio.run(main())

"""Run the Discord simulator alone: `python -m bot.sim.discord --port 8200 --token TOKEN`.

Prints `REST http://127.0.0.1:PORT/api/v10` and `GATEWAY ws://127.0.0.1:PORT/gateway` (then flushes), and
serves the default guild until SIGINT or SIGTERM. `--port 0` picks a free port (the printed lines tell which).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from .guilds import default_guild
from .server import DiscordSimulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bot.sim.discord", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8200, help="TCP port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--token", default="TOKEN", help="the bot token the simulator accepts")
    parser.add_argument("--premium-tier", type=int, default=0, choices=[0, 1, 2, 3], help="guild boost tier")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Start the simulator, print its URLs, wait for SIGINT/SIGTERM, stop."""
    guild = default_guild()
    guild.premium_tier = args.premium_tier
    sim = DiscordSimulator(token=args.token, guilds=[guild], port=args.port)
    await sim.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    print(f"REST {sim.rest_url}", flush=True)
    print(f"GATEWAY {sim.gateway_url}", flush=True)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

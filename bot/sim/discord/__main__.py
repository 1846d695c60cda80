"""Run the Discord simulator alone: `python -m bot.sim.discord --port 8200 --token TOKEN`.

Prints `REST http://127.0.0.1:PORT/api/v10` and `GATEWAY ws://127.0.0.1:PORT/gateway` (then flushes), and
serves the default guild (or `--guilds N` guilds, spread over `--shards`) until SIGINT or SIGTERM. `--port 0`
picks a free port (the printed lines tell which).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from .guilds import default_guild, guild_on_shard, shard_of
from .server import DiscordSimulator
from .state import SimGuild


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bot.sim.discord", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8200, help="TCP port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--token", default="TOKEN", help="the bot token the simulator accepts")
    parser.add_argument("--premium-tier", type=int, default=0, choices=[0, 1, 2, 3], help="guild boost tier")
    parser.add_argument(
        "--guilds", type=int, default=1, help="how many guilds; with --shards N they are spread over the N shards"
    )
    parser.add_argument("--shards", type=int, default=1, help="shard count GET /gateway/bot recommends")
    parser.add_argument(
        "--max-concurrency", type=int, default=1, help="IDENTIFYs allowed per 5 seconds (GET /gateway/bot)"
    )
    args = parser.parse_args(argv)
    if args.guilds < 1 or args.shards < 1 or args.max_concurrency < 1:
        parser.error("--guilds, --shards and --max-concurrency must be at least 1")
    return args


def build_guilds(count: int, shards: int) -> list[SimGuild]:
    """The default guild, then guilds placed round-robin on the shards after the default guild's."""
    guilds = [default_guild()]
    first_shard = shard_of(guilds[0].id, shards)
    for n in range(1, count):
        shard = (first_shard + n) % shards
        guilds.append(guild_on_shard(shard, shards, index=n))
    return guilds


async def serve(args: argparse.Namespace) -> None:
    """Start the simulator, print its URLs, wait for SIGINT/SIGTERM, stop."""
    guilds = build_guilds(args.guilds, args.shards)
    for guild in guilds:
        guild.premium_tier = args.premium_tier
    sim = DiscordSimulator(
        token=args.token, guilds=guilds, port=args.port, shards=args.shards, max_concurrency=args.max_concurrency
    )
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

"""`python -m bench [scenario ...]`: run the benchmarks (all by default), print a table for each and append the
tables to docs/benchmarks.md. `--no-write` only prints; `--quick` runs smaller sizes (for trying things out);
`--profile` runs the bot under cProfile in the crowd scenarios and says where its CPU went."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import replace

from bench import (
    autocomplete,
    crowd,
    discord_budget,
    in_flight,
    large_delivery,
    polling_peer,
    provider_limit,
    quota_race,
    scale_out,
)
from bench.report import Result, machine, print_result, write_report

SCENARIOS: dict[str, Callable[[bool, bool], Result]] = {
    "burst_one_channel": lambda quick, profile: asyncio.run(
        crowd.burst(replace(crowd.ONE_CHANNEL, members=10) if quick else crowd.ONE_CHANNEL, profile=profile)
    ),
    "burst_ten_channels": lambda quick, profile: asyncio.run(
        crowd.burst(replace(crowd.TEN_CHANNELS, members=50) if quick else crowd.TEN_CHANNELS, profile=profile)
    ),
    "in_flight": lambda quick, profile: in_flight.run(100 if quick else in_flight.JOBS, profile=profile),
    "provider_limit": lambda quick, profile: asyncio.run(
        provider_limit.run(60 if quick else provider_limit.JOBS, profile=profile)
    ),
    "polling_peer": lambda quick, profile: polling_peer.run(200 if quick else polling_peer.JOBS),
    "large_delivery": lambda quick, profile: asyncio.run(
        large_delivery.run(20 * 1024 * 1024 if quick else large_delivery.SIZE)
    ),
    "quota_race": lambda quick, profile: asyncio.run(quota_race.run()),
    "discord_budget": lambda quick, profile: asyncio.run(discord_budget.run(4 if quick else discord_budget.JOBS)),
    "autocomplete": lambda quick, profile: asyncio.run(autocomplete.run(20 if quick else autocomplete.MEMBERS)),
    "scale_workers": lambda quick, profile: asyncio.run(
        scale_out.workers(replace(scale_out.WORKERS, members=10, channels=3) if quick else scale_out.WORKERS)
    ),
    "scale_out": lambda quick, profile: asyncio.run(
        scale_out.takeover(replace(scale_out.TAKEOVER, members=8, channels=2) if quick else scale_out.TAKEOVER)
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenarios", nargs="*", choices=[*SCENARIOS, []], help="default: all, in this order")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to docs/benchmarks.md")
    parser.add_argument("--quick", action="store_true", help="smaller sizes; results are not comparable")
    parser.add_argument(
        "--profile", action="store_true", help="run the bot under cProfile and say where its CPU went (slower)"
    )
    args = parser.parse_args(argv)
    # SIGTERM (a timeout, a stopped CI job) unwinds like Ctrl-C, so the scenarios stop their bot processes and
    # remove their PostgreSQL clusters.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    logging.basicConfig(level=logging.ERROR)  # the simulators' and clients' warnings would drown the tables
    names = args.scenarios or list(SCENARIOS)
    print(f"Reelbot benchmarks on {machine()}")
    results = []
    for name in names:
        started = time.perf_counter()
        result = SCENARIOS[name](args.quick, args.profile)
        if not result.seconds:
            result.seconds = time.perf_counter() - started
        print_result(result)
        results.append(result)
    if not args.no_write and not args.quick:
        write_report(results)
        print("\nappended to docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

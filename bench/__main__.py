"""`python -m bench [scenario ...]`: run the benchmarks (all by default), print a table for each and append the
tables to docs/benchmarks.md. `--no-write` only prints; `--quick` runs smaller sizes (for trying things out)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Callable

from bench import autocomplete, burst, discord_budget, in_flight, large_delivery, polling_peer, quota_race
from bench.report import Result, machine, print_result, write_report

SCENARIOS: dict[str, Callable[[bool], Result]] = {
    "burst": lambda quick: asyncio.run(burst.run(50 if quick else burst.MEMBERS)),
    "in_flight": lambda quick: in_flight.run(500 if quick else in_flight.JOBS),
    "polling_peer": lambda quick: polling_peer.run(200 if quick else polling_peer.JOBS),
    "large_delivery": lambda quick: asyncio.run(large_delivery.run(20 * 1024 * 1024 if quick else large_delivery.SIZE)),
    "quota_race": lambda quick: asyncio.run(quota_race.run()),
    "discord_budget": lambda quick: asyncio.run(discord_budget.run(4 if quick else discord_budget.JOBS)),
    "autocomplete": lambda quick: asyncio.run(autocomplete.run(20 if quick else autocomplete.MEMBERS)),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenarios", nargs="*", choices=[*SCENARIOS, []], help="default: all, in this order")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to docs/benchmarks.md")
    parser.add_argument("--quick", action="store_true", help="smaller sizes; results are not comparable")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the simulators' and clients' warnings would drown the tables
    names = args.scenarios or list(SCENARIOS)
    print(f"Reelbot benchmarks on {machine()}")
    results = []
    for name in names:
        started = time.perf_counter()
        result = SCENARIOS[name](args.quick)
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

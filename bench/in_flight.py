"""In flight: 1,000 members run `/video` over 20 seconds in 50 channels, generations take 20–60 s, so all of them
are in flight together, and the bot takes every job to its video at the default settings (the provider pace
found, not set; Discord paced). How fast commands can arrive is the bursts' subject; this one is the pipeline's."""

from __future__ import annotations

import asyncio

from bench.crowd import Crowd, add_common, add_notes, run_crowd
from bench.fleet import FleetConfig, run_fleet
from bench.report import Result, percentile

JOBS = 1_000
POLL_INTERVAL = 10.0  # the default POLL_INTERVAL_SECONDS


def crowd(jobs: int = JOBS) -> Crowd:
    return Crowd("in flight", jobs, max(1, jobs // 20), (20.0, 60.0), per_second=50.0)


def run(jobs: int = JOBS, *, profile: bool = False) -> Result:
    scenario = crowd(jobs)
    result = Result(
        "in flight",
        f"{jobs:,} jobs started at {scenario.per_second:g} per second over {scenario.channels} channels, generations "
        "of 20–60 s, default settings, real time",
    )
    outcome = asyncio.run(run_crowd(scenario, profile=profile))
    # The job pipeline alone, as the earlier in-flight run measured it (58 s per 1,000 jobs): the real poller, store,
    # provider client and downloader against the provider simulator in its own process, Discord a no-op stand-in,
    # time compressed (the pacer still paces in real time: nothing is switched off).
    pipeline = run_fleet(FleetConfig(jobs=jobs, durations={5: scenario.durations, 10: scenario.durations}))
    add_common(result, outcome)
    p95 = percentile(outcome.lags, 95)
    result.add("time until all delivered", f"{outcome.until_last:.0f} s")
    result.add("delivery lag after the provider finished, p50", f"{percentile(outcome.lags, 50):.1f} s")
    limit = 2 * POLL_INTERVAL
    result.add("delivery lag after the provider finished, p95", f"{p95:.1f} s", f"<= {limit:.0f} s", p95 <= limit)
    result.add("provider requests per job", f"{outcome.provider_requests / jobs:.2f}")
    result.add("provider 429s", str(outcome.provider_limited))
    whole = outcome.cpu / jobs * 1000
    profiled = " (profiled: slower)" if profile else ""
    result.add(f"bot CPU seconds per 1,000 jobs, everything{profiled}", f"{whole:.1f} s")
    per_thousand = pipeline.cpu_seconds / jobs * 1000
    result.add(
        "job pipeline CPU seconds per 1,000 jobs (as in the 58 s run)", f"{per_thousand:.1f} s", "<= 15 s",
        per_thousand <= 15,
    )  # fmt: skip
    result.add("job pipeline: provider requests per job, p95 lag", f"{pipeline.requests_per_job:.2f}, "
               f"{percentile(pipeline.lags, 95):.1f} s")  # fmt: skip
    result.notes.append(
        '"Everything" is the bot process\'s own CPU from the first /video to the last video: answering the '
        "commands, threads, card edits, submits, polls, downloads and uploads. The job pipeline figure measures "
        "what the earlier in-flight run measured (poller, store, provider client, downloader; Discord a no-op "
        "stand-in; time compressed, the provider pace still found in real time). Delivery lag is from the "
        "simulator's finish time to the video message in Discord, per job (matched through the bot's database)."
    )
    add_notes(result, outcome)
    return result

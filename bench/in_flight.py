"""In flight: 1,000 members run `/video` within a few seconds over 50 channels, generations take 20–60 s, and the
bot takes every job to its video at the default settings (the provider pace found, not set; Discord paced)."""

from __future__ import annotations

from bench.crowd import Crowd, add_common, add_notes, run_crowd
from bench.report import Result, percentile

JOBS = 1_000
POLL_INTERVAL = 10.0  # the default POLL_INTERVAL_SECONDS


def crowd(jobs: int = JOBS) -> Crowd:
    return Crowd("in flight", jobs, max(1, jobs // 20), (20.0, 60.0))


async def run(jobs: int = JOBS, *, profile: bool = False) -> Result:
    scenario = crowd(jobs)
    result = Result(
        "in flight",
        f"{jobs:,} jobs accepted within a few seconds over {scenario.channels} channels, generations of 20–60 s, "
        "default settings, real time",
    )
    outcome = await run_crowd(scenario, profile=profile)
    add_common(result, outcome)
    p95 = percentile(outcome.lags, 95)
    result.add("time until all delivered", f"{outcome.until_last:.0f} s")
    result.add("delivery lag after the provider finished, p50", f"{percentile(outcome.lags, 50):.1f} s")
    limit = 2 * POLL_INTERVAL
    result.add("delivery lag after the provider finished, p95", f"{p95:.1f} s", f"<= {limit:.0f} s", p95 <= limit)
    result.add("provider requests per job", f"{outcome.provider_requests / jobs:.2f}")
    result.add("provider 429s", str(outcome.provider_limited))
    per_thousand = outcome.cpu / jobs * 1000
    cpu_row = "bot CPU seconds per 1,000 jobs" + (" (profiled: slower)" if profile else "")
    result.add(cpu_row, f"{per_thousand:.1f} s", "<= 15 s", None if profile else per_thousand <= 15)
    result.notes.append(
        "CPU is the bot process's own, from the first /video to the last video: answering, threads, card edits, "
        "submits, polls, downloads and uploads. Delivery lag is from the simulator's finish time to the video "
        "message in Discord, per job (matched through the bot's database)."
    )
    add_notes(result, outcome)
    return result

"""Polling peer: the same jobs polled every 10 s from the submit (what most bots do) against the bot's adaptive
schedule (first poll two intervals before the fastest recent similar job finished, then every 0.9 ×
POLL_INTERVAL_SECONDS with jitter)."""

from __future__ import annotations

from bench.fleet import FleetConfig, FleetReport, run_fleet
from bench.report import Result, percentile

JOBS = 1_000


def _figures(report: FleetReport) -> tuple[float, float, float]:
    return report.requests_per_job, percentile(report.lags, 50), percentile(report.lags, 95)


def run(jobs: int = JOBS) -> Result:
    adaptive = run_fleet(FleetConfig(jobs=jobs))
    fixed = run_fleet(FleetConfig(jobs=jobs, fixed_interval=10.0))
    a_req, a_p50, a_p95 = _figures(adaptive)
    f_req, f_p50, f_p95 = _figures(fixed)
    result = Result("polling peer", f"{jobs:,} jobs, adaptive schedule against a fixed 10 s poll")
    result.seconds = adaptive.wall_seconds + fixed.wall_seconds
    result.add("requests per job, fixed 10 s", f"{f_req:.2f}")
    result.add("requests per job, adaptive", f"{a_req:.2f}")
    ratio = a_req / f_req
    result.add("requests ratio adaptive / fixed", f"{ratio:.2f}", "<= 0.5", ratio <= 0.5)
    result.add("delivery lag p50, fixed / adaptive", f"{f_p50:.1f} s / {a_p50:.1f} s")
    result.add("delivery lag p95, fixed / adaptive", f"{f_p95:.1f} s / {a_p95:.1f} s")
    lag_ratio = a_p95 / f_p95
    result.add("p95 lag ratio adaptive / fixed", f"{lag_ratio:.2f}", "<= 1.0", lag_ratio <= 1.0)
    if lag_ratio > 1.0:
        result.notes.append(
            "Jobs that finish before the first poll wait for it; with little history the fastest recent job is a "
            "poor guess of the fastest possible one. Earlier first polls trade requests for a shorter lag tail."
        )
    return result

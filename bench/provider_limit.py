"""Provider limit: the AI/ML API key allows 20 requests per second (and says so only with 429s, no Retry-After);
300 jobs must get through it. How many requests are refused, and how long it takes against the least time the
limit allows."""

from __future__ import annotations

from bench.crowd import Crowd, CrowdRun, add_common, add_notes, run_crowd
from bench.report import Result

JOBS = 300
LIMIT = 20.0
DURATIONS = (20.0, 60.0)


async def run(jobs: int = JOBS, *, profile: bool = False) -> Result:
    scenario = Crowd("provider limit", jobs, max(1, jobs // 20), DURATIONS, per_second=50.0, provider_limit=LIMIT)
    outcome = await run_crowd(scenario, profile=profile)
    result = Result(
        "provider limited to 20 requests/s",
        f"{jobs} jobs started at {scenario.per_second:g} per second over {scenario.channels} channels, generations of "
        f"20–60 s, the key limited to {LIMIT:g} requests/s (429 without Retry-After), default settings",
    )
    add_common(result, outcome)
    share = outcome.provider_limited / max(1, outcome.provider_requests)
    result.add("provider requests", f"{outcome.provider_requests:,} ({outcome.provider_requests / jobs:.2f} per job)")
    result.add("share answered 429", f"{share:.1%}", "<= 10 %", share <= 0.10)
    least = least_time(outcome, LIMIT)
    ratio = outcome.until_last / least
    result.add("time until all delivered", f"{outcome.until_last:.0f} s")
    result.add("least time the limit allows", f"{least:.0f} s")
    result.add("ratio", f"{ratio:.2f}", "<= 1.3", ratio <= 1.3)
    result.notes.append(
        "The least time the limit allows: every job needs a submit and at least one poll (2 requests per job at "
        f"{LIMIT:g}/s), and no job can be done before it was started, submitted (the k-th submit no sooner than k "
        "turns of the limit) and generated (its actual provider time, from the simulator). Time until all "
        "delivered counts from the first /video."
    )
    add_notes(result, outcome)
    return result


def least_time(outcome: CrowdRun, limit: float) -> float:
    """The soonest every job could have been delivered with `limit` requests per second and nothing wasted."""
    jobs = outcome.crowd.members
    start = min(h.created_at for h in outcome.handles)
    arrivals = sorted(h.created_at - start for h in outcome.handles)
    done = [
        max(arrival, (k + 1) / limit) + duration
        for k, (arrival, duration) in enumerate(zip(arrivals, outcome.provider_durations, strict=False))
    ]
    return max([2 * jobs / limit, *done])

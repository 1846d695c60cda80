"""Provider limit: the AI/ML API key allows 20 requests per second (and says so only with 429s, no Retry-After);
300 jobs must get through it. How many requests are refused, and how long it takes against the least time the
limit allows."""

from __future__ import annotations

from bench.crowd import Crowd, add_common, add_notes, run_crowd
from bench.report import Result

JOBS = 300
LIMIT = 20.0
DURATIONS = (20.0, 60.0)


async def run(jobs: int = JOBS, *, profile: bool = False) -> Result:
    scenario = Crowd("provider limit", jobs, max(1, jobs // 20), DURATIONS, provider_limit=LIMIT)
    outcome = await run_crowd(scenario, profile=profile)
    result = Result(
        "provider limited to 20 requests/s",
        f"{jobs} jobs over {scenario.channels} channels, generations of 20–60 s, the key limited to "
        f"{LIMIT:g} requests/s (429 without Retry-After), default settings",
    )
    add_common(result, outcome)
    share = outcome.provider_limited / max(1, outcome.provider_requests)
    result.add("provider requests", f"{outcome.provider_requests:,} ({outcome.provider_requests / jobs:.2f} per job)")
    result.add("share answered 429", f"{share:.1%}", "<= 10 %", share <= 0.10)
    # Every job needs a submit and at least one poll (2 requests at the limit's rate), and none can be done before
    # the slowest generation has run.
    least = max(2 * jobs / LIMIT, DURATIONS[1])
    ratio = outcome.until_last / least
    result.add("time until all delivered", f"{outcome.until_last:.0f} s")
    result.add("least time the limit allows", f"{least:.0f} s")
    result.add("ratio", f"{ratio:.2f}", "<= 1.3", ratio <= 1.3)
    add_notes(result, outcome)
    return result

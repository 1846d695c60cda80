"""When to look at a job next: the adaptive poll schedule and retry backoff, as pure functions.

No I/O and no clock: callers add the returned delay to "now". Randomness comes in as a callable so tests can
pin it. Jitter spreads polls of jobs submitted together, so a burst of `/video` does not turn into bursts of
provider requests forever after.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence

__all__ = ["FOLLOW_UP_FACTOR", "backoff", "first_poll_delay", "next_poll_delay", "typical_duration"]

Random = Callable[[], float]
"""A source of floats in [0, 1), like `random.random`."""


def typical_duration(recent_durations: Sequence[float]) -> float | None:
    """The median of usable recent durations (what a member should expect), or None without history."""
    usable = _usable(recent_durations)
    return statistics.median(usable) if usable else None


def first_poll_delay(recent_durations: Sequence[float], default: float, *, cap: float | None = None) -> float:
    """How long after submitting to poll a job for the first time.

    Polling before the provider can possibly finish only spends requests, but waiting for the *typical* finish
    makes every faster-than-usual job wait too. So the first poll goes two intervals (`default`) before the
    fastest recent job of the same model and duration finished: few jobs are done earlier, and those wait
    little (`python -m bench polling_peer` measured the margins: one interval left a long lag tail). With no
    history it is `default`. Non-positive or non-finite history values are ignored. `cap` bounds the wait (e.g.
    so a few pathological jobs cannot push the first poll past the job timeout).
    """
    usable = _usable(recent_durations)
    delay = max(default, min(usable) - 2 * default) if usable else default
    if cap is not None:
        delay = min(delay, cap)
    return max(0.0, delay)


def _usable(durations: Sequence[float]) -> list[float]:
    return [d for d in durations if 0 < d < float("inf")]


# Once a job is past the earliest finish seen, every poll has a real chance of finding it done, so polls come a
# little faster than the base interval: that keeps the tail of the delivery lag at or below what a plain fixed
# interval gives, while the late first poll saves most of the requests.
FOLLOW_UP_FACTOR = 0.9


def next_poll_delay(interval: float, rand: Random = random.random, *, jitter: float = 0.1) -> float:
    """The follow-up poll delay: `FOLLOW_UP_FACTOR` × the interval with ±`jitter` (a fraction), never negative."""
    factor = FOLLOW_UP_FACTOR * (1.0 + jitter * (2.0 * rand() - 1.0))
    return max(0.0, interval * factor)


def backoff(
    attempt: int,
    retry_after: float | None = None,
    *,
    base: float = 10.0,
    cap: float = 300.0,
    jitter: float = 0.1,
    rand: Random = random.random,
) -> float:
    """The wait before retry number `attempt` (1 = the first retry) after a transient error.

    A server-sent `retry_after` is a minimum the server asked for: it is honoured as is, plus up to `jitter`
    on top (never less), and not capped — ignoring it only earns another 429. Otherwise the delay doubles from
    `base` per attempt up to `cap`, with ±`jitter` so jobs that failed together do not retry together.
    """
    if retry_after is not None and retry_after >= 0:
        return retry_after * (1.0 + jitter * rand())
    exponent = max(0, attempt - 1)
    # min() before the power would overflow for absurd attempt counts; 2**64 is plenty to hit any cap.
    delay = min(cap, base * (2.0 ** min(exponent, 64)))
    factor = 1.0 + jitter * (2.0 * rand() - 1.0)
    return max(0.0, min(cap, delay * factor))

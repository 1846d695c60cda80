"""When to look at a job next: the adaptive poll schedule and retry backoff, as pure functions.

No I/O and no clock: callers add the returned delay to "now". Randomness comes in as a callable so tests can
pin it. Jitter spreads polls of jobs submitted together, so a burst of `/video` does not turn into bursts of
provider requests forever after.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence

__all__ = ["backoff", "first_poll_delay", "next_poll_delay"]

Random = Callable[[], float]
"""A source of floats in [0, 1), like `random.random`."""


def first_poll_delay(recent_durations: Sequence[float], default: float, *, cap: float | None = None) -> float:
    """How long after submitting to poll a job for the first time.

    Polling earlier than the provider can possibly finish only spends requests, so the first poll goes near the
    median of how long recent jobs of the same model and duration took; with no history it is `default` (the
    poll interval). Non-positive or non-finite history values are ignored. `cap` bounds the wait (e.g. so a
    few pathological jobs cannot push the first poll past the job timeout).
    """
    usable = [d for d in recent_durations if d > 0 and d != float("inf")]
    delay = statistics.median(usable) if usable else default
    if cap is not None:
        delay = min(delay, cap)
    return max(0.0, delay)


def next_poll_delay(interval: float, rand: Random = random.random, *, jitter: float = 0.1) -> float:
    """The poll interval with ±`jitter` (a fraction) applied, never negative."""
    factor = 1.0 + jitter * (2.0 * rand() - 1.0)
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

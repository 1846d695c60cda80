"""Time as the rest of the code sees it: Unix epoch seconds (UTC) from an injectable clock.

Everything that compares times (quota windows, poll schedules, timeouts) takes a `Clock`, so tests move time
forward instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Clock", "FakeClock", "system_clock"]

Clock = Callable[[], float]


def system_clock() -> float:
    return time.time()


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now

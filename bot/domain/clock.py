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


def _standing_still() -> float:
    return 0.0


class FakeClock:
    """The clock of tests and simulators: it moves only when told to (`advance`, or setting `now`).

    `FakeClock.real_time()` is the variant for tests of loops that really sleep: it reads the wall clock, and
    `advance` still jumps it forward on top of that (then `now` is the offset added to the wall clock).
    """

    def __init__(self, start: float = 1_800_000_000.0, *, base: Clock = _standing_still) -> None:
        self.now = start
        self._base = base

    @classmethod
    def real_time(cls) -> FakeClock:
        return cls(0.0, base=system_clock)

    def __call__(self) -> float:
        return self._base() + self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self()

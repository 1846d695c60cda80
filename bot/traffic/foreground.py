"""Members first: background work steps aside while interactions are coming in.

The bot answers interactions and does its background work (claiming jobs, sending Discord requests, polling the
provider) on one event loop and one database connection, and Discord gives an interaction three seconds. In a
crowd, a `/video` that waits behind a round of the poller's store writes, or behind a dozen card edits being
rendered, answers late. So the background asks `Foreground.wait()` before each batch of work: while interactions
keep arriving (one in the last `quiet` seconds), it waits, but never longer than `patience` in one go, so a
steady stream of commands slows the background down without ever stopping it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["Foreground"]


class Foreground:
    def __init__(
        self, *, quiet: float = 0.05, patience: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._quiet = quiet
        self._patience = patience
        self._clock = clock
        self._last = float("-inf")

    def arrived(self) -> None:
        """An interaction came in (called as the gateway event is parsed, before any handler runs)."""
        self._last = self._clock()

    @property
    def busy(self) -> bool:
        return self._clock() - self._last < self._quiet

    async def wait(self) -> None:
        """Return once no interaction arrived for `quiet` seconds, or after `patience` seconds at most."""
        now = self._clock()
        deadline = now + self._patience
        while now < deadline:
            calm_at = self._last + self._quiet
            if now >= calm_at:
                return
            await asyncio.sleep(min(calm_at, deadline) - now)
            now = self._clock()

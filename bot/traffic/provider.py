"""The pace of requests to the AI/ML API: found, not guessed.

The AI/ML API documents no numeric limit and answers an excess with 429 and no Retry-After, so any fixed rate
is wrong for most keys: too slow for a crowd, or a stream of 429s. `ProviderPacer` finds the key's rate the way
TCP finds a link's: every answer that comes back while requests are waiting raises the rate a little
(additive increase), every 429 cuts it (multiplicative decrease, once per round trip). Until the first 429 ever
it grows faster (each answer adds half a request per second, so the rate about doubles every 1.4 s under load),
like TCP's slow start: a fresh bot with a thousand jobs should not take minutes to learn that the key allows a
hundred requests a second. An operator who knows the plan's limit can set a hard cap.

When requests are scarce they go where they pay: `Urgency.NOW` (submits, and polls of jobs that are likely done)
before `Urgency.LATER` (polls of jobs that cannot be done yet), first come first served within each.

The pace (rate and where the last cut left it) and the request log live in a `TrafficState`, shared by every
process using the same key when the state is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any

from bot.provider.errors import RateLimited
from bot.traffic.foreground import Foreground
from bot.traffic.pump import keep_granting
from bot.traffic.state import TrafficState, Window

__all__ = ["Pace", "PacerConfig", "ProviderPacer", "Urgency"]

PACE_KEY = "provider:pace"
WINDOW_KEY = "provider:requests"
PACE_FRESH = 0.1
"""Seconds the pace last read or changed here is used as it is before it is read again: every answer's change
brings it up to date anyway, and in a shared state a read is a round trip to the database (other processes'
changes show within this long)."""


class Urgency(IntEnum):
    NOW = 0
    """Submits, and polls of jobs past their expected finish (or with no history to tell)."""
    LATER = 1
    """Polls of jobs that cannot be done yet."""


@dataclass(frozen=True)
class Pace:
    rate: float
    """Requests per second allowed now."""
    ceiling: float | None
    """The rate the last 429 cut to; None until the first 429 (the pace is still growing fast)."""
    cuts: int = 0
    """Cuts so far: a 429 of a request sent before the latest cut does not cut again. (A count, not a time, so
    processes with different clocks can share it.)"""

    def stored(self) -> dict[str, float | int | None]:
        """As the traffic state keeps it (JSON)."""
        return {"rate": self.rate, "ceiling": self.ceiling, "cuts": self.cuts}

    @classmethod
    def from_stored(cls, value: dict[str, Any]) -> Pace:
        return cls(rate=float(value["rate"]), ceiling=value["ceiling"], cuts=int(value["cuts"]))


@dataclass(frozen=True, kw_only=True)
class PacerConfig:
    cap: float | None = None  # PROVIDER_REQUESTS_PER_SECOND: never above this; None = no cap
    start: float = 5.0  # requests per second before anything is known
    floor: float = 0.2  # never below: a cut must not stop the bot
    slow_start_gain: float = 0.5  # added per answer before the first 429
    step: float = 1.0  # after it: rate += step / rate per answer, i.e. about +step req/s per second
    cut: float = 0.7  # rate *= cut on a 429
    max_in_flight: int = 32  # requests outstanding at once


class ProviderPacer:
    """Gives out turns to send one request each, at the found pace, most urgent first."""

    def __init__(
        self,
        state: TrafficState,
        config: PacerConfig | None = None,
        *,
        foreground: Foreground | None = None,
    ) -> None:
        self._state = state
        self._foreground = foreground or Foreground()
        self._config = config or PacerConfig()
        self._seq = itertools.count()
        self._waiters: list[tuple[int, int, asyncio.Future[tuple[bool, int]]]] = []
        self._in_flight = 0
        self._kick = asyncio.Event()
        self._pump_task: asyncio.Task[None] | None = None
        self._pace = self._initial()
        self._pace_at = float("-inf")  # time.monotonic() when `_pace` was last read or changed
        self.rate = self._pace.rate
        """The pace after the last change (for metrics)."""
        self.limited = 0
        """429s seen."""

    def _initial(self) -> Pace:
        cap = self._config.cap
        start = self._config.start if cap is None else min(self._config.start, cap)
        return Pace(rate=start, ceiling=None)

    def _load(self, stored: dict[str, Any] | None) -> Pace:
        return self._initial() if stored is None else Pace.from_stored(stored)

    async def _change(self, change: Callable[[Pace], Pace]) -> Pace:
        """Change the shared pace in one step (every process using the key sees the result)."""
        stored = await self._state.update(PACE_KEY, lambda value: change(self._load(value)).stored())
        pace = self._pace = Pace.from_stored(stored)
        self._pace_at = time.monotonic()
        self.rate = pace.rate
        return pace

    async def _current(self) -> Pace:
        """The shared pace, read again only when what this process last saw is older than PACE_FRESH."""
        if time.monotonic() - self._pace_at < PACE_FRESH:
            return self._pace
        return await self._change(lambda current: current)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @contextlib.asynccontextmanager
    async def turn(self, urgency: Urgency) -> AsyncIterator[None]:
        """Wait for a turn, then send exactly one request inside the block. A `RateLimited` escaping the block
        cuts the pace; an answer that comes back while others were waiting raises it. (A Retry-After, which the
        AI/ML API does not document, is the job's to honour: the caller reschedules it.)"""
        saturated, cuts = await self._wait(urgency)
        await self._state.sent([WINDOW_KEY])  # the window counts from now, when the request really leaves
        try:
            yield
        except RateLimited:
            await self._cut(cuts)
            raise
        else:
            if saturated:
                await self._grow()
        finally:
            self._in_flight -= 1
            self._kick.set()

    # ------------------------------------------------------------------ pace changes

    async def _grow(self) -> None:
        config = self._config

        def grow(pace: Pace) -> Pace:
            # Before the first 429 each answer adds a fixed amount (growth in proportion to the rate); after it,
            # an amount that adds up to `step` per second however fast the requests go.
            gain = config.slow_start_gain if pace.ceiling is None else config.step / pace.rate
            rate = pace.rate + gain
            if config.cap is not None:
                rate = min(rate, config.cap)
            return replace(pace, rate=rate)

        await self._change(grow)

    async def _cut(self, cuts_when_sent: int) -> None:
        config = self._config
        self.limited += 1

        def cut(pace: Pace) -> Pace:
            if pace.cuts != cuts_when_sent:
                return pace  # sent before the last cut: that cut already answered this congestion
            rate = max(config.floor, pace.rate * config.cut)
            return Pace(rate=rate, ceiling=rate, cuts=pace.cuts + 1)

        await self._change(cut)
        self._kick.set()

    # ------------------------------------------------------------------ turns

    async def _wait(self, urgency: Urgency) -> tuple[bool, int]:
        """Wait for a turn; returns whether others were still waiting, and the pace's cuts so far."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[bool, int]] = loop.create_future()
        heapq.heappush(self._waiters, (int(urgency), next(self._seq), future))
        self._kick.set()
        if self._pump_task is None or self._pump_task.done():
            self._pump_task = loop.create_task(
                keep_granting(self._grant_turns, lambda: bool(self._waiters), "provider requests"),
                name="reelbot-provider-pump",
                context=contextvars.Context(),
            )
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._in_flight -= 1  # granted as we were cancelled: give the turn back
                await self._state.cancel([WINDOW_KEY])
                self._kick.set()
            raise

    def _drop_gone(self) -> None:
        """Forget the waiters at the front whose callers gave up (cancelled)."""
        while self._waiters and self._waiters[0][2].done():
            heapq.heappop(self._waiters)

    async def _grant_turns(self) -> None:
        while self._waiters:
            if self._foreground.busy:
                await self._foreground.wait()
            self._kick.clear()
            if self._in_flight >= self._config.max_in_flight:
                await self._kick.wait()
                continue
            self._drop_gone()
            if not self._waiters:
                break
            pace = await self._current()
            # Up to a tenth of a second's worth may go together (fewer wake-ups), never more than the rate.
            burst = max(1, int(pace.rate / 10))
            wait, _ = await self._state.take([Window(WINDOW_KEY, burst, burst / pace.rate)])
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), timeout=wait)
                continue
            # The turn goes to whoever is first now: while the state answered, a more urgent request may have come
            # and the first one may have given up.
            self._drop_gone()
            if not self._waiters:
                await self._state.cancel([WINDOW_KEY])
                break
            _, _, future = heapq.heappop(self._waiters)
            self._in_flight += 1
            future.set_result((bool(self._waiters), pace.cuts))  # saturated: others are still waiting

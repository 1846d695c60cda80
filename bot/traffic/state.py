"""What traffic control remembers, behind one small interface.

The Discord scheduler and the provider pacer decide *what* to send and *when*; what they have used and learned
lives in a `TrafficState`: request logs of rate windows (the bot's global Discord budget, each Discord bucket, the
provider pace), waits a server asked for, what each Discord route's bucket turned out to be, and the provider
pace found so far. `LocalTrafficState` keeps it in this process. Several processes sharing one bot token and one
API key need one state between them: `bot.traffic.shared.PostgresTrafficState` keeps it in the deployment's
PostgreSQL database, with the same methods, each atomic.

A request counts in two steps. `take` gives it a place in its windows as *pending*: it is about to be sent, and
counts against the limit from then on. `sent` records the moment it actually leaves (a busy event loop can
resume a task whose turn came a while ago; the window must count from the send, or requests given their turn in
one window and sent in the next would crowd it). `cancel` gives back a place that was never used. The shared
implementation lets a pending place lapse after a while, in case the process holding it died.

Time is the state's own (`monotonic` here, the database's clock in the shared one), so callers only ever see
durations.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

__all__ = ["Learned", "LocalTrafficState", "TrafficState", "Window"]

T = TypeVar("T")


@dataclass(frozen=True)
class Window:
    """At most `limit` requests in any `per` seconds, counted under `key`."""

    key: str
    limit: int
    per: float


@dataclass(frozen=True)
class Learned:
    """What a Discord route's answers said about its bucket: the bucket id (routes sharing it share the limit),
    and `limit` requests per `per` seconds."""

    bucket: str
    limit: int
    per: float


class TrafficState(Protocol):
    async def take(self, windows: Sequence[Window]) -> tuple[float, str | None]:
        """If every window (and no hold on its key) has room now, count one pending request in each and return
        `(0.0, None)`; otherwise count nothing and return the seconds until all of them might have room, with
        the key of the window that waits longest."""
        ...

    async def sent(self, keys: Sequence[str]) -> None:
        """One pending request under each key left just now."""
        ...

    async def cancel(self, keys: Sequence[str]) -> None:
        """One pending request under each key will not be sent after all."""
        ...

    async def hold(self, key: str, seconds: float) -> None:
        """A server said to wait: nothing is taken from `key` for `seconds` (a longer hold already set stays)."""
        ...

    async def learned(self, route: str) -> Learned | None:
        """What answers on `route` (e.g. `POST /channels/{channel_id}/messages`) taught so far."""
        ...

    async def learn(self, route: str, learned: Learned) -> None: ...

    async def update(self, name: str, change: Callable[[T | None], T]) -> T:
        """Replace the value stored under `name` with `change(current)` in one step (no other update in between)
        and return it; `change` is quick and does no I/O. Values are JSON (numbers, strings, lists, dicts, None),
        so a shared implementation can store them."""
        ...


class LocalTrafficState:
    """`TrafficState` for one process: sliding request logs in memory, on the monotonic clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._logs: dict[str, deque[float]] = {}  # send times, oldest first
        self._pending: dict[str, int] = {}
        self._holds: dict[str, float] = {}
        self._learned: dict[str, Learned] = {}
        self._values: dict[str, object] = {}

    async def take(self, windows: Sequence[Window]) -> tuple[float, str | None]:
        now = self._clock()
        wait, blocker = 0.0, None
        for window in windows:
            until = self._free_at(window, now)
            if until - now > wait:
                wait, blocker = until - now, window.key
        if blocker is not None:
            return wait, blocker
        for window in windows:
            self._pending[window.key] = self._pending.get(window.key, 0) + 1
        return 0.0, None

    def _free_at(self, window: Window, now: float) -> float:
        """When `window` has room for one more request (`now` if it has room now)."""
        until = now
        held = self._holds.get(window.key)
        if held is not None:
            if held > now:
                until = held
            else:
                del self._holds[window.key]
        log = self._logs.get(window.key)
        sent = 0
        if log is not None:
            while log and log[0] <= now - window.per:
                log.popleft()
            sent = len(log)
        used = sent + self._pending.get(window.key, 0)
        if used >= window.limit:
            # The request `limit` places back has to leave the window first. If that one is still pending, its
            # time in the window has not even started: a whole window from now is the honest guess.
            oldest = used - window.limit
            frees = log[oldest] + window.per if log is not None and oldest < sent else now + window.per
            until = max(until, frees)
        return until

    async def sent(self, keys: Sequence[str]) -> None:
        now = self._clock()
        for key in keys:
            self._settle(key)
            self._logs.setdefault(key, deque()).append(now)

    async def cancel(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._settle(key)

    def _settle(self, key: str) -> None:
        pending = self._pending.get(key, 0)
        if pending <= 1:
            self._pending.pop(key, None)
        else:
            self._pending[key] = pending - 1

    async def hold(self, key: str, seconds: float) -> None:
        until = self._clock() + max(0.0, seconds)
        if until > self._holds.get(key, 0.0):
            self._holds[key] = until

    async def learned(self, route: str) -> Learned | None:
        return self._learned.get(route)

    async def learn(self, route: str, learned: Learned) -> None:
        self._learned[route] = learned

    async def update(self, name: str, change: Callable[[T | None], T]) -> T:
        value = change(self._values.get(name))  # type: ignore[arg-type]
        self._values[name] = value
        return value

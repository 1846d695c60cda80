"""What traffic control remembers, behind one small interface.

The Discord scheduler and the provider pacer decide *what* to send and *when*; what they have used and learned
lives in a `TrafficState`: request logs of rate windows (the bot's global Discord budget, each Discord bucket, the
provider pace), waits a server asked for, what each Discord route's bucket turned out to be, and the provider
pace found so far. `LocalTrafficState` keeps it in this process. Several processes sharing one bot token and one
API key need one state between them (a database table, say): the same five methods, each atomic.

Time is the state's own (`monotonic` here; a shared implementation would use the database's clock), so callers
only ever see durations.
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
        """If every window (and no hold on its key) allows a request now, count one in each and return
        `(0.0, None)`; otherwise count nothing and return the seconds until all of them might allow one, with the
        key of the window that waits longest."""
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
        and return it; `change` is quick and does no I/O."""
        ...


class LocalTrafficState:
    """`TrafficState` for one process: sliding request logs in memory, on the monotonic clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._logs: dict[str, deque[float]] = {}
        self._holds: dict[str, float] = {}
        self._learned: dict[str, Learned] = {}
        self._values: dict[str, object] = {}

    async def take(self, windows: Sequence[Window]) -> tuple[float, str | None]:
        now = self._clock()
        wait, blocker = 0.0, None
        for window in windows:
            until = now
            held = self._holds.get(window.key)
            if held is not None:
                if held > now:
                    until = held
                else:
                    del self._holds[window.key]
            log = self._logs.get(window.key)
            if log:
                while log and log[0] <= now - window.per:
                    log.popleft()
                if len(log) >= window.limit:
                    # The request `limit` places back has to leave the window first.
                    until = max(until, log[len(log) - window.limit] + window.per)
            if until - now > wait:
                wait, blocker = until - now, window.key
        if blocker is not None:
            return wait, blocker
        for window in windows:
            log = self._logs.setdefault(window.key, deque())
            log.append(now)
            while len(log) > window.limit:  # older entries can no longer decide anything
                log.popleft()
        return 0.0, None

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

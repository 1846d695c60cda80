"""The one way out to Discord's REST API for everything the bot sends with its token.

Discord enforces a global budget per bot token (50 requests per second) and a bucket per route and channel
(5 messages per 5 seconds, say), and answers an excess with 429. discord.py on its own waits out an exhausted
bucket and then sends everything that waited at the same instant, which overruns the global budget in a crowd;
during a global 429 it then holds every bot-token request. So `DiscordScheduler` takes that decision away from
it: every `HTTPClient.request` first waits for its turn here.

- **Budget and buckets, before sending.** A request goes only when the global window (`per_second` in any second)
  and its route's bucket both have room. Buckets are learned from the `X-RateLimit-*` headers of the answers; a
  route never seen yet sends one request at a time until its first answer says what its bucket is.
- **Priorities.** When requests wait, the most important goes first: deliveries, thread creations and failure
  notices (`URGENT`), then anything not marked (`NORMAL`), then status-card edits (`CARD`).
- **Card edits coalesce.** `coalesce(key, ...)` keeps only the latest edit of a card while it waits; the edit is
  rendered when its turn comes, so a job that moved twice meanwhile costs one edit, showing its latest state.
- **A 429 that happens anyway is obeyed and counted**: the bucket (or, for a global one, everything) is held for
  the time Discord asked; discord.py's own retry after its sleep waits for its turn here like a new request.

Interaction responses never wait here: discord.py sends them (and follow-ups, which use the interaction token)
through its webhook adapter on the same HTTP session, not through `HTTPClient.request`, and Discord exempts them
from the global budget. discord.py's wait on a pending global 429 (`HTTPClient._global_over`) is inside
`HTTPClient.request` only, so it never holds them either; `tests/e2e/test_traffic.py` checks both.

How it hooks in: `install(http)` wraps the client's `request` and replaces its per-bucket limiter with one that
never waits (this scheduler does that job, and discord.py's limiter would hold a caller until a bucket resets);
`trace_config()` goes to `discord.Client(http_trace=...)` so this module sees every attempt and every answer's
headers. What was used and learned lives in a `TrafficState`, so several processes can share one budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from types import SimpleNamespace
from typing import Any

import aiohttp
from discord.http import HTTPClient, Route

from bot.traffic.answers import BucketInfo, bucket_info, learned_from, refusal
from bot.traffic.foreground import Foreground
from bot.traffic.pump import keep_granting
from bot.traffic.state import Learned, TrafficState, Window

__all__ = ["DiscordScheduler", "Priority", "priority"]

log = logging.getLogger(__name__)

GLOBAL_KEY = "discord:global"
# Our send times are not Discord's arrival times: windows are widened by this much so that jitter between the
# two (connections, a busy server) can never put one request too many into a window on Discord's side.
BUCKET_MARGIN = 0.25
GLOBAL_MARGIN = 0.25


class Priority(IntEnum):
    """Who goes first when requests wait (lower first)."""

    URGENT = 0
    """Video deliveries, thread creations and failure notices: what members are waiting for."""
    NORMAL = 1
    """Anything not marked otherwise (mod-log lines, new cards from buttons, fetches, command sync)."""
    CARD = 2
    """Status-card edits: coalesced, and the first to yield in a crowd."""


_priority: contextvars.ContextVar[Priority] = contextvars.ContextVar(
    "reelbot_discord_priority", default=Priority.NORMAL
)
_current: contextvars.ContextVar[_Ticket | None] = contextvars.ContextVar("reelbot_discord_ticket", default=None)
_granted: contextvars.ContextVar[_Ticket | None] = contextvars.ContextVar("reelbot_discord_granted", default=None)


@contextlib.contextmanager
def priority(level: Priority) -> Iterator[None]:
    """Requests made inside this block (in this task) wait at `level`."""
    token = _priority.set(level)
    try:
        yield
    finally:
        _priority.reset(token)


@dataclass(eq=False)
class _Ticket:
    route: str  # "METHOD /template", discord.py's Route.key
    major: str  # discord.py's Route.major_parameters (channel, guild or webhook id)
    priority: Priority
    seq: int
    queue: str
    future: asyncio.Future[None] | None = None
    attempts: int = 0
    used: bool = False
    probing: bool = False  # the route's bucket was unknown when this went: the next waits for its answer
    pending: list[str] | None = None  # window keys holding a place for this request until it is sent
    bucket_counted: bool = True  # False while it went out with its route's bucket still unknown

    def order(self) -> tuple[int, int]:
        return (int(self.priority), self.seq)


@dataclass
class _Queue:
    """Requests waiting for one route and major parameter, most important first."""

    heap: list[tuple[int, int, _Ticket]] = field(default_factory=list)
    asleep_until: float | None = None
    probing: bool = False


class _NeverWait:
    """Stands in for discord.py's per-bucket `Ratelimit`: the scheduler has already waited for the bucket."""

    remaining = 1
    limit = 1

    async def __aenter__(self) -> _NeverWait:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def update(self, response: Any, *, use_clock: bool = False) -> None:
        return None

    def is_inactive(self) -> bool:
        return True


_NEVER_WAIT = _NeverWait()


class DiscordScheduler:
    """Paces and orders every bot-token REST request; see the module docstring."""

    def __init__(
        self,
        state: TrafficState,
        *,
        per_second: int = 45,
        clock: Callable[[], float] = time.monotonic,
        on_rate_limited: Callable[[str], None] | None = None,
        foreground: Foreground | None = None,
        card_settle: float = 1.0,
    ) -> None:
        self._state = state
        self._card_settle = card_settle
        self._flush = asyncio.Event()  # closing: edits go without settling
        self.foreground = foreground or Foreground()
        """Interactions arriving make this scheduler's requests wait (the bot tells it, see `Reelbot.dispatch`)."""
        self._global = Window(GLOBAL_KEY, max(1, int(per_second)), 1.0 + GLOBAL_MARGIN)
        self._clock = clock
        self._on_rate_limited = on_rate_limited
        self._seq = itertools.count()
        self._queues: dict[str, _Queue] = {}
        self._ready: list[tuple[int, int, str]] = []  # (priority, seq, queue key) of each queue's head
        self._sleeping: list[tuple[float, str]] = []  # (until, queue key)
        self._waiting = 0
        self._kick = asyncio.Event()
        self._pump_task: asyncio.Task[None] | None = None
        self._latest: dict[Hashable, Callable[[], Awaitable[object]]] = {}
        self._drainers: dict[Hashable, asyncio.Task[None]] = {}
        self.rate_limited: dict[str, int] = {}
        """429s received, by scope (`user`, `shared`, `global`)."""

    # ------------------------------------------------------------------ wiring

    def install(self, http: HTTPClient) -> None:
        """Route every request of this discord.py client through the scheduler (call once, before login)."""
        original = http.request

        async def request(route: Route, **kwargs: Any) -> Any:
            ticket = _granted.get()
            if ticket is None or ticket.used or ticket.route != route.key:
                ticket = await self._admit(route.key, route.major_parameters, _priority.get())
            ticket.used = True
            token = _current.set(ticket)
            try:
                return await original(route, **kwargs)
            finally:
                _current.reset(token)
                await self._release(ticket)

        http.request = request  # type: ignore[method-assign]
        http.get_ratelimit = lambda key: _NEVER_WAIT  # type: ignore[method-assign, assignment, return-value]

    def trace_config(self) -> aiohttp.TraceConfig:
        """Hooks for `discord.Client(http_trace=...)`: each attempt waits its turn, each answer teaches."""
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(self._on_request_start)
        trace.on_request_headers_sent.append(self._on_request_headers_sent)
        trace.on_request_end.append(self._on_request_end)
        return trace

    @property
    def waiting(self) -> int:
        """Requests waiting for their turn, card edits included."""
        return self._waiting + len(self._latest)

    # ------------------------------------------------------------------ card edits

    def coalesce(self, key: Hashable, route: Route, send: Callable[[], Awaitable[object]]) -> None:
        """Send `send()` (one request on `route`) at CARD priority; if an edit under `key` is still waiting, it is
        replaced by this one. Edits under one key go out one at a time, in order. Errors are logged.

        An edit first waits `card_settle` seconds: a job often moves on within a second (finished, downloaded,
        posted), and its card then needs one edit, not three."""
        self._latest[key] = send
        if key not in self._drainers:
            task = asyncio.get_running_loop().create_task(
                self._drain(key, route), name="reelbot-card-edit", context=contextvars.Context()
            )
            self._drainers[key] = task

    async def _drain(self, key: Hashable, route: Route) -> None:
        try:
            while key in self._latest:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._flush.wait(), timeout=self._card_settle)
                ticket = await self._admit(route.key, route.major_parameters, Priority.CARD)
                send = self._latest.pop(key)
                token = _granted.set(ticket)
                try:
                    await send()
                except Exception as exc:
                    log.warning("could not edit a status card: %s", exc)
                finally:
                    _granted.reset(token)
                    await self._release(ticket)
        finally:
            self._drainers.pop(key, None)

    async def close(self, grace: float = 3.0) -> None:
        """Give waiting card edits `grace` seconds to go out (settled at once), then stop."""
        self._flush.set()
        if self._drainers:
            await asyncio.wait(list(self._drainers.values()), timeout=grace)
        for task in list(self._drainers.values()):
            task.cancel()
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task

    # ------------------------------------------------------------------ admission

    async def _admit(self, route: str, major: str, level: Priority) -> _Ticket:
        ticket = _Ticket(route, major, level, next(self._seq), f"{route} {major}")
        await self._wait_turn(ticket)
        return ticket

    async def _wait_turn(self, ticket: _Ticket) -> None:
        loop = asyncio.get_running_loop()
        ticket.future = loop.create_future()
        queue = self._queues.setdefault(ticket.queue, _Queue())
        heapq.heappush(queue.heap, (*ticket.order(), ticket))
        self._waiting += 1
        if queue.heap[0][2] is ticket and queue.asleep_until is None and not queue.probing:
            heapq.heappush(self._ready, (*ticket.order(), ticket.queue))
        self._kick.set()
        if self._pump_task is None or self._pump_task.done():
            self._pump_task = loop.create_task(
                keep_granting(self._grant_turns, lambda: self._waiting > 0, "Discord requests"),
                name="reelbot-discord-pump",
                context=contextvars.Context(),
            )
        try:
            await ticket.future
        except asyncio.CancelledError:
            if not ticket.future.cancelled():  # granted just as we were cancelled: give the turn back
                await self._release(ticket)
            raise

    async def _sent(self, ticket: _Ticket) -> None:
        if ticket.pending:
            keys, ticket.pending = ticket.pending, None
            await self._state.sent(keys)

    async def _release(self, ticket: _Ticket) -> None:
        """The request is over: a place it held but never used goes back, and if it was probing an unknown
        bucket, the next one of its queue may go."""
        if ticket.pending:
            keys, ticket.pending = ticket.pending, None
            await self._state.cancel(keys)
            self._kick.set()
        if not ticket.probing:
            return
        ticket.probing = False
        queue = self._queues.get(ticket.queue)
        if queue is None:
            return
        queue.probing = False
        self._requeue(ticket.queue, queue)

    def _requeue(self, key: str, queue: _Queue) -> None:
        if queue.heap:
            priority_, seq, _ = queue.heap[0]
            heapq.heappush(self._ready, (priority_, seq, key))
            self._kick.set()
        elif queue.asleep_until is None and not queue.probing:
            del self._queues[key]

    async def _windows(self, ticket: _Ticket) -> tuple[list[Window], bool]:
        learned = await self._state.learned(ticket.route)
        if learned is None:
            return [self._global], True
        return [self._global, self._bucket_window(learned, ticket)], False

    async def _grant_turns(self) -> None:
        """The most important head whose windows have room goes next, until none waits."""
        while self._waiting:
            if self.foreground.busy:
                await self.foreground.wait()
            now = self._clock()
            while self._sleeping and self._sleeping[0][0] <= now:
                _, key = heapq.heappop(self._sleeping)
                queue = self._queues.get(key)
                if queue is not None:
                    queue.asleep_until = None
                    self._requeue(key, queue)
            pause: float | None = self._sleeping[0][0] - now if self._sleeping else None
            while self._ready:
                # The entry is taken off first: the state is asked below (a database, for a shared one), and while
                # it answers other requests come and go, so `_ready[0]` and the queue's head may have changed.
                priority_, seq, key = heapq.heappop(self._ready)
                queue = self._queues.get(key)
                if queue is None or queue.probing or queue.asleep_until is not None or not queue.heap:
                    continue
                ticket = queue.heap[0][2]
                if (priority_, seq) != ticket.order():
                    continue  # stale: a more important request became this queue's head (it has its own entry)
                if self._gave_up(key, queue, ticket):
                    continue
                try:
                    windows, unknown = await self._windows(ticket)
                    wait, blocker = await self._state.take(windows)
                except BaseException:
                    heapq.heappush(self._ready, (priority_, seq, key))  # its turn is asked for again after the error
                    raise
                if blocker == GLOBAL_KEY:
                    heapq.heappush(self._ready, (priority_, seq, key))
                    pause = wait if pause is None else min(pause, wait)
                    break  # nobody can go before the global window has room
                if blocker is not None:
                    until = self._clock() + wait
                    queue.asleep_until = until
                    heapq.heappush(self._sleeping, (until, key))
                    pause = wait if pause is None else min(pause, wait)
                    continue
                if self._gave_up(key, queue, ticket):  # cancelled while the state answered
                    await self._state.cancel([w.key for w in windows])
                    continue
                queue.heap.remove((priority_, seq, ticket))  # by identity of its order: it may not be the head now
                heapq.heapify(queue.heap)
                self._waiting -= 1
                ticket.pending = [w.key for w in windows]
                ticket.bucket_counted = not unknown
                if unknown:
                    ticket.probing = queue.probing = True
                else:
                    self._requeue(key, queue)
                assert ticket.future is not None
                ticket.future.set_result(None)
            if not self._waiting:
                break
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=pause)

    def _gave_up(self, key: str, queue: _Queue, ticket: _Ticket) -> bool:
        """If `ticket`'s caller was cancelled, take it out of its queue (the next one there gets its chance)."""
        assert ticket.future is not None
        if not ticket.future.done():
            return False
        queue.heap.remove((*ticket.order(), ticket))
        heapq.heapify(queue.heap)
        self._waiting -= 1
        self._requeue(key, queue)
        return True

    # ------------------------------------------------------------------ trace hooks

    async def _on_request_start(
        self, session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        ticket = _current.get()
        if ticket is None:
            return  # not a bot-token request: an interaction response, a follow-up, the CDN, the gateway
        ticket.attempts += 1
        if ticket.attempts > 1:
            # discord.py retries after a 429 (having slept what Discord asked) or a 5xx: that is one more request
            # against the same windows, so it waits for its turn too (keeping its place among equals).
            await self._release(ticket)
            await self._wait_turn(ticket)

    async def _on_request_headers_sent(
        self, session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestHeadersSentParams
    ) -> None:
        ticket = _current.get()
        if ticket is not None:
            await self._sent(ticket)  # the windows count from now, when it really leaves (after any connecting)

    async def _on_request_end(
        self, session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        ticket = _current.get()
        if ticket is None:
            return
        response = params.response
        body: Any = None
        if response.status == 429 and response.content_type == "application/json":
            # The body says how long exactly (the Retry-After header is rounded up to whole seconds); aiohttp
            # keeps what was read, so discord.py reads the same body after us.
            with contextlib.suppress(aiohttp.ClientError, ValueError):
                body = await response.json()
        await self._observe(ticket, response.status, response.headers, body)

    async def _observe(self, ticket: _Ticket, status: int, headers: Any, body: Any = None) -> None:
        """Learn the route's bucket from the answer's headers; obey a 429."""
        learned = await self._learn(ticket, bucket_info(headers))
        if status != 429:
            if learned is not None and headers.get("X-RateLimit-Remaining") == "0":
                info = bucket_info(headers)
                if info is not None:
                    await self._state.hold(self._bucket_key(learned, ticket), info.reset_after)
            return
        refused = refusal(headers, body)
        self.rate_limited[refused.scope] = self.rate_limited.get(refused.scope, 0) + 1
        if self._on_rate_limited is not None:
            self._on_rate_limited(refused.scope)
        log.warning(
            "Discord answered 429 (%s) on %s; waiting %.2f s as asked", refused.scope, ticket.route, refused.wait
        )
        if refused.is_global:
            await self._state.hold(GLOBAL_KEY, refused.wait)
        elif learned is not None:
            await self._state.hold(self._bucket_key(learned, ticket), refused.wait)
        self._kick.set()

    async def _learn(self, ticket: _Ticket, info: BucketInfo | None) -> Learned | None:
        known = await self._state.learned(ticket.route)
        if info is None:
            return known
        learned = learned_from(info, known)
        if learned != known:
            await self._state.learn(ticket.route, learned)
        if not ticket.bucket_counted or (known is not None and known.bucket != learned.bucket):
            # This request went before its bucket was known, so no bucket window counted it: count it now (a
            # little late, which only makes the window stricter).
            ticket.bucket_counted = True
            await self._state.sent([self._bucket_key(learned, ticket)])
        return learned

    @staticmethod
    def _bucket_key(learned: Learned, ticket: _Ticket) -> str:
        return f"discord:{learned.bucket}:{ticket.major}"

    @classmethod
    def _bucket_window(cls, learned: Learned, ticket: _Ticket) -> Window:
        return Window(cls._bucket_key(learned, ticket), learned.limit, learned.per + BUCKET_MARGIN)

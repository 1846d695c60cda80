"""What every step of a job's pipeline shares: the parts, the numbers, and the few writes that end or reschedule
a job (each a compare-and-set in the store, written before the next remote call, then announced)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bot.domain.clock import Clock
from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.services.history import History
from bot.services.ports import ChatPort, DownloaderPort, ProviderPort
from bot.services.schedule import backoff
from bot.services.tasks import BackgroundTasks
from bot.storage import Store
from bot.traffic.provider import ProviderPacer

__all__ = ["PollerConfig", "StepContext", "detail"]

log = logging.getLogger("bot.services.poller")

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class PollerConfig:
    """The numbers the poller runs by; build it from Settings with `from_settings`."""

    poll_interval: float
    job_timeout: float
    media_dir: Path
    max_concurrency: int = 32  # provider requests (and downloads) in flight at once
    provider_rate_cap: float | None = None  # PROVIDER_REQUESTS_PER_SECOND; None: the pacer finds the rate
    provider_start_rate: float = 5.0  # the pacer's rate before it has learned anything
    first_poll_default: float | None = None  # first poll after submit with no history; None = poll_interval
    max_internal_errors: int = 5
    max_submit_attempts: int = 3  # how many submits a 5xx answer may cost before the job fails
    max_thread_attempts: int = 5  # transient failures to start a thread before giving up on it
    backoff_cap: float = 300.0
    stop_grace: float = 3.0  # how long stop() lets in-flight work finish before cancelling it
    batch_size: int = 100
    lease_seconds: float = 30.0  # JOB_LEASE_SECONDS: how long a claimed job stays this process's if it goes silent
    sole_worker: bool = True
    """This process is the store's only worker (SQLite): at start-up the leases a previous run left are void. On a
    shared database (PostgreSQL) other processes may hold live leases, and jobs come back when theirs run out."""

    @classmethod
    def from_settings(cls, settings: Any, media_dir: Path, **overrides: Any) -> PollerConfig:
        """`settings` is a `bot.settings.Settings` (typed loosely so services do not depend on it)."""
        values: dict[str, Any] = {
            "poll_interval": settings.poll_interval_seconds,
            "job_timeout": settings.job_timeout_seconds,
            "provider_rate_cap": settings.provider_requests_per_second,
            "lease_seconds": settings.job_lease_seconds,
            "media_dir": media_dir,
        }
        values.update(overrides)
        return cls(**values)


class StepContext:
    """The parts the steps use, and the writes they share."""

    def __init__(
        self,
        *,
        store: Store,
        provider: ProviderPort,
        downloader: DownloaderPort,
        chat: ChatPort,
        config: PollerConfig,
        clock: Clock,
        pacer: ProviderPacer,
        rand: Callable[[], float],
        changed: Callable[[Job], Awaitable[None]],
        owner: str,
    ) -> None:
        self.store = store
        self.owner = owner  # this process's lease name: the steps' writes count only while it holds the job
        self.provider = provider
        self.downloader = downloader
        self.chat = chat
        self.config = config
        self.clock = clock
        self.pacer = pacer
        self.rand = rand
        self.history = History(store, clock)
        self.downloads = asyncio.Semaphore(config.max_concurrency)
        self.writes = BackgroundTasks(log, log_errors=False)  # shielded store writes; the awaiter handles errors
        self.streak: dict[int, int] = {}  # consecutive transient errors per job, for backoff
        self.verify_delivery: set[int] = set()  # an earlier post may have reached Discord: look first
        self.changed = changed  # after every status change: the card (best-effort) and the listeners
        # Set by the poller: ends a job in plain words where the member reads it (see `Poller.tell`).
        self.tell: Callable[[Job], Awaitable[None]] = _no_tell

    # ------------------------------------------------------------------ writes

    async def write(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a store write to completion even if this job's task is cancelled (shutdown)."""
        return await asyncio.shield(self.writes.spawn(coro, name="reelbot-store-write"))

    async def transition(
        self, job: Job, expected: JobStatus, new: JobStatus, *, leased: bool = True, **fields: Any
    ) -> Job | None:
        """A compare-and-set of the job's status; with `leased` (every step's write) only while this process holds
        the job's lease, so a worker that lost its lease (paused, taken over) changes nothing."""
        holder = self.owner if leased else None
        moved = await self.write(self.store.jobs.transition(job.id, expected, new, holder=holder, **fields))
        if moved is None:
            log.info("job %s: no longer %s, leaving it (wanted %s)", job.id, expected, new)
            return None
        await self.changed(moved)
        return moved

    async def reschedule(self, job_id: int, next_poll_at: float, *, leased: bool = True, **fields: Any) -> None:
        """When to look at the job next (and counters); no status change, nothing to announce."""
        holder = self.owner if leased else None
        await self.write(self.store.jobs.reschedule(job_id, next_poll_at, holder=holder, **fields))

    async def fail(
        self, job: Job, kind: FailureKind, reason: str | None, *, leased: bool = True, **fields: Any
    ) -> Job | None:
        """Fail `job` from its current state (the store refunds it in the same write) and tell the member.

        Returns the failed row (None if the job had already moved on)."""
        failed = await self.transition(
            job, job.status, JobStatus.FAILED, leased=leased, failure_kind=kind, last_error=reason, **fields
        )
        if failed is not None:
            self.forget(job.id)
            await self.tell(failed)
        return failed

    async def retry_later(self, job: Job, exc: Exception, retry_after: float | None) -> None:
        delay = self.backoff(job, retry_after)
        log.warning("job %s (%s): %s; retrying in %.1f s", job.id, job.status, exc, delay)
        await self.reschedule(job.id, self.clock() + delay, poll_errors=job.poll_errors + 1)

    def backoff(self, job: Job, retry_after: float | None, *, base: float | None = None) -> float:
        """The wait after one more transient error in a row for `job`."""
        streak = self.streak.get(job.id, 0) + 1
        self.streak[job.id] = streak
        return self.delay(streak, retry_after, base=base)

    def delay(self, attempt: int, retry_after: float | None, *, base: float | None = None) -> float:
        base = self.config.poll_interval if base is None else base
        return backoff(attempt, retry_after, base=base, cap=self.config.backoff_cap, rand=self.rand)

    def forget(self, job_id: int) -> None:
        self.streak.pop(job_id, None)
        self.verify_delivery.discard(job_id)


async def _no_tell(job: Job) -> None:
    return None


def detail(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc)

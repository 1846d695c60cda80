"""The background worker that takes every accepted job to a terminal state.

One `Poller` per bot process. Each round (`run_once`) it loads the jobs whose `next_poll_at` has come and moves
each one forward by as many steps as are ready: submit (queued), poll (generating), download (downloading),
post (delivering). Every state change is a compare-and-set in the store written *before* the next remote call,
so a crash at any point leaves a row that says what to do next; `recover()` reads those rows at start-up.

Rules that decide the shape of this module:
- A submit is never repeated when the provider might already have the job (a second POST is a second paid
  video): a row found in `submitting` after a crash, a submit timeout and an unreadable 2xx answer all end the
  job as SUBMIT_UNCERTAIN with a refund. Only "nothing was created" answers (429, connection refused, and a
  few 5xx, per AIMLAPI.md §10) put it back in the queue.
- One job's trouble stays with that job: every job is handled in its own task, exceptions are caught per job,
  counted, and the job is rescheduled with backoff; after `max_internal_errors` it fails as INTERNAL.
- Requests to the provider are bounded in number at once (`max_concurrency`) and per second (token bucket).
- Member-facing words come from `presenter`. The status card is updated here after each status change,
  best-effort (a failed edit is logged and never fails the job); `card_context` may add the quota line, and
  `on_change` is called after every status change for anything else (metrics, other views).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from bot.domain.clock import Clock, system_clock
from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.provider.download import DownloadError, MediaRefused, MediaTooLarge
from bot.provider.errors import (
    AuthenticationFailed,
    GenerationNotFound,
    InputRejected,
    MalformedResponse,
    OutOfCredits,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from bot.provider.models import ProviderStatus
from bot.services.delivery import Delivery, media_path, partial_path
from bot.services.generation import generation_request
from bot.services.ports import ChatError, ChatPort, DownloaderPort, ProviderPort
from bot.services.presenter import CardContext, failure_message, render_card
from bot.services.schedule import backoff, first_poll_delay, next_poll_delay
from bot.services.tasks import BackgroundTasks
from bot.storage import Store

__all__ = ["CardContextHook", "OnChange", "Poller", "PollerConfig", "RateLimiter", "RecoverySummary"]

log = logging.getLogger(__name__)

T = TypeVar("T")
OnChange = Callable[[Job], Awaitable[None]]
CardContextHook = Callable[[Job], Awaitable[CardContext]]
"""Supplies what the poller cannot know for the card (the member's quota needs their roles, known to Discord)."""

# States a job may time out in. DELIVERING cannot (the video exists; it gets its own deadline below) and a
# SUBMITTING row that is not in flight is handled as SUBMIT_UNCERTAIN, which says more than "timed out".
_EXPIRABLE = frozenset({JobStatus.AWAITING_APPROVAL, JobStatus.QUEUED, JobStatus.GENERATING, JobStatus.DOWNLOADING})
# The card reads the same in these pairs, so their second half costs no Discord edit.
_SILENT_ON_CARD = frozenset({JobStatus.SUBMITTING, JobStatus.DELIVERING})
_MAX_STEPS_PER_ROUND = 8


@dataclass(frozen=True, kw_only=True)
class PollerConfig:
    """The numbers the poller runs by; build it from Settings with `from_settings`."""

    poll_interval: float
    job_timeout: float
    media_dir: Path
    max_concurrency: int = 8
    max_requests_per_second: float = 5.0
    first_poll_default: float | None = None  # first poll after submit with no history; None = poll_interval
    max_internal_errors: int = 5
    max_submit_attempts: int = 3  # how many submits a 5xx answer may cost before the job fails
    backoff_cap: float = 300.0
    stop_grace: float = 3.0  # how long stop() lets in-flight work finish before cancelling it
    batch_size: int = 100

    @classmethod
    def from_settings(cls, settings: Any, media_dir: Path, **overrides: Any) -> PollerConfig:
        """`settings` is a `bot.settings.Settings` (typed loosely so services do not depend on it)."""
        return cls(
            poll_interval=settings.poll_interval_seconds,
            job_timeout=settings.job_timeout_seconds,
            max_requests_per_second=settings.provider_requests_per_second,
            media_dir=media_dir,
            **overrides,
        )


@dataclass(frozen=True)
class RecoverySummary:
    resumed: int
    failed_uncertain: int


class RateLimiter:
    """A token bucket: at most `rate` acquisitions per second on average, bursts up to `burst`.

    Real (monotonic) time on purpose: it protects the provider from real request rates, whatever clock the
    job schedule runs on. A rate <= 0 disables it.
    """

    def __init__(
        self, rate: float, *, burst: float | None = None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._capacity = max(1.0, burst if burst is not None else rate)
        self._tokens = self._capacity
        self._monotonic = monotonic
        self._updated = monotonic()
        self._lock = asyncio.Lock()  # FIFO: waiters are served in arrival order

    async def acquire(self) -> None:
        if self._rate <= 0:
            return
        async with self._lock:
            while True:
                now = self._monotonic()
                self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
                self._updated = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self._rate)


class Poller:
    """Drives jobs through submit → poll → download → deliver. See the module docstring for the rules."""

    def __init__(
        self,
        *,
        store: Store,
        provider: ProviderPort,
        downloader: DownloaderPort,
        chat: ChatPort,
        config: PollerConfig,
        clock: Clock = system_clock,
        on_change: OnChange | None = None,
        card_context: CardContextHook | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._provider = provider
        self._downloader = downloader
        self._chat = chat
        self._config = config
        self._clock = clock
        # `on_change` first, then hooks added later by `add_listener` (Discord views: mod-log, card buttons).
        self._listeners: list[OnChange] = [on_change] if on_change is not None else []
        self._card_context = card_context
        self._rand = rand
        self._delivery = Delivery(store=store, chat=chat, media_dir=config.media_dir)
        self._limiter = RateLimiter(config.max_requests_per_second)
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._jobs = BackgroundTasks(log)  # one task per job being handled
        self._writes = BackgroundTasks(log, log_errors=False)  # shielded store writes; the awaiter handles errors
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False
        self._running = False
        self._busy: set[int] = set()  # job ids handled right now; never handled twice at once
        self._held: dict[int, float] = {}  # job id -> not before (when the store could not be told)
        self._internal_errors: dict[int, int] = {}
        self._streak: dict[int, int] = {}  # consecutive transient errors per job, for backoff
        self._verify_delivery: set[int] = set()  # an earlier post may have reached Discord: look first
        self.errors = 0  # internal errors since start, for metrics
        self.last_beat: float | None = None  # time.monotonic() of the last round start or end (/healthz)

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        """True while `run()` is looping (for /healthz)."""
        return self._running

    def add_listener(self, listener: OnChange) -> None:
        """Also call `listener` after every status change (after `on_change`); errors are logged, never raised."""
        self._listeners.append(listener)

    async def announce(self, job: Job) -> None:
        """A status change made outside the poller (a Cancel button): refresh the card and tell the hooks, as
        the poller does for its own changes."""
        await self._changed(job)

    def wake(self) -> None:
        """Look for due jobs now (the /video command calls this after inserting a job)."""
        self._wake.set()

    async def run(self) -> None:
        """Rounds until `stop()`: handle due jobs, then sleep until the next due time, a wake-up, or an interval."""
        self._running = True
        self._stopped.clear()
        try:
            while not self._stopping:
                self._wake.clear()  # before the round: a wake-up during it triggers another round at once
                self.last_beat = time.monotonic()
                try:
                    await self.run_once()
                    delay = await self._idle_delay()
                except Exception:
                    self.errors += 1
                    log.exception("poller round failed; trying again in %.1f s", self._config.poll_interval)
                    delay = self._config.poll_interval
                self.last_beat = time.monotonic()
                if self._stopping:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
        finally:
            self._running = False
            self._stopped.set()

    async def stop(self) -> None:
        """Take no new work; give in-flight jobs `stop_grace` seconds, then cancel them; let store writes finish.

        Cancelling is safe in every state: a cancelled poll or download is simply repeated at the next start, a
        cancelled post is found (marker) or deduplicated (nonce), and a cancelled submit leaves the row in
        `submitting`, which the next start resolves as SUBMIT_UNCERTAIN with a refund rather than pay twice.
        """
        self._stopping = True
        self._wake.set()
        grace = self._config.stop_grace
        if not await self._jobs.wait(within=grace):
            log.info("stopping: cancelling %d job task(s) still running", len(self._jobs))
            await self._jobs.cancel_all(within=grace)
        await self._writes.wait(within=grace)
        if self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), timeout=grace)

    async def recover(self) -> RecoverySummary:
        """At start-up: settle rows a crash left ambiguous and make every other unfinished job due now."""
        now = self._clock()
        resumed = failed = 0
        unfinished = await self._store.jobs.unfinished()
        for job in unfinished:
            try:
                if job.status is JobStatus.SUBMITTING:
                    # The submit may or may not have reached the provider; a second POST could be a second
                    # paid video. Stop, refund, and say so.
                    log.warning("job %s was being submitted when the bot stopped; failing it as uncertain", job.id)
                    await self._fail(job, FailureKind.SUBMIT_UNCERTAIN, None)
                    failed += 1
                    continue
                if job.status is JobStatus.DELIVERING:
                    self._verify_delivery.add(job.id)
                await self._write(self._store.jobs.update_fields(job.id, next_poll_at=now))
                resumed += 1
            except Exception:
                self.errors += 1
                log.exception("job %s: could not be recovered at start-up", job.id)
        self._remove_orphan_media({j.id for j in unfinished})
        if unfinished:
            log.info("recovered %d unfinished job(s); %d failed as uncertain submits", resumed, failed)
        self.wake()
        return RecoverySummary(resumed=resumed, failed_uncertain=failed)

    # ------------------------------------------------------------------ rounds

    async def run_once(self) -> int:
        """Handle every due job once (concurrently, bounded); return how many were handled."""
        if self._stopping:
            return 0
        now = self._clock()
        due = await self._store.jobs.due(now, limit=self._config.batch_size)
        jobs = [j for j in due if j.id not in self._busy and self._held.get(j.id, now) <= now]
        for job in jobs:
            self._busy.add(job.id)
        tasks = [self._jobs.spawn(self._guarded(job), name=f"reelbot-job-{job.id}") for job in jobs]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        return len(jobs)

    async def _idle_delay(self) -> float:
        """Seconds until the next job is due, at most one poll interval and at least a few milliseconds."""
        interval = self._config.poll_interval
        next_due = await self._store.jobs.next_due_at()
        if next_due is None:
            return interval
        return min(interval, max(0.02, next_due - self._clock()))

    async def _guarded(self, job: Job) -> None:
        try:
            async with self._semaphore:
                if self._stopping:
                    return
                await self._handle(job)
            self._internal_errors.pop(job.id, None)
            self._held.pop(job.id, None)
        except Exception as exc:
            await self._internal_error(job, exc)
        finally:
            self._busy.discard(job.id)

    async def _handle(self, job: Job) -> None:
        """Move `job` on as far as it can go now: a submit is followed by nothing, a completion by a download
        and a post in the same round, so a finished video does not wait another interval."""
        current: Job | None = job
        for _ in range(_MAX_STEPS_PER_ROUND):
            if current is None or current.terminal or self._stopping:
                return
            if current is not job and current.next_poll_at is not None and current.next_poll_at > self._clock():
                return  # e.g. just submitted: its first poll is scheduled for later
            current = await self._step(current)

    async def _step(self, job: Job) -> Job | None:
        """One state's work. Returns the job if it moved to a state with more work ready now, else None."""
        now = self._clock()
        if job.status in _EXPIRABLE and now - job.timeout_start >= self._config.job_timeout:
            await self._expire(job)
            return None
        if job.status is JobStatus.QUEUED:
            return await self._submit(job)
        if job.status is JobStatus.SUBMITTING:
            # Not in flight here (busy jobs are skipped), so a previous run died mid-submit.
            await self._fail(job, FailureKind.SUBMIT_UNCERTAIN, None)
            return None
        if job.status is JobStatus.GENERATING:
            return await self._poll(job)
        if job.status is JobStatus.DOWNLOADING:
            return await self._download(job)
        if job.status is JobStatus.DELIVERING:
            return await self._deliver(job)
        return None

    # ------------------------------------------------------------------ queued → submitting → generating

    async def _submit(self, job: Job) -> Job | None:
        await self._limiter.acquire()
        claimed = await self._transition(
            job, JobStatus.QUEUED, JobStatus.SUBMITTING, submit_attempts=job.submit_attempts + 1
        )
        if claimed is None:
            return None  # cancelled meanwhile
        try:
            generation = await self._provider.submit(generation_request(claimed))
        except RateLimited as exc:
            await self._requeue(claimed, exc, exc.retry_after)
            return None
        except ProviderUnavailable as exc:
            if exc.maybe_submitted and exc.status is None:
                # Timeout or a dropped connection after sending: the provider may be making the video.
                log.warning("job %s: submit outcome unknown (%s); not resubmitting", job.id, exc)
                return await self._fail(claimed, FailureKind.SUBMIT_UNCERTAIN, None)
            if exc.status is not None and claimed.submit_attempts >= self._config.max_submit_attempts:
                return await self._fail(claimed, FailureKind.PROVIDER_UNAVAILABLE, "it kept answering with errors")
            await self._requeue(claimed, exc, None)
            return None
        except InputRejected as exc:
            return await self._fail(claimed, FailureKind.REJECTED_INPUT, _detail(exc))
        except OutOfCredits as exc:
            log.error("job %s: the AI/ML API account is out of credits; top it up (%s)", job.id, exc)
            return await self._fail(claimed, FailureKind.OUT_OF_CREDITS, None)
        except AuthenticationFailed as exc:
            log.error("job %s: the AI/ML API refused the API key; check AIML_API_KEY (%s)", job.id, exc)
            return await self._fail(claimed, FailureKind.PROVIDER_UNAVAILABLE, None)
        except MalformedResponse as exc:
            # A 2xx we cannot read may still have created the job.
            log.error("job %s: unreadable submit answer (%s); not resubmitting", job.id, exc)
            return await self._fail(claimed, FailureKind.SUBMIT_UNCERTAIN, None)
        except ProviderError as exc:
            log.error("job %s: unexpected submit answer (%s); check AIML_API_BASE_URL and VIDEO_MODEL", job.id, exc)
            return await self._fail(claimed, FailureKind.PROVIDER_UNAVAILABLE, None)

        submitted_at = self._clock()
        # Logged before it is stored so an operator can always match a paid generation to a job.
        log.info("job %s submitted as generation %s", job.id, generation.id)
        self._streak.pop(job.id, None)
        if generation.status is ProviderStatus.FAILED:
            return await self._fail(
                claimed, FailureKind.REJECTED_CONTENT, generation.error_message, generation_id=generation.id
            )
        expected = await self._expected_duration(claimed)
        return await self._transition(
            claimed,
            JobStatus.SUBMITTING,
            JobStatus.GENERATING,
            generation_id=generation.id,
            submitted_at=submitted_at,
            next_poll_at=submitted_at + expected,
        )

    async def _expected_duration(self, job: Job) -> float:
        default = self._config.first_poll_default or self._config.poll_interval
        remaining = max(0.0, job.timeout_start + self._config.job_timeout - self._clock())
        try:
            recent = await self._store.jobs.recent_durations(job.model, job.duration)
        except Exception:
            # The submit has happened; failing to read history must not leave the row in `submitting`.
            log.exception("job %s: could not read recent durations; using the default", job.id)
            recent = []
        return first_poll_delay(recent, default, cap=remaining)

    async def _requeue(self, job: Job, exc: ProviderError, retry_after: float | None) -> None:
        delay = self._backoff(job, retry_after)
        log.info("job %s: provider busy on submit (%s); retrying in %.1f s", job.id, exc, delay)
        await self._transition(job, JobStatus.SUBMITTING, JobStatus.QUEUED, next_poll_at=self._clock() + delay)

    # ------------------------------------------------------------------ generating → downloading

    async def _poll(self, job: Job) -> Job | None:
        if not job.generation_id:
            return await self._fail(job, FailureKind.INTERNAL, "the job has no provider id")
        await self._limiter.acquire()
        try:
            generation = await self._provider.poll(job.generation_id)
        except GenerationNotFound as exc:
            log.warning("job %s: provider no longer knows generation %s", job.id, job.generation_id)
            return await self._fail(job, FailureKind.PROVIDER_UNAVAILABLE, _detail(exc))
        except ProviderError as exc:
            if isinstance(exc, AuthenticationFailed | OutOfCredits):
                log.error("job %s: polling refused by the AI/ML API (%s)", job.id, exc)
            retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
            await self._retry_later(job, exc, retry_after)
            return None

        now = self._clock()
        self._streak.pop(job.id, None)
        if generation.status is ProviderStatus.COMPLETED:
            return await self._transition(
                job,
                JobStatus.GENERATING,
                JobStatus.DOWNLOADING,
                video_url=generation.video_url,
                provider_finished_at=now,
                poll_attempts=job.poll_attempts + 1,
                next_poll_at=now,
                credits_used=generation.credits_used,
            )
        if generation.status is ProviderStatus.FAILED:
            return await self._fail(
                job,
                FailureKind.REJECTED_CONTENT,
                generation.error_message,
                poll_attempts=job.poll_attempts + 1,
                credits_used=generation.credits_used,
            )
        await self._update(
            job.id,
            poll_attempts=job.poll_attempts + 1,
            next_poll_at=now + next_poll_delay(self._config.poll_interval, self._rand),
        )
        return None

    # ------------------------------------------------------------------ downloading → delivering

    async def _download(self, job: Job) -> Job | None:
        media_dir = self._config.media_dir
        media_dir.mkdir(parents=True, exist_ok=True)
        dest, part = media_path(media_dir, job.id), partial_path(media_dir, job.id)
        limit = self._chat.upload_limit(job.guild_id)
        if dest.exists():
            size = dest.stat().st_size  # complete from a run that stopped before recording it
        elif not job.video_url:
            return await self._fail(job, FailureKind.DOWNLOAD_FAILED, "the video service gave no address")
        else:
            try:
                size = await self._downloader.download(job.video_url, part, max_bytes=limit)
            except MediaTooLarge as exc:
                # Not an error: the thread gets a link instead (delivery sees there is no file).
                log.info("job %s: video over the %d-byte upload limit; will post a link", job.id, limit)
                part.unlink(missing_ok=True)
                return await self._transition(
                    job, JobStatus.DOWNLOADING, JobStatus.DELIVERING, video_size=exc.size, next_poll_at=self._clock()
                )
            except MediaRefused as exc:
                log.warning("job %s: refused to download %s", job.id, exc)
                return await self._fail(job, FailureKind.DOWNLOAD_FAILED, "its address was not allowed")
            except DownloadError as exc:
                if exc.permanent:
                    return await self._fail(job, FailureKind.DOWNLOAD_FAILED, _detail(exc))
                await self._retry_later(job, exc, None)
                return None
            part.replace(dest)  # the final name appears only for a complete file
        self._streak.pop(job.id, None)
        return await self._transition(
            job, JobStatus.DOWNLOADING, JobStatus.DELIVERING, video_size=size, next_poll_at=self._clock()
        )

    # ------------------------------------------------------------------ delivering → delivered

    async def _deliver(self, job: Job) -> Job | None:
        finished = job.provider_finished_at or job.updated_at
        if self._clock() - finished >= self._config.job_timeout:
            # Discord has been failing for a whole job timeout; stop and refund instead of trying forever.
            self._delivery.discard_media(job.id)
            return await self._fail(job, FailureKind.DELIVERY_FAILED, "Discord kept failing")
        check = job.id in self._verify_delivery
        try:
            settled = await self._delivery.deliver(job, check_existing=check)
        except ChatError as exc:
            self._verify_delivery.add(job.id)  # the failed call may have posted anyway
            await self._retry_later(job, exc, None)
            return None
        self._verify_delivery.discard(job.id)
        self._streak.pop(job.id, None)
        if settled is not None:
            # A delivery failure was already announced in the parent channel by Delivery.
            await self._changed(settled)
        return None

    # ------------------------------------------------------------------ endings and bookkeeping

    async def _fail(self, job: Job, kind: FailureKind, reason: str | None, **fields: Any) -> Job | None:
        """Fail `job` from its current state (the store refunds it in the same write) and tell the member.

        Returns the failed row (None if the job had already moved on)."""
        failed = await self._transition(
            job, job.status, JobStatus.FAILED, failure_kind=kind, last_error=reason, **fields
        )
        if failed is not None:
            self._forget(job.id)
            await self._tell(failed)
        return failed

    async def _expire(self, job: Job) -> None:
        log.info("job %s: not finished within %.0f s; expiring it", job.id, self._config.job_timeout)
        expired = await self._transition(
            job, job.status, JobStatus.EXPIRED, failure_kind=FailureKind.TIMEOUT, last_error=None
        )
        if expired is not None:
            self._delivery.discard_media(job.id)
            self._forget(job.id)
            await self._tell(expired)

    async def _tell(self, job: Job) -> None:
        """Best-effort: the ending in plain words in the thread. The job is already settled either way."""
        try:
            await self._chat.post_text(
                job.thread_id or job.channel_id, failure_message(job), nonce=None, mention_user_id=job.user_id
            )
        except Exception as exc:
            log.warning("job %s: could not post the failure message: %s", job.id, exc)

    async def _retry_later(self, job: Job, exc: Exception, retry_after: float | None) -> None:
        delay = self._backoff(job, retry_after)
        log.warning("job %s (%s): %s; retrying in %.1f s", job.id, job.status, exc, delay)
        await self._update(job.id, poll_errors=job.poll_errors + 1, next_poll_at=self._clock() + delay)

    def _backoff(self, job: Job, retry_after: float | None) -> float:
        """The wait after one more transient error in a row for `job`."""
        streak = self._streak.get(job.id, 0) + 1
        self._streak[job.id] = streak
        return self._delay(streak, retry_after)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        return backoff(
            attempt, retry_after, base=self._config.poll_interval, cap=self._config.backoff_cap, rand=self._rand
        )

    async def _internal_error(self, job: Job, exc: Exception) -> None:
        """A bug or a store failure while handling one job: count it, back off, fail the job after too many."""
        self.errors += 1
        count = self._internal_errors.get(job.id, 0) + 1
        self._internal_errors[job.id] = count
        log.error("job %s: internal error %d of %d", job.id, count, self._config.max_internal_errors, exc_info=exc)
        try:
            if count >= self._config.max_internal_errors:
                current = await self._store.jobs.get(job.id)
                if current is not None and not current.terminal:
                    await self._fail(current, FailureKind.INTERNAL, None)
                self._forget(job.id)
                return
            not_before = self._clock() + self._delay(count, None)
            self._held[job.id] = not_before  # honoured even if the store write below fails too
            await self._update(job.id, next_poll_at=not_before)
        except Exception:
            log.exception("job %s: could not record the internal error either", job.id)

    def _forget(self, job_id: int) -> None:
        for table in (self._internal_errors, self._held, self._streak):
            table.pop(job_id, None)
        self._verify_delivery.discard(job_id)

    async def _transition(self, job: Job, expected: JobStatus, new: JobStatus, **fields: Any) -> Job | None:
        moved = await self._write(self._store.jobs.transition(job.id, expected, new, **fields))
        if moved is None:
            log.info("job %s: no longer %s, leaving it (wanted %s)", job.id, expected, new)
            return None
        await self._changed(moved)
        return moved

    async def _update(self, job_id: int, **fields: Any) -> Job:
        return await self._write(self._store.jobs.update_fields(job_id, **fields))

    async def _write(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a store write to completion even if this job's task is cancelled (shutdown)."""
        return await asyncio.shield(self._writes.spawn(coro, name="reelbot-store-write"))

    async def _changed(self, job: Job) -> None:
        """After a status change: refresh the status card (best-effort) and call the `on_change` hook."""
        if job.status_message_id is not None and job.status not in _SILENT_ON_CARD:
            try:
                ctx = await self._card_context(job) if self._card_context is not None else CardContext()
                if job.status is JobStatus.QUEUED and ctx.queue_position is None:
                    ctx = replace(ctx, queue_position=await self._store.jobs.queue_position(job.id))
                elif job.status is JobStatus.GENERATING and ctx.eta is None:
                    ctx = replace(ctx, eta=job.next_poll_at)  # set to the expected finish when it was submitted
                await self._chat.update_card(job.channel_id, job.status_message_id, render_card(job, ctx))
            except Exception as exc:
                log.warning("job %s: could not update the status card: %s", job.id, exc)
        for hook in self._listeners:
            try:
                await hook(job)
            except Exception:
                log.exception("job %s: on_change hook failed", job.id)

    def _remove_orphan_media(self, unfinished_ids: set[int]) -> None:
        """Files of jobs that already ended (a crash between recording and deleting) are deleted at start-up."""
        media_dir = self._config.media_dir
        if not media_dir.is_dir():
            return
        for path in media_dir.glob("*.mp4*"):
            stem = path.name.split(".", 1)[0]
            if stem.isdigit() and int(stem) not in unfinished_ids:
                path.unlink(missing_ok=True)


def _detail(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc)

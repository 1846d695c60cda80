"""The background worker that takes every accepted job to a terminal state.

One `Poller` per bot process. Each round it claims the jobs whose `next_poll_at` has come under a lease (the
store's `claim_due`: a job being handled is not claimed again, and comes back when the lease runs out if its
handler went silent) and moves each one forward by as many steps as are ready: submit (queued), poll
(generating), download (downloading), post (delivering); the job's thread is started beside those steps and
delivery waits for it (`bot.services.steps`). A job waiting for a moderator's approval is due only at its
deadline, when it expires. Every state change is a compare-and-set in the store written *before* the next
remote call, so a crash at any point leaves a row that says what to do next; `recover()` reads those rows at
start-up.

Rules that decide the shape of this module and its steps:
- A submit is never repeated when the provider might already have the job (see `steps.submit`); a row found in
  `submitting` after a crash ends as SUBMIT_UNCERTAIN with a refund.
- One job's trouble stays with that job: every job is handled in its own task, exceptions are caught per job,
  counted, and the job is rescheduled with backoff; after `max_internal_errors` it fails as INTERNAL.
- Requests to the provider go through the `ProviderPacer` (its found rate, its priorities); Discord requests
  through the Discord scheduler behind `ChatPort`. Nothing here waits for either while holding anything others
  need, so a slow Discord never holds up the provider work of other jobs.
- Member-facing words come from `presenter`. The status card is updated after each status change,
  best-effort and coalesced by the adapter; `card_context` may add the quota line, and every listener is called
  after every status change for anything else (metrics, other views).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace

from bot.domain.clock import Clock, system_clock
from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.services.delivery import Delivery, delivery_target
from bot.services.ports import ChatPort, DownloaderPort, ProviderPort
from bot.services.presenter import Card, CardContext, failure_message, render_card
from bot.services.steps.context import PollerConfig, StepContext
from bot.services.steps.deliver import deliver
from bot.services.steps.download import download
from bot.services.steps.poll import poll
from bot.services.steps.recovery import RecoverySummary, recover
from bot.services.steps.submit import submit
from bot.services.steps.thread import Threads
from bot.services.tasks import BackgroundTasks
from bot.storage import Store
from bot.traffic.foreground import Foreground
from bot.traffic.provider import PacerConfig, ProviderPacer
from bot.traffic.state import LocalTrafficState

__all__ = ["CardContextHook", "OnChange", "Poller", "PollerConfig", "RecoverySummary"]

log = logging.getLogger(__name__)

OnChange = Callable[[Job], Awaitable[None]]
CardContextHook = Callable[[Job], Awaitable[CardContext]]
"""Supplies what the poller cannot know for the card (the member's quota needs their roles, known to Discord)."""

# States a job may time out in. DELIVERING cannot (the video exists; it gets its own deadline) and a SUBMITTING
# row that is not in flight is handled as SUBMIT_UNCERTAIN, which says more than "timed out".
_EXPIRABLE = frozenset({JobStatus.AWAITING_APPROVAL, JobStatus.QUEUED, JobStatus.GENERATING, JobStatus.DOWNLOADING})
# The card reads the same in these pairs, so their second half costs no Discord edit.
_SILENT_ON_CARD = frozenset({JobStatus.SUBMITTING, JobStatus.DELIVERING})
_MAX_STEPS_PER_ROUND = 8
_SCAN_EVERY = 0.25  # seconds between looks for threads to start after wake-ups
# Seconds between the starts of two rounds, at least. Jobs come due one by one (jittered polls) and every /video
# wakes the poller; rounds this far apart take them in batches (one claim for many) at a cost of at most this
# much delay for a poll that is seconds apart anyway.
ROUND_GAP = 0.1


def worker_name(process: str | None = None) -> str:
    """A name for this process's leases, unique among the processes sharing a store (and between its runs):
    `process` (by default host name and process id) and a random suffix."""
    return f"{process or f'{socket.gethostname()}:{os.getpid()}'}:{uuid.uuid4().hex[:8]}"


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
        pacer: ProviderPacer | None = None,
        foreground: Foreground | None = None,
        owner: str | None = None,
    ) -> None:
        self._store = store
        self.owner = owner or worker_name()  # whose leases this poller's claims are
        self._foreground = foreground or Foreground()
        self._chat = chat
        self._config = config
        self._clock = clock
        # `on_change` first, then hooks added later by `add_listener` (Discord views: mod-log, card buttons).
        self._listeners: list[OnChange] = [on_change] if on_change is not None else []
        self._card_context = card_context
        self.pacer = pacer or ProviderPacer(
            LocalTrafficState(),
            PacerConfig(
                cap=config.provider_rate_cap, start=config.provider_start_rate, max_in_flight=config.max_concurrency
            ),
        )
        self._ctx = StepContext(
            store=store,
            provider=provider,
            downloader=downloader,
            chat=chat,
            config=config,
            clock=clock,
            pacer=self.pacer,
            rand=rand,
            changed=self._changed,
            owner=self.owner,
        )
        self._ctx.tell = self.tell
        self._delivery = Delivery(store=store, chat=chat, media_dir=config.media_dir, holder=self.owner)
        self.threads = Threads(self._ctx, on_ready=self.wake)
        self._jobs = BackgroundTasks(log)  # one task per job being handled
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False
        self._running = False
        self._busy: dict[int, asyncio.Task[None]] = {}  # jobs handled right now (never twice at once), their tasks
        self._held: dict[int, float] = {}  # job id -> not before (when the store could not be told)
        self._internal_errors: dict[int, int] = {}
        self._last_scan = float("-inf")  # time.monotonic() of the last look for thread steps to start
        self._scan_wanted = False  # a card was recorded since: look soon
        self._more_due = False
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
        """Look for due jobs now, and for threads to start (the /video command calls this after recording the
        job's card)."""
        self._scan_wanted = True
        self._wake.set()

    async def run(self) -> None:
        """Rounds until `stop()`: start the due jobs' work, then sleep until the next due time, a wake-up, or an
        interval. Rounds do not wait for the work they start (a job waiting for Discord or the provider's pace
        must not hold up the others); a job being handled is never started twice."""
        self._running = True
        self._stopped.clear()
        helpers = [
            asyncio.create_task(self._keep_leases(), name="reelbot-leases"),
            asyncio.create_task(self._listen(), name="reelbot-listen"),
        ]
        try:
            while not self._stopping:
                self._wake.clear()  # before the round: a wake-up during it triggers another round soon
                started = self.last_beat = time.monotonic()
                try:
                    await self._round(wait=False)
                    delay = 0.0 if self._more_due else await self._idle_delay()
                    if self._scan_wanted:
                        delay = min(delay, _SCAN_EVERY)
                except Exception:
                    self.errors += 1
                    log.exception("poller round failed; trying again in %.1f s", self._config.poll_interval)
                    delay = self._config.poll_interval
                self.last_beat = time.monotonic()
                if self._stopping:
                    break
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=delay)
                await asyncio.sleep(max(0.0, ROUND_GAP - (time.monotonic() - started)))
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            self._running = False
            self._stopped.set()

    async def _listen(self) -> None:
        """Wake a round as soon as a job is created or made workable, by any process (PostgreSQL's NOTIFY; on
        SQLite by this process). If the signal's connection is lost, listen again; rounds still come every poll
        interval meanwhile, so nothing waits longer than that."""
        while not self._stopping:
            try:
                async with self._store.jobs.listen_for_new() as created:
                    self.wake()  # anything created while nobody listened
                    while not self._stopping:
                        await created.wait()
                        self.wake()
            except Exception as exc:
                log.warning("lost the new-job signal (%s); listening again in a moment", exc)
                await asyncio.sleep(min(5.0, self._config.poll_interval))

    async def _keep_leases(self) -> None:
        """Renew the leases of the jobs (and thread steps) being handled here, three times per lease. A job whose
        lease could not be renewed was taken over by another process (this one was too slow, or paused): its task
        is cancelled, and its writes would have changed nothing anyway (they are made only by the lease holder)."""
        lease = self._config.lease_seconds
        every = lease / 3
        while True:
            await asyncio.sleep(every)
            for job_id, task in list(self._busy.items()):
                try:
                    kept = await self._store.jobs.renew_lease(job_id, self.owner, lease_seconds=lease)
                except Exception as exc:
                    log.warning("job %s: could not renew its lease (%s); trying again", job_id, exc)
                    continue
                if not kept and not task.done():
                    log.warning("job %s: its lease was taken over by another process; leaving the job to it", job_id)
                    task.cancel()
            await self.threads.renew_claims()

    async def stop(self) -> None:
        """Take no new work; give in-flight jobs `stop_grace` seconds, then cancel them; let store writes finish.

        Cancelling is safe in every state: a cancelled poll or download is simply repeated at the next start, a
        cancelled post is found (marker) or deduplicated (nonce), a cancelled thread step is resumed, and a
        cancelled submit leaves the row in `submitting`, which the next start resolves as SUBMIT_UNCERTAIN with
        a refund rather than pay twice.
        """
        self._stopping = True
        self._wake.set()
        grace = self._config.stop_grace
        if not await self._jobs.wait(within=grace):
            log.info("stopping: cancelling %d job task(s) still running", len(self._jobs))
            await self._jobs.cancel_all(within=grace)
        await self.threads.stop(within=grace)
        await self._ctx.writes.wait(within=grace)
        if self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), timeout=grace)

    async def recover(self) -> RecoverySummary:
        """At start-up: settle what a stopped run left (see `bot/services/steps/recovery.py`), then start a round."""
        summary = await recover(self._ctx)
        self.errors += summary.errors
        self.wake()
        return summary

    # ------------------------------------------------------------------ rounds

    async def run_once(self) -> int:
        """Handle every due job once (concurrently) and wait for that work; return how many were handled."""
        return await self._round(wait=True)

    async def _round(self, *, wait: bool) -> int:
        if self._stopping:
            return 0
        if self._foreground.busy:
            await self._foreground.wait()  # members' commands first: they share the database with rounds
        now = self._clock()
        since = time.monotonic() - self._last_scan
        if since >= self._config.poll_interval or (self._scan_wanted and since >= _SCAN_EVERY):
            # Threads of cards recorded while their job was already being handled, or left by a restart. Most
            # jobs' threads start when the job is claimed (`_handle`); this catches the rest, a few times a second
            # at most however many cards arrive.
            self._scan_wanted = False
            self._last_scan = time.monotonic()
            await self.threads.scan()
        limit = self._config.batch_size
        claimed = await self._store.jobs.claim_due(self.owner, lease_seconds=self._config.lease_seconds, limit=limit)
        self._more_due = len(claimed) >= limit
        jobs = [j for j in claimed if j.id not in self._busy and self._held.get(j.id, now) <= now]
        tasks = []
        for job in jobs:
            task = self._busy[job.id] = self._jobs.spawn(self._guarded(job), name=f"reelbot-job-{job.id}")
            tasks.append(task)
        if wait:
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.threads.settle()
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
            if self._stopping:
                return
            await self._handle(job)
            self._internal_errors.pop(job.id, None)
            self._held.pop(job.id, None)
        except Exception as exc:
            await self._internal_error(job, exc)
        finally:
            try:
                # Claimable again at the next time its step wrote (the lease would hold it until the lease's end).
                await self._ctx.write(self._store.jobs.release_lease(job.id, self.owner))
            except Exception as exc:
                log.warning("job %s: could not release its lease (it comes back when the lease ends): %s", job.id, exc)
            finally:
                self._busy.pop(job.id, None)
                # Its next time may come before the loop meant to look again (it slept while this job was claimed).
                self._wake.set()

    async def _handle(self, job: Job) -> None:
        """Move `job` on as far as it can go now: a submit is followed by nothing, a completion by a download
        and a post in the same round, so a finished video does not wait another interval."""
        self.threads.ensure(job)
        if job.status is JobStatus.DELIVERING:
            # Claimed while delivering: a post was tried before (this process's or a dead one's) and may have
            # reached Discord. Look for it before posting (the nonce covers a post still in flight elsewhere).
            self._ctx.verify_delivery.add(job.id)
        current: Job | None = job
        for _ in range(_MAX_STEPS_PER_ROUND):
            if current is None or current.terminal or self._stopping:
                return
            if current is not job and current.next_poll_at is not None and current.next_poll_at > self._clock():
                return  # e.g. just submitted: its first poll is scheduled for later
            current = await self._step(current)

    async def _step(self, job: Job) -> Job | None:
        """One state's work. Returns the job if it moved to a state with more work ready now, else None."""
        ctx = self._ctx
        if job.status in _EXPIRABLE and self._clock() - job.timeout_start >= self._config.job_timeout:
            await self._expire(job)
            return None
        if job.status is JobStatus.QUEUED:
            return await submit(ctx, job)
        if job.status is JobStatus.SUBMITTING:
            # Not in flight here (busy jobs are skipped), so a previous run died mid-submit.
            await ctx.fail(job, FailureKind.SUBMIT_UNCERTAIN, None)
            return None
        if job.status is JobStatus.GENERATING:
            return await poll(ctx, job)
        if job.status is JobStatus.DOWNLOADING:
            return await download(ctx, job)
        if job.status is JobStatus.DELIVERING:
            return await deliver(ctx, self._delivery, self.threads, job)
        return None

    # ------------------------------------------------------------------ endings and bookkeeping

    async def _expire(self, job: Job) -> None:
        log.info("job %s: not finished within %.0f s; expiring it", job.id, self._config.job_timeout)
        expired = await self._ctx.transition(
            job, job.status, JobStatus.EXPIRED, failure_kind=FailureKind.TIMEOUT, last_error=None
        )
        if expired is not None:
            self._delivery.discard_media(job.id)
            self._forget(job.id)
            await self.tell(expired)

    async def tell(self, job: Job, text: str | None = None) -> None:
        """Best-effort: `text` (by default the job's ending in plain words) where the member follows the job: its
        thread, waiting for it to be started if need be. Whatever it says has already happened either way."""
        try:
            job = await self.threads.wait(job)
            target, _ = delivery_target(job)
            content = failure_message(job) if text is None else text
            await self._chat.post_text(target, content, nonce=None, mention_user_id=job.user_id)
        except Exception as exc:
            log.warning("job %s: could not post in its thread: %s", job.id, exc)

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
                    await self._ctx.fail(current, FailureKind.INTERNAL, None)
                self._forget(job.id)
                return
            not_before = self._clock() + self._ctx.delay(count, None)
            self._held[job.id] = not_before  # honoured even if the store write below fails too
            await self._ctx.reschedule(job.id, not_before)
        except Exception:
            log.exception("job %s: could not record the internal error either", job.id)

    def _forget(self, job_id: int) -> None:
        for table in (self._internal_errors, self._held):
            table.pop(job_id, None)
        self._ctx.forget(job_id)

    async def _changed(self, job: Job) -> None:
        """After a status change: refresh the status card (best-effort) and call the listeners."""
        if job.status_message_id is not None and job.status not in _SILENT_ON_CARD:
            try:
                await self._chat.update_card(job.channel_id, job.status_message_id, lambda: self._render(job))
            except Exception as exc:
                log.warning("job %s: could not update the status card: %s", job.id, exc)
        for hook in self._listeners:
            try:
                await hook(job)
            except Exception:
                log.exception("job %s: on_change hook failed", job.id)

    async def _render(self, job: Job) -> Card:
        """The card for `job`, with the numbers read when it is about to be shown. No history, no ETA: the
        expected finish comes only from how long similar jobs took (`card_context`), never from a guess."""
        ctx = await self._card_context(job) if self._card_context is not None else CardContext()
        if job.status is JobStatus.QUEUED and ctx.queue_position is None:
            ctx = replace(ctx, queue_position=await self._store.jobs.queue_position(job.id))
        return render_card(job, ctx)

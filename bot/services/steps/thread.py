"""The job's thread: started by the poller on the job's status card, before anything is posted for the job.

The command only records the card; starting the thread is a step of the pipeline, stored in the job row (no
thread id and no refusal yet = still to do), so a restart picks it up again (`scan`). It runs beside the job's
provider work, not before it: Discord lets a channel start 5 threads per 5 seconds, and a crowd in one channel
must not hold up their submits. The Discord scheduler paces the requests per channel; delivery and failure
notices wait for the thread (`wait`). Only the bot token and ids are used, no gateway cache, so any process
with the token can do it.

A video with saved characters gets a first message in its new thread saying who is who (`presenter.cast_note`),
posted by this step before it ends, so it comes before anything else posted for the job.

Several processes may find the same thread still to be started (each scans for them); the one that claims the step
in the job row (`claim_thread`, or `claim_threads` for all at once; renewed while it runs) asks Discord. The others
leave it to that process: only what needs the thread (a delivery, a notice) looks at the row until it says it is done.

When Discord refuses for good (missing permission, a channel that cannot hold threads, the server's thread
limit, a deleted card), the refusal is stored in words for the member: the video then goes to the channel,
and its message says why. Transient failures are retried a few times, then treated as a refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from bot.domain.jobs import Job, JobStatus
from bot.services.ports import ChatError
from bot.services.presenter import cast_note, thread_name
from bot.services.steps.context import StepContext, log
from bot.services.tasks import BackgroundTasks
from bot.storage.models import JobNotFound

__all__ = ["THREAD_EXISTS", "Threads", "refusal_reason"]

THREAD_EXISTS = 160004  # "A thread has already been created for this message": its id is the message's
_OTHERS_STEP_CHECK = 0.5  # seconds between looks at a thread step another process is doing


def refusal_reason(exc: ChatError) -> str:
    """Why there is no thread, in words for the member (the raw Discord error stays in the log)."""
    if exc.status == 403:
        return "I am not allowed to start threads in this channel"
    if exc.code == 160006:
        return "this server has reached Discord's limit of active threads"
    if exc.code == 50024:
        return "this channel cannot hold threads"
    if exc.code == 10008:
        return "the video's status card was deleted"
    return "Discord refused to start a thread here"


class Threads:
    """One thread task per job at most; whoever needs the thread waits for that task."""

    def __init__(self, ctx: StepContext, on_ready: Callable[[], None]) -> None:
        self._ctx = ctx
        self._on_ready = on_ready
        self._running: dict[int, asyncio.Task[Job | None]] = {}
        self._claimed: set[int] = set()  # jobs whose thread step this process claimed and is doing
        self._tasks = BackgroundTasks(log)

    def __len__(self) -> int:
        return len(self._running)

    def ensure(self, job: Job) -> asyncio.Task[Job | None] | None:
        """Start the job's thread step here unless it runs here already; None if there is nothing to start. The
        task ends with the row as the step left it, or with None at once if another process holds the step."""
        if not job.thread_pending:
            return None
        task = self._running.get(job.id)
        if task is None or task.done():  # a step that just ended (its callback not run yet) is not running
            task = self._tasks.spawn(self._start(job), name=f"reelbot-thread-{job.id}")
            self._running[job.id] = task
            task.add_done_callback(lambda ended: self._forget(job.id, ended))
        return task

    def _forget(self, job_id: int, ended: asyncio.Task[Job | None]) -> None:
        if self._running.get(job_id) is ended:
            del self._running[job_id]

    async def wait(self, job: Job) -> Job:
        """The job once its thread step has ended (the row as the step left it), whichever process does it. While
        another process holds the step, its row is looked at every `_OTHERS_STEP_CHECK` seconds (and the step is
        taken over if that process's claim runs out)."""
        while True:
            task = self.ensure(job)
            if task is None:
                return job
            done = await asyncio.shield(task)
            if done is not None:
                return done
            await asyncio.sleep(_OTHERS_STEP_CHECK)
            current = await self._ctx.store.jobs.get(job.id)
            if current is None:
                raise JobNotFound(job.id)
            job = current

    async def scan(self) -> int:
        """Claim and start every stored thread step that no process is doing (after a restart, or a card recorded
        while the job was already being handled). Returns how many were started."""
        started = 0
        ctx = self._ctx
        for job in await ctx.store.jobs.claim_threads(ctx.owner, lease_seconds=ctx.config.lease_seconds):
            if job.id not in self._running:
                self._claimed.add(job.id)
                self.ensure(job)
                started += 1
        return started

    async def renew_claims(self) -> None:
        """Keep this process's claims on the thread steps it is doing (the poller calls this with its leases). A
        claim with no step running here is let go, never renewed alone: that would keep every other process
        waiting for a thread nobody is starting. The renewal is a scan, so a step it finds without a holder (even
        one this process let go) is started here, not left waiting."""
        self._claimed &= self._running.keys()
        if self._claimed:
            try:
                await self.scan()  # one statement renews them all (and takes any step nobody holds)
            except Exception as exc:
                log.warning("could not renew this process's thread steps (%s)", exc)

    async def settle(self) -> None:
        """Wait for the thread steps running now to end (`Poller.run_once` waits for all the work it started)."""
        running = list(self._running.values())
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    async def stop(self, within: float) -> None:
        """Cancel thread steps still waiting (a restart resumes them)."""
        await self._tasks.cancel_all(within=within)

    async def _start(self, job: Job) -> Job | None:
        try:
            if job.id not in self._claimed and not await self._claim(job.id):
                return None  # another process is doing it (or it is done): nothing to wait for unless asked to
            return await self._ask_discord(job)
        finally:
            self._claimed.discard(job.id)

    async def _claim(self, job_id: int) -> bool:
        ctx = self._ctx
        if await ctx.store.jobs.claim_thread(job_id, ctx.owner, lease_seconds=ctx.config.lease_seconds):
            self._claimed.add(job_id)
            return True
        return False

    async def _ask_discord(self, job: Job) -> Job:
        ctx = self._ctx
        job_id, channel_id = job.id, job.channel_id
        assert job.status_message_id is not None
        message_id = job.status_message_id
        attempt = 0
        while True:
            try:
                thread_id = await ctx.chat.start_thread(channel_id, message_id, thread_name(job_id, job.prompt))
            except ChatError as exc:
                if exc.code == THREAD_EXISTS:
                    # Started before a restart: the thread's id is the card's. Its note may be there already, and
                    # a second one would be worse than none.
                    return await self._record(job_id, thread_id=message_id)
                if exc.permanent:
                    log.warning("job %s: Discord refused its thread: %s", job_id, exc)
                    return await self._record(job_id, refused=refusal_reason(exc))
                attempt += 1
                if attempt >= ctx.config.max_thread_attempts:
                    log.warning("job %s: giving up on its thread after %d tries: %s", job_id, attempt, exc)
                    return await self._record(job_id, refused="Discord kept failing to start a thread")
                delay = ctx.delay(attempt, None, base=1.0)
                log.info("job %s: could not start its thread (%s); trying again in %.1f s", job_id, exc, delay)
                await asyncio.sleep(delay)
                continue
            # Before the thread is recorded: until then nothing else is posted for the job, so the note comes first.
            await self._post_note(job, thread_id)
            return await self._record(job_id, thread_id=thread_id)

    async def _post_note(self, job: Job, thread_id: int) -> None:
        """Best-effort: the characters' note as the new thread's first message, for a video with characters."""
        note = cast_note(job)
        if note is None:
            return
        try:
            await self._ctx.chat.post_text(thread_id, note, nonce=None, mention_user_id=job.user_id)
        except ChatError as exc:
            log.warning("job %s: could not post the characters in its thread: %s", job.id, exc)

    async def _record(self, job_id: int, *, thread_id: int | None = None, refused: str | None = None) -> Job:
        job = await self._ctx.write(self._ctx.store.jobs.record_thread(job_id, thread_id=thread_id, refused=refused))
        if job.status is JobStatus.DELIVERING:
            with contextlib.suppress(Exception):
                self._on_ready()  # its delivery was waiting: it is due now
        return job

"""Posting a finished video in the job's thread, exactly once.

The file (or, over the guild's upload limit, a link) is posted with the bot token through `ChatPort`, and the
message id is stored in the same compare-and-set that moves the job to DELIVERED. Three things make a repeat
unable to post twice: the Discord message nonce (the job's `delivery_nonce`, sent with `enforce_nonce`, so a
retried POST returns the original message), a search for the delivery marker before posting again whenever an
earlier attempt may have reached Discord (after a restart or a failed call), and the stored message id.

Which form is posted is decided from what is on disk, so no extra column is needed: the downloader leaves
`<media_dir>/<job id>.mp4` only when the complete file fits the upload limit; no file (the download stopped at
the cap) or a file that no longer fits (the guild lost a boost) means the link.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.services.ports import ChatError, ChatPort
from bot.services.presenter import delivery_marker, failure_message, link_message, video_controls, video_message
from bot.storage import Store

__all__ = ["Delivery", "delivery_target", "media_path", "partial_path"]

log = logging.getLogger(__name__)


def media_path(media_dir: Path, job_id: int) -> Path:
    """Where a complete download of the job's video lives until it is delivered."""
    return media_dir / f"{job_id}.mp4"


def partial_path(media_dir: Path, job_id: int) -> Path:
    """Where a download in progress is written; renamed to `media_path` only once complete."""
    return media_dir / f"{job_id}.mp4.part"


def delivery_target(job: Job) -> tuple[int, str | None]:
    """Where the job's messages go: its thread, or the channel together with why not the thread.

    Raises ValueError while the thread is still being started: nothing is posted for a job before its thread
    exists or Discord has refused it for good."""
    if job.thread_id is not None:
        return job.thread_id, None
    if job.thread_refused is not None:
        return job.channel_id, job.thread_refused
    if job.status_message_id is None:
        return job.channel_id, "its status card could not be posted"
    raise ValueError(f"job {job.id}: its thread is still being started")


class Delivery:
    """Delivers DELIVERING jobs. A transient `ChatError` propagates so the caller can retry with backoff."""

    def __init__(self, *, store: Store, chat: ChatPort, media_dir: Path, holder: str | None = None) -> None:
        self._store = store
        self._holder = holder  # the poller's lease name: its record of the post counts only while it holds the job
        self._chat = chat
        self._media_dir = media_dir

    async def deliver(self, job: Job, *, check_existing: bool = False) -> Job | None:
        """Post the video (or link) for `job`, which must be DELIVERING; record it; delete the temp file.

        Returns the row afterwards (DELIVERED, or FAILED on a permanent chat error), None if another task moved
        the job first.

        `check_existing`: an earlier attempt may have posted (restart, timeout): look for the delivery marker
        first. A permanent chat error fails the job (the store refunds it) and tells the member in the parent
        channel, since the thread itself is unusable. Transient chat errors are raised unchanged.
        """
        if job.status is not JobStatus.DELIVERING:
            raise ValueError(f"job {job.id} is {job.status}, not delivering")
        target, outside = delivery_target(job)
        try:
            if check_existing:
                found = await self._chat.find_message(target, delivery_marker(job))
                if found is not None:
                    log.info("job %s: delivery message %s already in the thread; not posting again", job.id, found)
                    return await self._mark_delivered(job, found)
            message_id = await self._post(job, target, outside)
        except ChatError as exc:
            if not exc.permanent:
                raise
            return await self._fail(job, exc)
        return await self._mark_delivered(job, message_id)

    async def _post(self, job: Job, target: int, outside: str | None) -> int:
        """Post the file if it fits, else a link; return the message id. `outside`: why not in a thread."""
        path = media_path(self._media_dir, job.id)
        limit = await self._chat.upload_limit(job.guild_id)
        size = _file_size(path)
        if size is not None and size <= limit:
            try:
                message_id = await self._chat.post_file(
                    target,
                    video_message(job, outside=outside),
                    path,
                    f"reelbot-{job.id}.mp4",
                    nonce=job.delivery_nonce,
                    mention_user_id=job.user_id,
                    controls=video_controls(job),
                )
            except ChatError as exc:
                # 413: Discord's idea of the limit is lower than ours (boost lost in between); a link still works.
                if exc.status != 413:
                    raise
                log.warning("job %s: Discord refused the %d-byte file as too large; posting a link", job.id, size)
            else:
                return message_id
        if not job.video_url:
            raise ChatError("no file and no video URL to post", permanent=True)
        content = link_message(job, job.video_url, job.video_size or size, limit, outside=outside)
        # The link gets its own nonce: after a 413 the file's nonce may already be spent on the refused POST.
        return await self._chat.post_text(
            target,
            content,
            nonce=_link_nonce(job.delivery_nonce),
            mention_user_id=job.user_id,
            controls=video_controls(job),
        )

    async def _mark_delivered(self, job: Job, message_id: int) -> Job | None:
        done = await self._store.jobs.transition(
            job.id, JobStatus.DELIVERING, JobStatus.DELIVERED, holder=self._holder, delivered_message_id=message_id
        )
        if done is None:
            log.warning("job %s left delivering before message %s was recorded", job.id, message_id)
        self.discard_media(job.id)
        return done

    async def _fail(self, job: Job, exc: ChatError) -> Job | None:
        log.warning("job %s: cannot post in thread %s: %s", job.id, job.thread_id, exc)
        failed = await self._store.jobs.transition(
            job.id,
            JobStatus.DELIVERING,
            JobStatus.FAILED,
            holder=self._holder,
            failure_kind=FailureKind.DELIVERY_FAILED,
            last_error=_member_reason(exc),
        )
        self.discard_media(job.id)
        if failed is not None and job.thread_id is not None and job.thread_id != job.channel_id:
            # The thread is gone or closed to the bot; the channel the member ran /video in is the next best place.
            try:
                await self._chat.post_text(
                    job.channel_id, failure_message(failed), nonce=None, mention_user_id=job.user_id
                )
            except ChatError as second:
                log.warning(
                    "job %s: could not tell the member in channel %s either: %s", job.id, job.channel_id, second
                )
        return failed

    def discard_media(self, job_id: int) -> None:
        """Remove the job's downloaded file and any partial download; missing files are fine."""
        for path in (media_path(self._media_dir, job_id), partial_path(self._media_dir, job_id)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _link_nonce(nonce: str) -> str:
    # Discord nonces are at most 25 characters; keep the result within that and different from the file's.
    return ("L" + nonce)[:25] if not nonce.startswith("L") else ("K" + nonce)[:25]


def _member_reason(exc: ChatError) -> str:
    """Words for the member; the raw Discord error stays in the log."""
    if exc.status == 403:
        return "the bot is no longer allowed to post in the thread"
    if exc.status == 404:
        return "the thread no longer exists"
    return "Discord refused the message"

"""What the card buttons do to a job — without Discord (the buttons themselves are in bot/card_buttons.py).

`CardControls` decides who may act on a job and carries the action out through the store's compare-and-set:
Cancel races the poller safely (whichever changes the row first wins; the other sees the CAS fail and leaves
the job alone), Retry/Remix/aspect switch go through `Intake.start_from`, so a new job is checked and
charged exactly like `/video`, and Delete records who took a delivered video down (not refunded: it was made).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from bot.domain.jobs import TERMINAL, FailureKind, Job, JobStatus
from bot.services.characters import CharacterLibrary
from bot.services.intake import Intake, Invalid
from bot.services.media import MediaHost, MediaProblem, Unavailable, fresh_references
from bot.storage import Refused, Reserved, Store

__all__ = [
    "FREE_RETRY_KINDS",
    "Actor",
    "CancelOutcome",
    "CancelResult",
    "CardControls",
    "Denied",
    "RemoveOutcome",
    "RemoveResult",
    "retry_is_free",
]

FREE_RETRY_KINDS = frozenset(
    {
        FailureKind.OUT_OF_CREDITS,
        FailureKind.PROVIDER_UNAVAILABLE,
        FailureKind.TIMEOUT,
        FailureKind.DOWNLOAD_FAILED,
        FailureKind.DELIVERY_FAILED,
        FailureKind.SUBMIT_UNCERTAIN,
        FailureKind.INTERNAL,
    }
)
"""Failures that were the provider's (or the bot's) fault: retrying them costs the member nothing. A refused
prompt or image (rejected_input/content) and a cancellation were the member's choice, so a retry is charged."""

_CANCELLABLE = (JobStatus.AWAITING_APPROVAL, JobStatus.QUEUED, JobStatus.GENERATING)


@dataclass(frozen=True)
class Actor:
    """Who pressed the button: their id, and whether they are a moderator of the job's guild."""

    user_id: int
    is_moderator: bool = False

    def may_act_on(self, job: Job) -> bool:
        return self.is_moderator or self.user_id == job.user_id


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"
    NOT_FOUND = "not_found"  # no such job in this guild
    NOT_ALLOWED = "not_allowed"  # neither the owner nor a moderator
    TOO_LATE = "too_late"  # the video exists already (downloading, delivering or delivered)
    ALREADY_ENDED = "already_ended"  # failed, expired or cancelled before


@dataclass(frozen=True)
class CancelResult:
    outcome: CancelOutcome
    job: Job | None = None


class RemoveOutcome(StrEnum):
    REMOVED = "removed"
    ALREADY_REMOVED = "already_removed"  # recorded before (the message may still need deleting)
    NOT_FOUND = "not_found"  # no such job in this guild
    NOT_ALLOWED = "not_allowed"  # neither the requester nor a moderator
    NOT_DELIVERED = "not_delivered"  # there is no posted video to take down


@dataclass(frozen=True)
class RemoveResult:
    outcome: RemoveOutcome
    job: Job | None = None


@dataclass(frozen=True)
class Denied:
    """A Retry/Remix that may not happen; `reason` is a member-facing sentence. Nothing was charged."""

    reason: str


def retry_is_free(job: Job) -> bool:
    """Whether Retry on this ended job is not charged (see FREE_RETRY_KINDS)."""
    if job.status is JobStatus.EXPIRED:
        return True
    return job.status is JobStatus.FAILED and job.failure_kind in FREE_RETRY_KINDS


class CardControls:
    """Cancel, Retry, Remix and aspect switch for one job, by its owner or a moderator."""

    def __init__(
        self,
        store: Store,
        intake: Intake,
        *,
        characters: CharacterLibrary | None = None,
        submit_wait: float = 3.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._intake = intake
        self._characters = characters or CharacterLibrary(store)
        self._submit_wait = submit_wait
        self._sleep = sleep
        self._retry_lock = asyncio.Lock()  # one Retry per failed job, even when the button is double-clicked

    async def job_for(self, guild_id: int, job_id: int) -> Job | None:
        """The job, only if it belongs to this guild (a custom id is just a number anyone could craft)."""
        return await self._store.jobs.get(job_id, guild_id=guild_id)

    async def cancel(self, guild_id: int, job_id: int, actor: Actor) -> CancelResult:
        """Cancel before the video exists: refunded in the same write, never delivered.

        A job in `submitting` is between two writes of the poller (the state machine cannot cancel it there,
        the provider may be creating it); wait a moment for it to become `generating` and cancel then."""
        job = await self.job_for(guild_id, job_id)
        if job is None:
            return CancelResult(CancelOutcome.NOT_FOUND)
        if not actor.may_act_on(job):
            return CancelResult(CancelOutcome.NOT_ALLOWED, job)
        waited = 0.0
        while True:
            if job.status in TERMINAL:
                outcome = CancelOutcome.TOO_LATE if job.status is JobStatus.DELIVERED else CancelOutcome.ALREADY_ENDED
                return CancelResult(outcome, job)
            if job.status in (JobStatus.DOWNLOADING, JobStatus.DELIVERING):
                return CancelResult(CancelOutcome.TOO_LATE, job)
            if job.status in _CANCELLABLE:
                who = "a moderator" if actor.user_id != job.user_id else "the member"
                cancelled = await self._store.jobs.transition(
                    job.id,
                    job.status,
                    JobStatus.CANCELLED,
                    actor_id=actor.user_id,
                    failure_kind=FailureKind.CANCELLED,
                    last_error=f"cancelled by {who}",
                )
                if cancelled is not None:
                    return CancelResult(CancelOutcome.CANCELLED, cancelled)
            elif waited >= self._submit_wait:
                return CancelResult(CancelOutcome.TOO_LATE, job)
            else:
                await self._sleep(0.1)
                waited += 0.1
            current = await self.job_for(guild_id, job_id)
            if current is None:
                return CancelResult(CancelOutcome.NOT_FOUND)
            job = current

    async def again(
        self,
        guild_id: int,
        job_id: int,
        actor: Actor,
        *,
        role_ids: tuple[int, ...],
        media: MediaHost,
        retry: bool = False,
        prompt: str | None = None,
        aspect_ratio: str | None = None,
    ) -> Reserved | Refused | Invalid | Denied | Unavailable:
        """Start a new job for the owner from `job_id`: a Retry (`retry=True`, only after the job ended without
        a video; free after a provider failure, once per job), or a Remix / aspect switch of a delivered video.
        The new job keeps the original's images, characters and style.

        The images' URLs are renewed through `media` first (Discord's are signed and expire); Unavailable, with
        nothing charged, when Discord says an image is gone or cannot answer now. `role_ids` are the owner's
        roles (for their limit)."""
        job = await self.job_for(guild_id, job_id)
        if job is None:
            return Denied("That job is not on this server.")
        if not actor.may_act_on(job):
            return Denied("Only the member who started this video, or a moderator, can do that.")
        if retry and job.status not in (JobStatus.FAILED, JobStatus.EXPIRED, JobStatus.CANCELLED):
            return Denied(f"Job #{job.id} has not failed, so there is nothing to retry.")
        if not retry and job.status is not JobStatus.DELIVERED:
            return Denied(f"Job #{job.id} has no video yet; remix it once it is delivered.")
        try:
            references = await fresh_references(media, job.references)
        except MediaProblem as problem:
            return Unavailable(problem)
        characters = await self._characters.fresh_cast(media, guild_id, job.characters)
        if isinstance(characters, Unavailable):
            return characters
        if not retry:
            return await self._intake.start_from(
                job,
                role_ids=role_ids,
                references=references,
                characters=characters,
                prompt=prompt,
                aspect_ratio=aspect_ratio,
            )
        async with self._retry_lock:
            earlier = await self._store.jobs.retries_of(job.id)
            if earlier:
                return Denied(f"Job #{job.id} was already retried as job #{earlier[0].id}.")
            free = retry_is_free(job)
            return await self._intake.start_from(
                job, role_ids=role_ids, references=references, characters=characters, free=free, retry_of=job.id
            )

    async def remove(self, guild_id: int, job_id: int, actor: Actor) -> RemoveResult:
        """Record the takedown of a delivered video by its requester or a moderator (who, and when). Not refunded:
        the video was made. The caller deletes the message itself; ALREADY_REMOVED lets a second press retry
        that after a failed delete."""
        job = await self.job_for(guild_id, job_id)
        if job is None:
            return RemoveResult(RemoveOutcome.NOT_FOUND)
        if not actor.may_act_on(job):
            return RemoveResult(RemoveOutcome.NOT_ALLOWED, job)
        if job.status is JobStatus.DELIVERED:
            removed = await self._store.jobs.transition(
                job.id,
                JobStatus.DELIVERED,
                JobStatus.REMOVED,
                removed_by=actor.user_id,
                removed_at=self._store.clock(),
            )
            if removed is not None:
                return RemoveResult(RemoveOutcome.REMOVED, removed)
            job = await self.job_for(guild_id, job_id) or job  # someone else removed it a moment ago
        if job.status is JobStatus.REMOVED:
            return RemoveResult(RemoveOutcome.ALREADY_REMOVED, job)
        return RemoveResult(RemoveOutcome.NOT_DELIVERED, job)

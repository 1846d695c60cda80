"""The life of a video job: its states, the one table of allowed transitions, and the job record.

Pure data and rules, no I/O. The store mirrors `TRANSITIONS` in a SQL CHECK and changes a status only with a
compare-and-set, so two tasks (the poller and a Cancel button, say) can never both move the same job.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.domain.cast import CastMember

__all__ = [
    "ACTIVE",
    "INITIAL",
    "REFUNDED_ON",
    "TERMINAL",
    "TRANSITIONS",
    "FailureKind",
    "InvalidTransition",
    "Job",
    "JobStatus",
    "Reference",
    "can_transition",
    "check_transition",
]


class JobStatus(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    """Charged, in a channel where moderators approve videos: waits for Approve (then queued) or Reject. Nothing
    is sent to the provider before Approve."""
    QUEUED = "queued"
    """Accepted and charged; waiting for the poller to submit it (or for provider capacity)."""
    SUBMITTING = "submitting"
    """The submit request is in flight. After a crash nobody knows whether the provider has the job."""
    GENERATING = "generating"
    """The provider accepted it (we hold its generation id); polled until it finishes."""
    DOWNLOADING = "downloading"
    """The provider finished; the MP4 is being fetched before its URL expires."""
    DELIVERING = "delivering"
    """The file (or link) is being posted in the thread."""
    DELIVERED = "delivered"
    """The video is in the thread. Terminal."""
    FAILED = "failed"
    """Ended without a video; refunded. Terminal."""
    CANCELLED = "cancelled"
    """Stopped by the member or a moderator; refunded, never delivered. Terminal."""
    EXPIRED = "expired"
    """Not finished (or not approved) within JOB_TIMEOUT_SECONDS; refunded. Terminal."""
    REMOVED = "removed"
    """A delivered video its requester or a moderator deleted from the channel. Terminal; not refunded (the video
    was made and paid for)."""


class FailureKind(StrEnum):
    """Why a job ended without a video; decides the words the member reads and whether Retry is free."""

    REJECTED_INPUT = "rejected_input"
    REJECTED_CONTENT = "rejected_content"
    OUT_OF_CREDITS = "out_of_credits"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    TIMEOUT = "timeout"
    DOWNLOAD_FAILED = "download_failed"
    DELIVERY_FAILED = "delivery_failed"
    SUBMIT_UNCERTAIN = "submit_uncertain"
    INTERNAL = "internal"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    """A moderator rejected it while it waited for approval (the reason is in `last_error`)."""


_S = JobStatus

# The whole state machine. Reading guide:
# - submitting → queued: the provider said 429/503 before creating the job, so it is safe to submit again later.
# - submitting → failed: rejected input, out of credits, or found in `submitting` after a crash (SUBMIT_UNCERTAIN:
#   never resubmit blindly, a second POST can create a second paid job).
# - downloading → generating is not allowed: a failed download is retried from `downloading` itself.
# - cancelled is reachable only before the video exists on our side; once downloading, we finish the delivery.
# - awaiting_approval comes before queued: Approve queues it; Reject (cancelled), the member's Cancel, the job
#   timeout (expired) or a card nobody saw (failed) end it, refunded.
# - delivered → removed is the one move out of an ended job: a takedown of the posted video, never refunded.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    _S.AWAITING_APPROVAL: frozenset({_S.QUEUED, _S.CANCELLED, _S.EXPIRED, _S.FAILED}),
    _S.QUEUED: frozenset({_S.SUBMITTING, _S.CANCELLED, _S.EXPIRED, _S.FAILED}),
    _S.SUBMITTING: frozenset({_S.GENERATING, _S.QUEUED, _S.FAILED, _S.EXPIRED}),
    _S.GENERATING: frozenset({_S.DOWNLOADING, _S.FAILED, _S.EXPIRED, _S.CANCELLED}),
    _S.DOWNLOADING: frozenset({_S.DELIVERING, _S.FAILED, _S.EXPIRED}),
    _S.DELIVERING: frozenset({_S.DELIVERED, _S.FAILED}),
    _S.DELIVERED: frozenset({_S.REMOVED}),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.EXPIRED: frozenset(),
    _S.REMOVED: frozenset(),
}

INITIAL = frozenset({_S.QUEUED, _S.AWAITING_APPROVAL})
"""The states a job may be created in."""
TERMINAL = frozenset({_S.DELIVERED, _S.FAILED, _S.CANCELLED, _S.EXPIRED, _S.REMOVED})
"""Ended: the job's work is over (a delivered video may still be removed, which changes nothing else)."""
ACTIVE = frozenset(JobStatus) - TERMINAL
"""States that count toward MAX_ACTIVE_JOBS_PER_USER (waiting for approval included)."""
REFUNDED_ON = frozenset({_S.FAILED, _S.CANCELLED, _S.EXPIRED})
"""Every way a job can end without a video gives the member their unit back."""


class InvalidTransition(Exception):
    def __init__(self, old: JobStatus, new: JobStatus) -> None:
        super().__init__(f"a job cannot go from {old} to {new}")
        self.old, self.new = old, new


def can_transition(old: JobStatus, new: JobStatus) -> bool:
    return new in TRANSITIONS[old]


def check_transition(old: JobStatus, new: JobStatus) -> None:
    if not can_transition(old, new):
        raise InvalidTransition(old, new)


@dataclass(frozen=True)
class Reference:
    """One reference image as Discord described it when the member attached it."""

    url: str
    filename: str
    content_type: str
    size: int
    width: int
    height: int
    attachment_id: int | None = None


@dataclass(frozen=True)
class Job:
    """One row of the jobs table. Only Discord ids are kept, never Discord objects."""

    id: int
    guild_id: int
    channel_id: int
    user_id: int
    prompt: str
    duration: int
    aspect_ratio: str
    model: str
    references: tuple[Reference, ...]
    status: JobStatus
    created_at: float
    updated_at: float
    delivery_nonce: str
    thread_id: int | None = None
    status_message_id: int | None = None
    generation_id: str | None = None
    failure_kind: FailureKind | None = None
    last_error: str | None = None
    submitted_at: float | None = None
    provider_finished_at: float | None = None
    finished_at: float | None = None
    next_poll_at: float | None = None
    submit_attempts: int = 0
    poll_attempts: int = 0
    poll_errors: int = 0
    video_url: str | None = None
    video_size: int | None = None
    delivered_message_id: int | None = None
    retry_of: int | None = None
    free: bool = False
    """A free Retry after a failure on the provider's (or the bot's) side: recorded, never charged."""
    role_ids: tuple[int, ...] = ()
    """The requester's roles when they asked (their limit may come from a role)."""
    characters: tuple[CastMember, ...] = ()
    """The saved characters in this video, in the order sent (`@Element1` first)."""
    style_name: str | None = None
    style_text: str | None = None
    """The style picked (or the channel's default), kept apart from the member's prompt: the card shows the name,
    the provider gets the text added to the prompt (`bot.domain.cast.compose_prompt`)."""
    pool_id: int | None = None
    """The channel budget the job was charged to; None when it was charged to the member's own quota (or free).
    A refund goes back to where the charge came from, whatever happened to the budget since."""
    needs_approval: bool = False
    """Started in a channel where moderators approve videos."""
    reviewed_by: int | None = None
    """The moderator who approved or rejected it."""
    reviewed_at: float | None = None
    removed_by: int | None = None
    """Who deleted the delivered video (the requester or a moderator)."""
    removed_at: float | None = None
    credits_used: float | None = None
    """What the provider says the generation cost, in its credits (when its answer carries it)."""
    thread_refused: str | None = None
    """Why Discord refused the job's thread for good (words for the member); the video then goes to the channel."""

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def timeout_start(self) -> float:
        """Where JOB_TIMEOUT_SECONDS counts from: acceptance, or the approval of a job that waited for one (the
        wait for a moderator has its own timeout, and must not eat into the time the provider gets)."""
        return self.reviewed_at if self.reviewed_at is not None else self.created_at

    @property
    def thread_pending(self) -> bool:
        """The job's thread is still to be started (its card is posted, no thread yet, none refused)."""
        return self.status_message_id is not None and self.thread_id is None and self.thread_refused is None

"""Everything a member reads about a job, written once: the status card and the thread messages.

Pure functions of a job and a few numbers, so the same words appear whether a job changes in the poller,
in a button handler or after a restart, and tests can read them without Discord.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.domain.pools import Period, PoolStatus
from bot.domain.quotas import Allowance, QuotaStatus, Refusal
from bot.domain.text import escape_markdown, quote_prompt, shorten

__all__ = [
    "BLOCKED_WORDS_PROBLEM",
    "Card",
    "CardContext",
    "Controls",
    "allowance_line",
    "approved_message",
    "budget_line",
    "budget_summary",
    "card_actions",
    "delivery_marker",
    "details_card",
    "failure_message",
    "link_message",
    "quota_lines",
    "refusal_message",
    "removed_message",
    "render_card",
    "status_label",
    "thread_name",
    "video_controls",
    "video_message",
]

BLUE, AMBER, GREEN, RED, GREY = 0x5865F2, 0xF0B232, 0x23A55A, 0xDA373C, 0x80848E


@dataclass(frozen=True)
class Controls:
    """Buttons for a message about one job, by name (see `card_actions`); the Discord adapter makes them."""

    job_id: int | None
    actions: tuple[str, ...]


@dataclass(frozen=True)
class Card:
    """A status card, independent of discord.py (the adapter turns it into an embed)."""

    title: str
    description: str
    color: int
    fields: tuple[tuple[str, str], ...] = ()
    footer: str = ""
    job_id: int | None = None
    actions: tuple[str, ...] = ()
    """Buttons the card offers now, by name (see `card_actions`); the Discord adapter turns them into components."""
    thumbnail_url: str | None = None

    @property
    def controls(self) -> Controls:
        return Controls(self.job_id, self.actions)


@dataclass(frozen=True)
class CardContext:
    """Numbers the card shows that are not in the job row."""

    allowance: Allowance | None = None  # what the member (or the channel's budget) has left
    queue_position: int | None = None  # 1-based, while waiting for provider capacity
    eta: float | None = None  # epoch seconds when the video is expected
    extra: dict[str, str] = field(default_factory=dict)


def _ts(epoch: float, style: str = "R") -> str:
    """A Discord timestamp: every member sees it in their own time zone, and relative ones tick by themselves."""
    return f"<t:{int(epoch)}:{style}>"


# What a member is told when a job fails, by cause. Provider-side problems say explicitly that it is not the
# member's fault; every line ends with the refund because that is the first thing people worry about.
_FAILURE_TEXT: dict[FailureKind, str] = {
    FailureKind.REJECTED_INPUT: "The video service refused the request{detail}.",
    FailureKind.REJECTED_CONTENT: "The video service could not make this video{detail}.",
    FailureKind.OUT_OF_CREDITS: (
        "The video service account this bot uses has run out of credits. This is not your fault; "
        "the operators have been alerted."
    ),
    FailureKind.PROVIDER_UNAVAILABLE: "The video service is unavailable right now{detail}. Please try again later.",
    FailureKind.TIMEOUT: "The video was not ready in time, so the job was stopped.",
    FailureKind.DOWNLOAD_FAILED: "The finished video could not be fetched from the video service{detail}.",
    FailureKind.DELIVERY_FAILED: "The video could not be posted here{detail}.",
    FailureKind.SUBMIT_UNCERTAIN: (
        "The bot restarted while starting this job and cannot be sure it reached the video service, "
        "so it was stopped rather than risk charging twice."
    ),
    FailureKind.INTERNAL: "Something went wrong inside the bot{detail}.",
    FailureKind.CANCELLED: "The job was cancelled.",
}


def failure_reason(job: Job) -> str:
    kind = job.failure_kind or FailureKind.INTERNAL
    detail = f": {escape_markdown(shorten(job.last_error, 300))}" if job.last_error else ""
    template = _FAILURE_TEXT.get(kind, _FAILURE_TEXT[FailureKind.INTERNAL])
    return template.format(detail=detail)


def _status_line(job: Job, ctx: CardContext) -> tuple[str, int]:
    status = job.status
    if status is JobStatus.AWAITING_APPROVAL:
        return "🕒 Waiting for a moderator to approve it — nothing is made before that", BLUE
    if status is JobStatus.QUEUED:
        where = f" — number {ctx.queue_position} in line" if ctx.queue_position else ""
        eta = f", expected {_ts(ctx.eta)}" if ctx.eta else ""
        return f"⏳ Queued{where}{eta}", BLUE
    if status is JobStatus.SUBMITTING:
        return "⏳ Starting", BLUE
    if status is JobStatus.GENERATING:
        eta = f" — expected {_ts(ctx.eta)}" if ctx.eta else ""
        return f"🎬 Generating{eta}", AMBER
    if status in (JobStatus.DOWNLOADING, JobStatus.DELIVERING):
        return "📦 Finishing — posting the video in the thread", AMBER
    if status is JobStatus.DELIVERED:
        return "✅ Delivered in the thread", GREEN
    if status is JobStatus.REMOVED:
        return f"🗑️ Delivered, then removed by {_who(job, job.removed_by)}", GREY
    if status is JobStatus.CANCELLED and job.failure_kind is FailureKind.REJECTED:
        return f"🚫 Rejected by a moderator — {_rejection(job)} Your video was refunded.", GREY
    if status is JobStatus.CANCELLED:
        return "🚫 Cancelled — your video was refunded", GREY
    if status is JobStatus.EXPIRED and _never_approved(job):
        return "⌛ Not approved in time — your video was refunded", RED
    if status is JobStatus.EXPIRED:
        return "⌛ Timed out — your video was refunded", RED
    return f"❌ Failed — {failure_reason(job)} Your video was refunded.", RED


def _who(job: Job, user_id: int | None) -> str:
    if user_id is None:
        return "someone"
    return "the member who asked for it" if user_id == job.user_id else f"moderator <@{user_id}>"


def _rejection(job: Job) -> str:
    reason = escape_markdown(shorten(job.last_error, 300)) if job.last_error else "no reason given"
    return f"reason: {reason}."


def _never_approved(job: Job) -> bool:
    return job.needs_approval and job.reviewed_at is None


_STATUS_LABELS: dict[JobStatus, str] = {
    JobStatus.AWAITING_APPROVAL: "🕒 waiting for approval",
    JobStatus.QUEUED: "⏳ queued",
    JobStatus.SUBMITTING: "⏳ starting",
    JobStatus.GENERATING: "🎬 generating",
    JobStatus.DOWNLOADING: "📦 finishing",
    JobStatus.DELIVERING: "📦 finishing",
    JobStatus.DELIVERED: "✅ delivered",
    JobStatus.FAILED: "❌ failed, refunded",
    JobStatus.CANCELLED: "🚫 cancelled, refunded",
    JobStatus.EXPIRED: "⌛ timed out, refunded",
    JobStatus.REMOVED: "🗑️ delivered, then removed",
}


def status_label(job: Job) -> str:
    """The job's state in two or three words, for lists (`/jobs`, the mod-log); the card says it in full."""
    return _STATUS_LABELS[job.status]


def card_actions(job: Job) -> tuple[str, ...]:
    """What can be done from the card in this state: a moderator approves or rejects a job waiting for it; the
    member stops it while it may still be stopped (the state machine allows `cancelled` only before the video
    exists on our side), tries again after a failure, and iterates on a delivered video. Details, always."""
    if job.status is JobStatus.AWAITING_APPROVAL:
        return ("approve", "reject", "cancel", "details")
    if job.status in (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.GENERATING):
        return ("cancel", "details")
    if job.status is JobStatus.DELIVERED:
        return ("remix", "details", "aspect")
    if job.status in (JobStatus.FAILED, JobStatus.EXPIRED, JobStatus.CANCELLED):
        return ("retry", "details")
    return ("details",)


def video_controls(job: Job) -> Controls:
    """The buttons on the delivered video itself: its requester or a moderator can delete it; anyone can ask
    how it was made."""
    return Controls(job.id, ("delete", "details"))


def render_card(job: Job, ctx: CardContext | None = None) -> Card:
    ctx = ctx or CardContext()
    status, color = _status_line(job, ctx)
    refs = len(job.references)
    fields = [
        ("Status", status),
        ("Options", f"{job.duration} s · {job.aspect_ratio} · {refs} reference image{'s' if refs != 1 else ''}"),
    ]
    if ctx.allowance is not None and ctx.allowance.pool is not None:
        fields.append(("Team budget", budget_summary(ctx.allowance.pool)))
    elif ctx.allowance is not None:
        fields.append(("Your quota", f"{ctx.allowance.remaining} of {ctx.allowance.total} videos left"))
    fields.extend(ctx.extra.items())
    return Card(
        title=f"Video #{job.id}",
        description=f"> {quote_prompt(job.prompt, 300)}",
        color=color,
        fields=tuple(fields),
        footer=f"Requested by member {job.user_id} · Kling O1",
        job_id=job.id,
        actions=card_actions(job),
    )


def _approval(job: Job) -> str:
    if not job.needs_approval:
        return "not needed in this channel"
    if job.status is JobStatus.AWAITING_APPROVAL:
        return "waiting for a moderator"
    if job.reviewed_by is None:
        return "nobody approved it in time"
    when = f" {_ts(job.reviewed_at, 'f')}" if job.reviewed_at is not None else ""
    if job.failure_kind is FailureKind.REJECTED:
        return f"rejected by <@{job.reviewed_by}>{when} — {_rejection(job)}"
    return f"approved by <@{job.reviewed_by}>{when}"


def _charged_to(job: Job) -> str:
    if job.retry_of is not None and job.free:
        return f"nothing: a free retry of job #{job.retry_of}"
    if job.pool_id is not None:
        return f"the team budget of <#{job.channel_id}>"
    return "the member's own quota"


def _timings(job: Job) -> str:
    steps = [("requested", job.created_at)]
    if job.reviewed_at is not None and job.failure_kind is not FailureKind.REJECTED:
        steps.append(("approved", job.reviewed_at))
    if job.submitted_at is not None:
        steps.append(("generating", job.submitted_at))
    if job.provider_finished_at is not None:
        steps.append(("generated", job.provider_finished_at))
    if job.status in (JobStatus.DELIVERED, JobStatus.REMOVED) and job.finished_at is not None:
        steps.append(("delivered", job.finished_at))
    elif job.terminal and job.finished_at is not None:
        steps.append(("ended", job.finished_at))
    if job.removed_at is not None:
        steps.append(("removed", job.removed_at))
    return "\n".join(f"{name}: {_ts(at, 'f')}" for name, at in steps)


def details_card(job: Job) -> Card:
    """Everything about how a video was made, for the Details button (a private answer): the prompt, options,
    images, who charged what, who approved it, when each step happened, and what the provider says it cost."""
    images = "\n".join(
        f"{i}. {escape_markdown(shorten(r.filename, 60))} ({r.width}×{r.height}, {_image_size(r.size)})"
        for i, r in enumerate(job.references, start=1)
    )
    credits = (
        f"{job.credits_used:,.0f} credits (as the video service reported them)"
        if job.credits_used is not None
        else "not reported by the video service"
        if job.provider_finished_at is not None
        else "none yet: nothing was generated"
    )
    fields = [
        ("Status", status_label(job)),
        ("Options", f"{job.duration} s · {job.aspect_ratio} · model `{job.model}`"),
        ("Images", images or "none"),
        ("Requested by", f"<@{job.user_id}>, charged to {_charged_to(job)}"),
        ("Approval", _approval(job)),
        ("Timings", _timings(job)),
        ("Credits used", credits),
    ]
    if job.removed_by is not None:
        fields.append(("Removed", f"by {_who(job, job.removed_by)}"))
    return Card(
        title=f"Details of video #{job.id}",
        description=f"> {quote_prompt(job.prompt, 3500)}",
        color=GREY,
        fields=tuple(fields),
    )


def thread_name(job_id: int, prompt: str) -> str:
    """Discord thread names are 1–100 characters; lead with the job number so threads sort and search well."""
    one_line = " ".join(prompt.split()) or "video"
    return shorten(f"#{job_id} {one_line}", 100)


def delivery_marker(job: Job) -> str:
    """Text only the delivery message of this job contains: after a crash, finding it proves it was posted."""
    return f"your video is ready (job #{job.id})"


def _size(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def _image_size(size: int) -> str:
    return _size(size) if size >= 1024 * 1024 else f"{max(1, round(size / 1024))} KiB"


def video_message(job: Job) -> str:
    return f"🎬 <@{job.user_id}> {delivery_marker(job)}."


def link_message(job: Job, url: str, size: int | None, limit: int) -> str:
    size_text = f" is {_size(size)}, which" if size else ""
    return (
        f"🎬 <@{job.user_id}> {delivery_marker(job)}. The file{size_text} is larger than this server's "
        f"{_size(limit)} upload limit, so here is a link instead (it expires in a few days — save it): {url}"
    )


def failure_message(job: Job) -> str:
    if job.status is JobStatus.EXPIRED and _never_approved(job):
        reason = "No moderator approved it in time, so it was not made."
    elif job.status is JobStatus.EXPIRED:
        reason = _FAILURE_TEXT[FailureKind.TIMEOUT]
    elif job.failure_kind is FailureKind.REJECTED:
        reason = f"A moderator rejected it ({_rejection(job)})"
    elif job.status is JobStatus.CANCELLED:
        reason = _FAILURE_TEXT[FailureKind.CANCELLED]
    else:
        reason = failure_reason(job)
    return f"<@{job.user_id}> job #{job.id} did not produce a video. {reason} Your video was refunded."


def approved_message(job: Job) -> str:
    """In the thread when a moderator approves a video that waited for it."""
    return f"✅ A moderator approved job #{job.id}; it is being made now."


def removed_message(job: Job) -> str:
    """In the thread when a delivered video was deleted (nobody is named or pinged; the mod-log names who)."""
    by = "the member who asked for it" if job.removed_by == job.user_id else "a moderator"
    return f"🗑️ The video of job #{job.id} was removed by {by}."


# ---------------------------------------------------------------------- allowances: /quota, refusals, the card

_PERIOD_WORDS = {Period.DAY: "today", Period.WEEK: "this week", Period.MONTH: "this month"}
BLOCKED_WORDS_PROBLEM = (
    "Your prompt contains a word or phrase this server does not allow. Change the prompt and try again."
)
"""The refusal of a prompt with a blocked word; it never repeats the word (the channel may be public)."""


def _resets(pool: PoolStatus) -> str:
    """When a budget starts again, as a date everyone reads the same (periods are UTC) and a relative time."""
    moment = datetime.fromtimestamp(pool.resets_at, UTC)
    day = f"{moment.day} {moment:%B}"
    when = f"at 00:00 UTC ({_ts(pool.resets_at)})" if pool.period is Period.DAY else f"on {day} (UTC)"
    return f"resets {when}"


def budget_summary(pool: PoolStatus) -> str:
    """What is left of a channel's budget and when it resets, for the card and the moderators' reply."""
    return f"{pool.remaining} of {pool.videos} videos left {_PERIOD_WORDS[pool.period]}; {_resets(pool)}"


def budget_line(pool: PoolStatus) -> str:
    """A channel's budget in one sentence, e.g. "team budget: 37 of 100 left this month, resets on 1 December"."""
    return (
        f"This channel's team budget: **{pool.remaining}** of **{pool.videos}** videos left "
        f"{_PERIOD_WORDS[pool.period]}; it {_resets(pool)}."
    )


def allowance_line(allowance: Allowance, window_seconds: float) -> str:
    """The member's own quota in one sentence (`QuotaStatus.own`): used of limit plus grants, in the window."""
    window = window_seconds / 3600
    window_text = f"{window:g} hours" if window != 24 else "24 hours"
    granted = f" (that includes {allowance.granted} granted by a moderator)" if allowance.granted else ""
    return f"You have used **{allowance.used}** of **{allowance.total}** videos in the last {window_text}{granted}."


def quota_lines(quota: QuotaStatus) -> list[str]:
    """The member's allowance in words, for `/quota`, `/jobs` and refusals: the channel's budget when one
    applies (and their own quota for other channels), else their own quota; blocks, the next slot, active jobs."""
    own = allowance_line(quota.own, quota.window_seconds)
    if quota.pool is not None:
        lines = [
            budget_line(quota.pool),
            "Videos started here use the team budget. Your own quota, for other channels: " + own[0].lower() + own[1:],
        ]
    else:
        lines = [own]
    if quota.blocked:
        reason = f": {escape_markdown(quota.block_reason)}" if quota.block_reason else "."
        lines.append(f"A moderator has blocked you from starting videos{reason}")
    if quota.next_free_at is not None and quota.pool is None:
        lines.append(f"Your next video slot frees {_ts(quota.next_free_at)} ({_ts(quota.next_free_at, 'f')}).")
    lines.append(f"Active jobs: {quota.active} of {quota.max_active} at once.")
    return lines


def refusal_message(quota: QuotaStatus, refusal: Refusal) -> str:
    """Why a new video was refused (blocked, over the allowance, too many at once), with the numbers."""
    if refusal is Refusal.BLOCKED:
        head = "You cannot start videos on this server right now."
    elif refusal is Refusal.TOO_MANY_ACTIVE:
        head = (
            f"You already have {quota.active} videos in progress, the most you can have at once "
            f"({quota.max_active}). Start another when one is delivered."
        )
    elif refusal is Refusal.POOL_EMPTY:
        head = "This channel's team budget is used up for now."
    else:
        head = "You have reached your video limit for now."
    return "\n".join([head, *quota_lines(quota), "Nothing was charged."])

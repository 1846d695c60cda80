"""Everything a member reads about a job, written once: the status card and the thread messages.

Pure functions of a job and a few numbers, so the same words appear whether a job changes in the poller,
in a button handler or after a restart, and tests can read them without Discord.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.domain.quotas import QuotaStatus
from bot.domain.text import escape_markdown, quote_prompt, shorten

__all__ = [
    "Card",
    "CardContext",
    "card_actions",
    "delivery_marker",
    "failure_message",
    "link_message",
    "quota_lines",
    "render_card",
    "thread_name",
    "video_message",
]

BLUE, AMBER, GREEN, RED, GREY = 0x5865F2, 0xF0B232, 0x23A55A, 0xDA373C, 0x80848E


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


@dataclass(frozen=True)
class CardContext:
    """Numbers the card shows that are not in the job row."""

    remaining: int | None = None  # videos the member has left in the window
    limit: int | None = None
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
    if status is JobStatus.CANCELLED:
        return "🚫 Cancelled — your video was refunded", GREY
    if status is JobStatus.EXPIRED:
        return "⌛ Timed out — your video was refunded", RED
    return f"❌ Failed — {failure_reason(job)} Your video was refunded.", RED


def card_actions(job: Job) -> tuple[str, ...]:
    """What a member can do from the card in this state: stop it while it may still be stopped (the state
    machine allows `cancelled` only before the video exists on our side), try again after a failure, and
    iterate on a delivered video."""
    if job.status in (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.GENERATING):
        return ("cancel",)
    if job.status is JobStatus.DELIVERED:
        return ("remix", "aspect")
    if job.status in (JobStatus.FAILED, JobStatus.EXPIRED, JobStatus.CANCELLED):
        return ("retry",)
    return ()


def render_card(job: Job, ctx: CardContext | None = None) -> Card:
    ctx = ctx or CardContext()
    status, color = _status_line(job, ctx)
    refs = len(job.references)
    fields = [
        ("Status", status),
        ("Options", f"{job.duration} s · {job.aspect_ratio} · {refs} reference image{'s' if refs != 1 else ''}"),
    ]
    if ctx.remaining is not None and ctx.limit is not None:
        fields.append(("Your quota", f"{ctx.remaining} of {ctx.limit} videos left"))
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


def thread_name(job_id: int, prompt: str) -> str:
    """Discord thread names are 1–100 characters; lead with the job number so threads sort and search well."""
    one_line = " ".join(prompt.split()) or "video"
    return shorten(f"#{job_id} {one_line}", 100)


def delivery_marker(job: Job) -> str:
    """Text only the delivery message of this job contains: after a crash, finding it proves it was posted."""
    return f"your video is ready (job #{job.id})"


def _size(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def _outside(reason: str | None) -> str:
    """The sentence a video posted in the channel rather than in its thread carries."""
    if reason is None:
        return ""
    return f" It is posted here rather than in a thread because {escape_markdown(shorten(reason, 200))}."


def video_message(job: Job, *, outside: str | None = None) -> str:
    """The delivery message; `outside` is why there is no thread (the video then goes to the channel)."""
    return f"🎬 <@{job.user_id}> {delivery_marker(job)}.{_outside(outside)}"


def link_message(job: Job, url: str, size: int | None, limit: int, *, outside: str | None = None) -> str:
    size_text = f" is {_size(size)}, which" if size else ""
    return (
        f"🎬 <@{job.user_id}> {delivery_marker(job)}.{_outside(outside)} The file{size_text} is larger than this "
        f"server's {_size(limit)} upload limit, so here is a link instead (it expires in a few days — save it): {url}"
    )


def failure_message(job: Job) -> str:
    if job.status is JobStatus.EXPIRED:
        reason = _FAILURE_TEXT[FailureKind.TIMEOUT]
    elif job.status is JobStatus.CANCELLED:
        reason = _FAILURE_TEXT[FailureKind.CANCELLED]
    else:
        reason = failure_reason(job)
    return f"<@{job.user_id}> job #{job.id} did not produce a video. {reason} Your video was refunded."


def quota_lines(quota: QuotaStatus) -> list[str]:
    """The member's quota in words, for `/quota` and for refusals."""
    window = quota.window_seconds / 3600
    window_text = f"{window:g} hours" if window != 24 else "24 hours"
    lines = [f"You have used **{quota.used}** of **{quota.limit}** videos in the last {window_text}."]
    if quota.blocked:
        reason = f": {escape_markdown(quota.block_reason)}" if quota.block_reason else "."
        lines.append(f"A moderator has blocked you from starting videos{reason}")
    if quota.next_free_at is not None:
        lines.append(f"Your next video slot frees {_ts(quota.next_free_at)} ({_ts(quota.next_free_at, 'f')}).")
    lines.append(f"Active jobs: {quota.active} of {quota.max_active} at once.")
    return lines

"""Everything a member reads about a job, written once: the status card, its buttons and the thread messages.

Pure functions of a job and a few numbers, so the same words appear whether a job changes in the poller,
in a button handler or after a restart, and tests can read them without Discord. The words about a member's
allowance and refusals are in `quota_words`, the Details button's answer in `details`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.domain.cast import element_tag
from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.domain.quotas import Allowance
from bot.domain.text import discord_time, escape_markdown, quote_prompt, shorten
from bot.services.quota_words import card_quota_field

__all__ = [
    "Card",
    "CardContext",
    "Controls",
    "approved_message",
    "card_actions",
    "cast_note",
    "delivery_marker",
    "failure_message",
    "failure_reason",
    "file_size",
    "link_message",
    "look_fields",
    "rejection_reason",
    "removed_message",
    "render_card",
    "status_label",
    "thread_name",
    "video_controls",
    "video_message",
    "who_did",
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
        eta = f", expected {discord_time(ctx.eta)}" if ctx.eta else ""
        return f"⏳ Queued{where}{eta}", BLUE
    if status is JobStatus.SUBMITTING:
        return "⏳ Starting", BLUE
    if status is JobStatus.GENERATING:
        eta = f" — expected {discord_time(ctx.eta)}" if ctx.eta else ""
        return f"🎬 Generating{eta}", AMBER
    if status in (JobStatus.DOWNLOADING, JobStatus.DELIVERING):
        return "📦 Finishing — posting the video in the thread", AMBER
    if status is JobStatus.DELIVERED:
        return "✅ Delivered in the thread", GREEN
    if status is JobStatus.REMOVED:
        return f"🗑️ Delivered, then removed by {who_did(job, job.removed_by)}", GREY
    if status is JobStatus.CANCELLED and job.failure_kind is FailureKind.REJECTED:
        return f"🚫 Rejected by a moderator — {rejection_reason(job)} Your video was refunded.", GREY
    if status is JobStatus.CANCELLED:
        return "🚫 Cancelled — your video was refunded", GREY
    if status is JobStatus.EXPIRED and _never_approved(job):
        return "⌛ Not approved in time — your video was refunded", RED
    if status is JobStatus.EXPIRED:
        return "⌛ Timed out — your video was refunded", RED
    return f"❌ Failed — {failure_reason(job)} Your video was refunded.", RED


def who_did(job: Job, user_id: int | None) -> str:
    """Who did something to a job (removed it, say), as the card and Details name them."""
    if user_id is None:
        return "someone"
    return "the member who asked for it" if user_id == job.user_id else f"moderator <@{user_id}>"


def rejection_reason(job: Job) -> str:
    """A moderator's reason for rejecting a job, as the card, the thread and Details quote it."""
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
        *look_fields(job),
    ]
    if ctx.allowance is not None:
        fields.append(card_quota_field(ctx.allowance))
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


def file_size(size: int) -> str:
    """Bytes in MiB, one decimal, the way Discord states its upload limits."""
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
    size_text = f" is {file_size(size)}, which" if size else ""
    return (
        f"🎬 <@{job.user_id}> {delivery_marker(job)}.{_outside(outside)} The file{size_text} is larger than this "
        f"server's {file_size(limit)} upload limit, so here is a link instead (it expires in a few days — save "
        f"it): {url}"
    )


def failure_message(job: Job) -> str:
    if job.status is JobStatus.EXPIRED and _never_approved(job):
        reason = "No moderator approved it in time, so it was not made."
    elif job.status is JobStatus.EXPIRED:
        reason = _FAILURE_TEXT[FailureKind.TIMEOUT]
    elif job.failure_kind is FailureKind.REJECTED:
        reason = f"A moderator rejected it ({rejection_reason(job)})"
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


# ---------------------------------------------------------------------- characters and styles


def _cast_line(job: Job) -> str:
    return " · ".join(f"`{element_tag(n)}` **{member.name}**" for n, member in enumerate(job.characters, start=1))


def look_fields(job: Job) -> list[tuple[str, str]]:
    """The card's lines for the job's characters (which is `@Element1`, which `@Element2`…) and its style, by
    name only: the style's text is the moderators' wording, not the member's, so the card never shows it."""
    fields = []
    if job.characters:
        fields.append(("Characters", _cast_line(job)))
    if job.style_name:
        fields.append(("Style", f"**{job.style_name}**"))
    return fields


def cast_note(job: Job) -> str | None:
    """The thread's first message for a video with characters: who is who, and how to refer to them."""
    if not job.characters:
        return None
    first = job.characters[0].name
    return (
        f"🎭 Characters in this video: {_cast_line(job)}.\n"
        f"In a prompt (a Remix, say) write `@{first}` or `{element_tag(1)}` to refer to {first}; "
        "the video service knows them by number."
    )

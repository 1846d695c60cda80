"""The Details button's answer: how one video was made, for whoever asks (privately)."""

from __future__ import annotations

from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.domain.text import discord_time, escape_markdown, quote_prompt, shorten
from bot.services.presenter import GREY, Card, file_size, look_fields, rejection_reason, status_label, who_did

__all__ = ["details_card"]


def _image_size(size: int) -> str:
    return file_size(size) if size >= 1024 * 1024 else f"{max(1, round(size / 1024))} KiB"


def _approval(job: Job) -> str:
    if not job.needs_approval:
        return "not needed in this channel"
    if job.status is JobStatus.AWAITING_APPROVAL:
        return "waiting for a moderator"
    if job.reviewed_by is None:
        return "nobody approved it in time"
    when = f" {discord_time(job.reviewed_at, 'f')}" if job.reviewed_at is not None else ""
    if job.failure_kind is FailureKind.REJECTED:
        return f"rejected by <@{job.reviewed_by}>{when} — {rejection_reason(job)}"
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
    return "\n".join(f"{name}: {discord_time(at, 'f')}" for name, at in steps)


def details_card(job: Job) -> Card:
    """Everything about how a video was made, for the Details button (a private answer): the prompt, options,
    images, characters and style (by name, as on the card), who was charged, who approved it, when each step
    happened, and what the provider says it cost."""
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
        *look_fields(job),
        ("Requested by", f"<@{job.user_id}>, charged to {_charged_to(job)}"),
        ("Approval", _approval(job)),
        ("Timings", _timings(job)),
        ("Credits used", credits),
    ]
    if job.removed_by is not None:
        fields.append(("Removed", f"by {who_did(job, job.removed_by)}"))
    return Card(
        title=f"Details of video #{job.id}",
        description=f"> {quote_prompt(job.prompt, 3500)}",
        color=GREY,
        fields=tuple(fields),
    )

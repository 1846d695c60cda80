"""The mod-log's words: what moderators read in their channel — every moderator action and every job.

Pure functions. A job gets one mod-log message when it is accepted (member, prompt, reference thumbnails,
characters and style, Block and Cancel buttons, or Approve and Reject while it waits for a moderator), edited
when a moderator approves it and when it ends (the outcome); `ModeratorActions` remembers where that message is,
and bot/discord_ui.py posts and edits it.
"""

from __future__ import annotations

from bot.domain.jobs import Job, JobStatus
from bot.domain.text import escape_markdown, quote_prompt, shorten
from bot.services.presenter import AMBER, GREEN, GREY, RED, Card, failure_reason, look_fields, status_label

__all__ = ["action_text", "job_entry"]

_COLOR = {JobStatus.DELIVERED: GREEN, JobStatus.CANCELLED: GREY, JobStatus.EXPIRED: RED, JobStatus.FAILED: RED}


def action_text(actor_id: int, what: str, reason: str | None = None) -> str:
    """One moderator action as a mod-log line: who did what, and why."""
    why = f" — reason: {escape_markdown(shorten(reason, 300))}" if reason else ""
    return f"🛠️ <@{actor_id}> {what}{why}"


_FOOTER = {
    False: "Block stops this member from starting videos; Cancel stops this job and refunds it.",
    True: "Approve lets this video be made; Reject (with a reason) refunds it. Block stops this member.",
}


def _entry_actions(job: Job) -> tuple[str, ...]:
    if job.status is JobStatus.AWAITING_APPROVAL:
        return ("approve", "reject", "block")
    return ("block",) if job.terminal else ("block", "cancel")


def job_entry(job: Job) -> Card:
    """The mod-log card of a job: who asked for what, with which images, and (once ended) the outcome."""
    outcome = status_label(job)
    if job.status is JobStatus.FAILED:
        outcome += f" — {failure_reason(job)}"
    images = " · ".join(f"[image {i}]({r.url})" for i, r in enumerate(job.references, start=1))
    where = f"<#{job.thread_id}>" if job.thread_id else f"<#{job.channel_id}>"
    fields = (
        ("Member", f"<@{job.user_id}> (`{job.user_id}`)"),
        ("Options", f"{job.duration} s · {job.aspect_ratio} · in {where}"),
        ("References", images or "none"),
        *look_fields(job),
        ("Outcome", outcome),
    )
    return Card(
        title=f"Job #{job.id}",
        description=f"> {quote_prompt(job.prompt, 1000)}",
        color=_COLOR.get(job.status, AMBER),
        fields=fields,
        footer=_FOOTER[job.status is JobStatus.AWAITING_APPROVAL],
        job_id=job.id,
        actions=_entry_actions(job),
        thumbnail_url=job.references[0].url if job.references else None,
    )

"""The mod-log: what moderators read in their channel — every moderator action and every job.

Pure words plus two tiny store helpers. A job gets one mod-log message when it is accepted (member, prompt,
reference thumbnails, Block and Cancel buttons), edited when it ends (the outcome); the message's place is kept
in the store's `meta` table under `modlog:job:<id>` so the edit still finds it after a restart.
"""

from __future__ import annotations

from bot.domain.jobs import Job, JobStatus
from bot.domain.text import escape_markdown, quote_prompt, shorten
from bot.services.presenter import AMBER, GREEN, GREY, RED, Card, failure_reason
from bot.storage import Store

__all__ = ["action_text", "job_entry", "job_message", "remember_job_message"]

_OUTCOME: dict[JobStatus, tuple[str, int]] = {
    JobStatus.DELIVERED: ("✅ delivered", GREEN),
    JobStatus.CANCELLED: ("🚫 cancelled, refunded", GREY),
    JobStatus.EXPIRED: ("⌛ timed out, refunded", RED),
}


def action_text(actor_id: int, what: str, reason: str | None = None) -> str:
    """One moderator action as a mod-log line: who did what, and why."""
    why = f" — reason: {escape_markdown(shorten(reason, 300))}" if reason else ""
    return f"🛠️ <@{actor_id}> {what}{why}"


def job_entry(job: Job) -> Card:
    """The mod-log card of a job: who asked for what, with which images, and (once ended) the outcome."""
    if job.status is JobStatus.FAILED:
        outcome, color = f"❌ failed, refunded — {failure_reason(job)}", RED
    elif job.status in _OUTCOME:
        outcome, color = _OUTCOME[job.status]
    else:
        outcome, color = f"⏳ {job.status.value}", AMBER
    images = " · ".join(f"[image {i}]({r.url})" for i, r in enumerate(job.references, start=1))
    where = f"<#{job.thread_id}>" if job.thread_id else f"<#{job.channel_id}>"
    fields = (
        ("Member", f"<@{job.user_id}> (`{job.user_id}`)"),
        ("Options", f"{job.duration} s · {job.aspect_ratio} · in {where}"),
        ("References", images or "none"),
        ("Outcome", outcome),
    )
    ended = job.status in (JobStatus.DELIVERED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED)
    return Card(
        title=f"Job #{job.id}",
        description=f"> {quote_prompt(job.prompt, 1000)}",
        color=color,
        fields=fields,
        footer="Block stops this member from starting videos; Cancel stops this job and refunds it.",
        job_id=job.id,
        actions=("block",) if ended else ("block", "cancel"),
        thumbnail_url=job.references[0].url if job.references else None,
    )


def _key(job_id: int) -> str:
    return f"modlog:job:{job_id}"


async def remember_job_message(store: Store, job_id: int, channel_id: int, message_id: int) -> None:
    await store.set_meta(_key(job_id), f"{channel_id}:{message_id}")


async def job_message(store: Store, job_id: int) -> tuple[int, int] | None:
    """Where the job's mod-log message is (channel id, message id), if one was posted."""
    value = await store.get_meta(_key(job_id))
    if not value:
        return None
    channel, _, message = value.partition(":")
    return int(channel), int(message)

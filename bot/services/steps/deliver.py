"""delivering → delivered: post the video in the job's thread, exactly once (see `bot.services.delivery`).

The thread comes first, always: a job whose thread is still being started waits for it here.
"""

from __future__ import annotations

from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.services.delivery import Delivery
from bot.services.ports import ChatError
from bot.services.steps.context import StepContext
from bot.services.steps.thread import Threads

__all__ = ["deliver"]


async def deliver(ctx: StepContext, delivery: Delivery, threads: Threads, job: Job) -> Job | None:
    """Returns None (delivery is the last step; the outcome is announced here)."""
    finished = job.provider_finished_at or job.updated_at
    if ctx.clock() - finished >= ctx.config.job_timeout:
        # Discord has been failing for a whole job timeout; stop and refund instead of trying forever.
        delivery.discard_media(job.id)
        return await ctx.fail(job, FailureKind.DELIVERY_FAILED, "Discord kept failing")
    if job.thread_pending:
        job = await threads.wait(job)
        if job.status is not JobStatus.DELIVERING:
            return None
    check = job.id in ctx.verify_delivery
    try:
        settled = await delivery.deliver(job, check_existing=check)
    except ChatError as exc:
        ctx.verify_delivery.add(job.id)  # the failed call may have posted anyway
        await ctx.retry_later(job, exc, None)
        return None
    ctx.verify_delivery.discard(job.id)
    ctx.streak.pop(job.id, None)
    if settled is not None:
        # A delivery failure was already announced in the parent channel by Delivery.
        await ctx.changed(settled)
    return None

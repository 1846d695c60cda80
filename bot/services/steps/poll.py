"""generating → downloading: ask the provider how the job is doing.

Polls are free and safe to repeat. Their urgency decides who goes first when provider requests are scarce: a job
past the typical duration of recent similar jobs (or with no history to tell) is likely done and goes with the
submits; a younger one cannot be done yet and waits. A 429 slows the pacer down and the poll waits for its next
turn in the same task (no store write); after a few in a row the job is rescheduled like any transient error.
"""

from __future__ import annotations

from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.provider.errors import AuthenticationFailed, GenerationNotFound, OutOfCredits, ProviderError, RateLimited
from bot.provider.models import Generation, ProviderStatus
from bot.services.schedule import next_poll_delay
from bot.services.steps.context import StepContext, detail, log
from bot.traffic.provider import Urgency

__all__ = ["poll"]

_RATE_LIMITED_TURNS = 3


async def poll(ctx: StepContext, job: Job) -> Job | None:
    """Returns the job if it moved to a state with more work ready now, else None."""
    if not job.generation_id:
        return await ctx.fail(job, FailureKind.INTERNAL, "the job has no provider id")
    urgency = await _urgency(ctx, job)
    generation: Generation | None = None
    for turn in range(1, _RATE_LIMITED_TURNS + 1):
        try:
            async with ctx.pacer.turn(urgency):
                generation = await ctx.provider.poll(job.generation_id)
            break
        except RateLimited as exc:
            if turn == _RATE_LIMITED_TURNS or exc.retry_after is not None:
                await ctx.retry_later(job, exc, exc.retry_after)
                return None
        except GenerationNotFound as exc:
            log.warning("job %s: provider no longer knows generation %s", job.id, job.generation_id)
            return await ctx.fail(job, FailureKind.PROVIDER_UNAVAILABLE, detail(exc))
        except ProviderError as exc:
            if isinstance(exc, AuthenticationFailed | OutOfCredits):
                log.error("job %s: polling refused by the AI/ML API (%s)", job.id, exc)
            await ctx.retry_later(job, exc, None)
            return None
    assert generation is not None

    now = ctx.clock()
    ctx.streak.pop(job.id, None)
    if generation.status is ProviderStatus.COMPLETED:
        return await ctx.transition(
            job,
            JobStatus.GENERATING,
            JobStatus.DOWNLOADING,
            video_url=generation.video_url,
            provider_finished_at=now,
            poll_attempts=job.poll_attempts + 1,
            next_poll_at=now,
            credits_used=generation.credits_used,
        )
    if generation.status is ProviderStatus.FAILED:
        return await ctx.fail(
            job,
            FailureKind.REJECTED_CONTENT,
            generation.error_message,
            poll_attempts=job.poll_attempts + 1,
            credits_used=generation.credits_used,
        )
    await ctx.reschedule(
        job.id, now + next_poll_delay(ctx.config.poll_interval, ctx.rand), poll_attempts=job.poll_attempts + 1
    )
    return None


async def _urgency(ctx: StepContext, job: Job) -> Urgency:
    """NOW for a job that is likely done (or may be: no history), LATER for one that cannot be done yet."""
    if job.submitted_at is None:
        return Urgency.NOW
    try:
        typical = await ctx.history.typical(job.model, job.duration)
    except Exception:
        log.exception("job %s: could not read recent durations", job.id)
        return Urgency.NOW
    if typical is None or ctx.clock() - job.submitted_at >= typical:
        return Urgency.NOW
    return Urgency.LATER

"""queued → submitting → generating: send the job to the provider, exactly once.

A submit is never repeated when the provider might already have the job (a second POST is a second paid video):
a submit timeout and an unreadable 2xx answer end the job as SUBMIT_UNCERTAIN with a refund. Only "nothing was
created" answers (429, connection refused, and a few 5xx) put it back in the queue. A 429 is the pacer's signal
to slow down, not the job's fault: the job goes back in line at once, and only repeated 429s for the same job
make it wait longer.
"""

from __future__ import annotations

from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.provider.errors import (
    AuthenticationFailed,
    InputRejected,
    MalformedResponse,
    OutOfCredits,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from bot.provider.models import ProviderStatus
from bot.services.generation import generation_request
from bot.services.schedule import first_poll_delay
from bot.services.steps.context import StepContext, detail, log
from bot.traffic.provider import Urgency

__all__ = ["submit"]


async def submit(ctx: StepContext, job: Job) -> Job | None:
    """Returns the job if it moved to a state with more work ready now, else None."""
    claimed: Job | None = None
    try:
        async with ctx.pacer.turn(Urgency.NOW):
            claimed = await ctx.transition(
                job, JobStatus.QUEUED, JobStatus.SUBMITTING, submit_attempts=job.submit_attempts + 1
            )
            if claimed is None:
                return None  # cancelled meanwhile
            generation = await ctx.provider.submit(generation_request(claimed))
    except RateLimited as exc:
        assert claimed is not None
        # Back in line at once (the pacer has slowed everyone down); a job refused again and again waits longer.
        delay = ctx.backoff(claimed, exc.retry_after, base=0.5)
        if ctx.streak.get(claimed.id, 0) == 1 and exc.retry_after is None:
            delay = 0.0
        log.info("job %s: provider busy on submit (%s); back in line in %.1f s", job.id, exc, delay)
        await ctx.transition(claimed, JobStatus.SUBMITTING, JobStatus.QUEUED, next_poll_at=ctx.clock() + delay)
        return None
    except ProviderUnavailable as exc:
        assert claimed is not None
        if exc.maybe_submitted and exc.status is None:
            # Timeout or a dropped connection after sending: the provider may be making the video.
            log.warning("job %s: submit outcome unknown (%s); not resubmitting", job.id, exc)
            return await ctx.fail(claimed, FailureKind.SUBMIT_UNCERTAIN, None)
        if exc.status is not None and claimed.submit_attempts >= ctx.config.max_submit_attempts:
            return await ctx.fail(claimed, FailureKind.PROVIDER_UNAVAILABLE, "it kept answering with errors")
        delay = ctx.backoff(claimed, None)
        log.info("job %s: provider busy on submit (%s); retrying in %.1f s", job.id, exc, delay)
        await ctx.transition(claimed, JobStatus.SUBMITTING, JobStatus.QUEUED, next_poll_at=ctx.clock() + delay)
        return None
    except InputRejected as exc:
        assert claimed is not None
        return await ctx.fail(claimed, FailureKind.REJECTED_INPUT, detail(exc))
    except OutOfCredits as exc:
        assert claimed is not None
        log.error("job %s: the AI/ML API account is out of credits; top it up (%s)", job.id, exc)
        return await ctx.fail(claimed, FailureKind.OUT_OF_CREDITS, None)
    except AuthenticationFailed as exc:
        assert claimed is not None
        log.error("job %s: the AI/ML API refused the API key; check AIML_API_KEY (%s)", job.id, exc)
        return await ctx.fail(claimed, FailureKind.PROVIDER_UNAVAILABLE, None)
    except MalformedResponse as exc:
        assert claimed is not None
        # A 2xx we cannot read may still have created the job.
        log.error("job %s: unreadable submit answer (%s); not resubmitting", job.id, exc)
        return await ctx.fail(claimed, FailureKind.SUBMIT_UNCERTAIN, None)
    except ProviderError as exc:
        assert claimed is not None
        log.error("job %s: unexpected submit answer (%s); check AIML_API_BASE_URL and VIDEO_MODEL", job.id, exc)
        return await ctx.fail(claimed, FailureKind.PROVIDER_UNAVAILABLE, None)

    submitted_at = ctx.clock()
    # Logged before it is stored so an operator can always match a paid generation to a job.
    log.info("job %s submitted as generation %s", job.id, generation.id)
    ctx.streak.pop(job.id, None)
    if generation.status is ProviderStatus.FAILED:
        return await ctx.fail(
            claimed, FailureKind.REJECTED_CONTENT, generation.error_message, generation_id=generation.id
        )
    return await ctx.transition(
        claimed,
        JobStatus.SUBMITTING,
        JobStatus.GENERATING,
        generation_id=generation.id,
        submitted_at=submitted_at,
        next_poll_at=submitted_at + await _first_poll(ctx, claimed),
    )


async def _first_poll(ctx: StepContext, job: Job) -> float:
    default = ctx.config.first_poll_default or ctx.config.poll_interval
    remaining = max(0.0, job.timeout_start + ctx.config.job_timeout - ctx.clock())
    try:
        recent = await ctx.history.recent(job.model, job.duration)
    except Exception:
        # The submit has happened; failing to read history must not leave the row in `submitting`.
        log.exception("job %s: could not read recent durations; using the default", job.id)
        recent = []
    return first_poll_delay(recent, default, cap=remaining)

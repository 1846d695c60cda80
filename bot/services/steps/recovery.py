"""Start-up: what a stopped or crashed run left behind.

Only a store's sole worker (one process on SQLite) may settle every unfinished job at once: the leases a previous
run left are void, a row in `submitting` may or may not have reached the provider (a second POST could be a
second paid video, so it is failed and refunded), and a row in `delivering` is checked for an earlier post before
posting again. Where several processes share the store, a starting one leaves the others' leases alone: a dead
process's jobs are claimed once their leases run out, and the same rules apply then (the poller's `_step` and
`_handle`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.jobs import FailureKind, JobStatus
from bot.services.steps.context import StepContext, log

__all__ = ["RecoverySummary", "recover"]


@dataclass(frozen=True)
class RecoverySummary:
    resumed: int
    failed_uncertain: int
    errors: int = 0  # jobs that could not be settled (logged; they come back through their leases)


async def recover(ctx: StepContext) -> RecoverySummary:
    """Delete the files of jobs that already ended; as the sole worker, settle every unfinished job now."""
    unfinished = await ctx.store.jobs.unfinished()
    _remove_orphan_media(ctx, {j.id for j in unfinished})
    if not ctx.config.sole_worker:
        return RecoverySummary(resumed=0, failed_uncertain=0)
    now = ctx.clock()
    resumed = failed = errors = 0
    await ctx.store.jobs.release_all_leases()
    for job in unfinished:
        try:
            if job.status is JobStatus.SUBMITTING:
                log.warning("job %s was being submitted when the bot stopped; failing it as uncertain", job.id)
                await ctx.fail(job, FailureKind.SUBMIT_UNCERTAIN, None, leased=False)
                failed += 1
                continue
            if job.status is JobStatus.DELIVERING:
                ctx.verify_delivery.add(job.id)
            await ctx.reschedule(job.id, now, leased=False)
            resumed += 1
        except Exception:
            errors += 1
            log.exception("job %s: could not be recovered at start-up", job.id)
    if unfinished:
        log.info("recovered %d unfinished job(s); %d failed as uncertain submits", resumed, failed)
    return RecoverySummary(resumed=resumed, failed_uncertain=failed, errors=errors)


def _remove_orphan_media(ctx: StepContext, unfinished_ids: set[int]) -> None:
    """Files of jobs that already ended (a crash between recording and deleting) are deleted at start-up."""
    media_dir = ctx.config.media_dir
    if not media_dir.is_dir():
        return
    for path in media_dir.glob("*.mp4*"):
        stem = path.name.split(".", 1)[0]
        if stem.isdigit() and int(stem) not in unfinished_ids:
            path.unlink(missing_ok=True)

"""downloading → delivering: stream the finished video to a temporary file before its URL expires.

The file is capped at the guild's upload limit; over it, the download stops and the thread gets a link instead
(delivery sees there is no file).
"""

from __future__ import annotations

from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.provider.download import DownloadError, MediaRefused, MediaTooLarge
from bot.services.delivery import media_path, partial_path
from bot.services.steps.context import StepContext, detail, log

__all__ = ["download"]


async def download(ctx: StepContext, job: Job) -> Job | None:
    """Returns the job if it moved to a state with more work ready now, else None."""
    media_dir = ctx.config.media_dir
    media_dir.mkdir(parents=True, exist_ok=True)
    dest, part = media_path(media_dir, job.id), partial_path(media_dir, job.id)
    limit = await ctx.chat.upload_limit(job.guild_id)
    if dest.exists():
        size = dest.stat().st_size  # complete from a run that stopped before recording it
    elif not job.video_url:
        return await ctx.fail(job, FailureKind.DOWNLOAD_FAILED, "the video service gave no address")
    else:
        try:
            async with ctx.downloads:
                size = await ctx.downloader.download(job.video_url, part, max_bytes=limit)
        except MediaTooLarge as exc:
            # Not an error: the thread gets a link instead (delivery sees there is no file).
            log.info("job %s: video over the %d-byte upload limit; will post a link", job.id, limit)
            part.unlink(missing_ok=True)
            return await ctx.transition(
                job, JobStatus.DOWNLOADING, JobStatus.DELIVERING, video_size=exc.size, next_poll_at=ctx.clock()
            )
        except MediaRefused as exc:
            log.warning("job %s: refused to download %s", job.id, exc)
            return await ctx.fail(job, FailureKind.DOWNLOAD_FAILED, "its address was not allowed")
        except DownloadError as exc:
            if exc.permanent:
                return await ctx.fail(job, FailureKind.DOWNLOAD_FAILED, detail(exc))
            await ctx.retry_later(job, exc, None)
            return None
        part.replace(dest)  # the final name appears only for a complete file
    ctx.streak.pop(job.id, None)
    return await ctx.transition(
        job, JobStatus.DOWNLOADING, JobStatus.DELIVERING, video_size=size, next_poll_at=ctx.clock()
    )

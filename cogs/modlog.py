"""The mod-log follows every job: an entry when the job is accepted, refreshed when a moderator approves it, its
outcome filled in when it ends.

Listens to the bot's own events (`job_accepted` from `start_thread`, `job_changed` from the poller); the posting
itself is in bot/discord_ui.py, shared with the moderator actions that write single lines there.
"""

from __future__ import annotations

from discord.ext import commands

from bot.app import Reelbot
from bot.discord_ui import post_job_entry, update_job_entry
from bot.domain.jobs import Job, JobStatus

__all__ = ["ModLogCog"]


class ModLogCog(commands.Cog):
    def __init__(self, bot: Reelbot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_job_accepted(self, job: Job) -> None:
        await post_job_entry(self.bot, job)

    @commands.Cog.listener()
    async def on_job_changed(self, job: Job) -> None:
        approved = job.status is JobStatus.QUEUED and job.reviewed_at is not None  # its Approve button goes
        if job.terminal or approved:
            await update_job_entry(self.bot, job)


async def setup(bot: Reelbot) -> None:
    await bot.add_cog(ModLogCog(bot))

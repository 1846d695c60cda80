"""`/jobs`: a member's own recent jobs — status, where to find them, and the quota left — privately."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Reelbot
from bot.discord_ui import member_role_ids, reply_ephemeral
from bot.domain.jobs import Job
from bot.domain.text import shorten
from bot.services.presenter import status_label
from bot.services.quota_words import quota_lines

__all__ = ["JobsCog", "job_line"]


def job_line(job: Job) -> str:
    """One job: number, status, when, where (the thread, else the channel), and the start of the prompt."""
    where = f"<#{job.thread_id}>" if job.thread_id else f"<#{job.channel_id}>"
    prompt = shorten(" ".join(job.prompt.split()), 60).replace("`", "'")
    return f"**#{job.id}** {status_label(job)} <t:{int(job.created_at)}:R> in {where} — `{prompt}`"


class JobsCog(commands.Cog):
    def __init__(self, bot: Reelbot) -> None:
        self.bot = bot

    @app_commands.command(name="jobs")
    @app_commands.guild_only()
    async def jobs(self, interaction: discord.Interaction[Reelbot]) -> None:
        """Your latest videos on this server, their status and where they are."""
        assert interaction.guild_id is not None
        jobs = await self.bot.intake.recent_jobs(interaction.guild_id, interaction.user.id)
        status = await self.bot.intake.quota(
            interaction.guild_id,
            interaction.user.id,
            member_role_ids(interaction.user),
            channel_id=interaction.channel_id,
        )
        lines = ["Your latest videos:" if jobs else "You have not started any videos on this server yet."]
        lines += [job_line(job) for job in jobs]
        lines += ["", *quota_lines(status)]
        await reply_ephemeral(interaction, "\n".join(lines)[:2000])


async def setup(bot: Reelbot) -> None:
    await bot.add_cog(JobsCog(bot))

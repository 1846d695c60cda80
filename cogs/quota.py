"""`/quota`: a member's own allowance, privately."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Reelbot
from bot.discord_ui import member_role_ids, reply_ephemeral
from bot.services.quota_words import quota_lines

__all__ = ["QuotaCog"]


class QuotaCog(commands.Cog):
    def __init__(self, bot: Reelbot) -> None:
        self.bot = bot

    @app_commands.command(name="quota")
    async def quota(self, interaction: discord.Interaction[Reelbot]) -> None:
        """See how many videos you have left (here: a channel may have a team budget) and when more free up."""
        if interaction.guild_id is None:
            await reply_ephemeral(interaction, "Quotas belong to a server: run `/quota` in one.")
            return
        status = await self.bot.intake.quota(
            interaction.guild_id,
            interaction.user.id,
            member_role_ids(interaction.user),
            channel_id=interaction.channel_id,  # a channel with a team budget shows the budget
        )
        await reply_ephemeral(interaction, "\n".join(quota_lines(status)))


async def setup(bot: Reelbot) -> None:
    await bot.add_cog(QuotaCog(bot))

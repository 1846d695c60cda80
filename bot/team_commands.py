"""`/videomod budget`, `/videomod approvals` and `/videomod words add | remove | list`: the moderators' switches
for team channels, mixed into the `/videomod` group of cogs/moderation.py (which stays one command group, with
its run-time moderator check on every subcommand here too).

Like every moderator command: the reply is private and says what changed, the change is a ledger row with the
moderator (`ModeratorActions` over the store) and a line in the mod-log channel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_ui import reply_ephemeral, report_moderator_action
from bot.domain.pools import Period
from bot.domain.text import escape_markdown
from bot.domain.words import MAX_PHRASE_CHARS
from bot.services.quota_words import budget_summary

if TYPE_CHECKING:
    from bot.app import Reelbot
    from bot.services.moderator_actions import ModeratorActions

__all__ = ["TeamChannelCommands"]

PERIOD_CHOICES = [
    app_commands.Choice(name="per day (resets at 00:00 UTC)", value=Period.DAY.value),
    app_commands.Choice(name="per week (resets on Monday, 00:00 UTC)", value=Period.WEEK.value),
    app_commands.Choice(name="per month (resets on the 1st, 00:00 UTC)", value=Period.MONTH.value),
]
Phrase = app_commands.Range[str, 1, MAX_PHRASE_CHARS]


def _hidden(text: str) -> str:
    """A blocked word as moderators see it: escaped, and behind a spoiler so nobody reads it over a shoulder."""
    return f"||{escape_markdown(text)}||"


class TeamChannelCommands(commands.Cog):
    """The team-channel subcommands of `/videomod`. Not loaded on its own: ModerationCog inherits them (and
    provides `actions`), so they are subcommands of its group and pass its moderator check."""

    actions: ModeratorActions
    words = app_commands.Group(name="words", description="Words and phrases prompts may not contain")

    @app_commands.command(name="budget", description="A shared pool of videos for a channel (no videos: remove it)")
    @app_commands.describe(
        channel="The channel whose videos draw from the pool instead of each member's own quota",
        videos="Videos per period; leave empty to remove the pool",
        period="How often the pool starts again (default: per month)",
    )
    @app_commands.choices(period=PERIOD_CHOICES)
    async def budget(
        self,
        interaction: discord.Interaction[Reelbot],
        channel: discord.TextChannel,
        videos: app_commands.Range[int, 0, 100_000] | None = None,
        period: app_commands.Choice[str] | None = None,
    ) -> None:
        assert interaction.guild_id is not None  # guild_only
        chosen = Period(period.value) if period else Period.MONTH
        pool = await self.actions.set_budget(
            interaction.guild_id, channel.id, videos, chosen, actor_id=interaction.user.id
        )
        if pool is None:
            what = f"removed the team budget of {channel.mention} (videos there use each member's own quota again)"
        else:
            what = (
                f"set the team budget of {channel.mention} to {pool.videos} videos per {chosen.value}: "
                f"{budget_summary(pool)} (what this period already used still counts)"
            )
        await report_moderator_action(interaction, what, None)

    @app_commands.command(name="approvals", description="Make new videos in a channel wait for a moderator's approval")
    @app_commands.describe(
        channel="The channel",
        enabled="True: every new video waits for Approve or Reject before anything is made; False: no waiting",
    )
    async def approvals(
        self, interaction: discord.Interaction[Reelbot], channel: discord.TextChannel, enabled: bool
    ) -> None:
        assert interaction.guild_id is not None
        await self.actions.set_approvals(interaction.guild_id, channel.id, enabled, actor_id=interaction.user.id)
        what = (
            f"new videos in {channel.mention} now wait for a moderator's Approve (charged when asked, refunded if "
            "rejected or not approved in time)"
            if enabled
            else f"new videos in {channel.mention} no longer wait for approval"
        )
        await report_moderator_action(interaction, what, None)

    @words.command(name="add", description="Refuse prompts containing a word or phrase (whole words, any spelling)")
    @app_commands.describe(text="The word or phrase")
    async def words_add(self, interaction: discord.Interaction[Reelbot], text: Phrase) -> None:
        assert interaction.guild_id is not None
        try:
            added = await self.actions.block_word(interaction.guild_id, text, actor_id=interaction.user.id)
        except ValueError as exc:
            await reply_ephemeral(interaction, f"{str(exc).capitalize()}. Nothing was changed.")
            return
        if added is None:
            await reply_ephemeral(interaction, f"{_hidden(text)} is blocked already (perhaps spelled another way).")
            return
        await report_moderator_action(interaction, f"blocked the word or phrase {_hidden(added.text)}", None)

    @words.command(name="remove", description="Allow a blocked word or phrase again")
    @app_commands.describe(text="The word or phrase, in any spelling")
    async def words_remove(self, interaction: discord.Interaction[Reelbot], text: Phrase) -> None:
        assert interaction.guild_id is not None
        try:
            removed = await self.actions.unblock_word(interaction.guild_id, text, actor_id=interaction.user.id)
        except ValueError as exc:
            await reply_ephemeral(interaction, f"{str(exc).capitalize()}. Nothing was changed.")
            return
        if removed is None:
            await reply_ephemeral(interaction, f"{_hidden(text)} was not blocked. See `/videomod words list`.")
            return
        await report_moderator_action(interaction, f"allowed the word or phrase {_hidden(removed.text)} again", None)

    @words.command(name="list", description="The words and phrases this server blocks in prompts")
    async def words_list(self, interaction: discord.Interaction[Reelbot]) -> None:
        assert interaction.guild_id is not None
        blocked = await self.actions.blocked_words(interaction.guild_id)
        if not blocked:
            await reply_ephemeral(
                interaction, "No words are blocked on this server. Add some with `/videomod words add`."
            )
            return
        head = f"{len(blocked)} blocked word(s) or phrase(s) (hidden; click to read):"
        lines, used = [head], len(head)
        for index, word in enumerate(blocked):
            line = f"• {_hidden(word.text)}"
            if used + len(line) + 1 > 1900:
                lines.append(f"…and {len(blocked) - index} more.")
                break
            lines.append(line)
            used += len(line) + 1
        await reply_ephemeral(interaction, "\n".join(lines))

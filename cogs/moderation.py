"""`/videomod`: the moderators' console — allowances, blocks, channels, pause, styles and channel defaults,
usage report, mod-log; and the team channels' budgets, approvals and blocked words (bot/team_commands.py).

Visible by default only to members with Manage Server (`default_member_permissions`), and checked again at run
time (server admins can open commands to others in Integrations; a configured moderator role also passes).
Every reply is private and says what changed; every change is a ledger row with the moderator and the reason
(the store writes both in one transaction) and a line in the mod-log channel. All reads and writes are keyed by
the interaction's guild, so one guild's moderators never reach another's data.
"""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Reelbot
from bot.discord_ui import (
    ASPECT_CHOICES,
    DURATION_CHOICES,
    is_moderator,
    member_role_ids,
    reply_ephemeral,
    report_moderator_action,
)
from bot.domain.cast import MAX_NAME_CHARS
from bot.domain.quotas import QuotaStatus
from bot.domain.styles import MAX_STYLE_TEXT
from bot.domain.text import escape_markdown, quote_prompt
from bot.services.usage import budgets_csv, report_csv, summary_lines
from bot.team_commands import TeamChannelCommands

__all__ = ["ModerationCog"]

log = logging.getLogger(__name__)

Videos = app_commands.Range[int, 0, 100_000]
Reason = app_commands.Range[str, 1, 300]
REASON_HELP = "Why (kept in the audit ledger and shown in the mod-log)"


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class ModerationCog(
    commands.GroupCog, TeamChannelCommands, group_name="videomod", group_description="Moderate video generation"
):
    channels = app_commands.Group(name="channels", description="Where /video may be used (none set = everywhere)")
    style = app_commands.Group(name="style", description="Named looks members can add to /video")

    def __init__(self, bot: Reelbot) -> None:
        self.bot = bot
        self.actions = bot.moderators
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction[Reelbot]) -> bool:  # type: ignore[override]
        """The run-time check behind `default_member_permissions`, for every subcommand."""
        if await is_moderator(interaction):
            return True
        raise app_commands.CheckFailure(
            "Only moderators can use `/videomod` (Manage Server, or the moderator role set with `/videomod modrole`)."
        )

    # ------------------------------------------------------------------ helpers

    def _gid(self, interaction: discord.Interaction[Reelbot]) -> int:
        assert interaction.guild_id is not None  # guild_only
        return interaction.guild_id

    async def _done(self, interaction: discord.Interaction[Reelbot], what: str, reason: str | None) -> None:
        """Tell the moderator what changed (privately) and log it in the mod-log channel."""
        await report_moderator_action(interaction, what, reason)

    @staticmethod
    def _quota_line(member: discord.abc.User, status: QuotaStatus) -> str:
        blocked = ", blocked" if status.blocked else ""
        own = status.own  # the same numbers the member's /quota shows
        return f"{member.mention} now has **{own.remaining}** of **{own.total}** videos left{blocked}"

    # ------------------------------------------------------------------ members

    @app_commands.command(name="limit", description="Set a member's videos per window, overriding roles and defaults")
    @app_commands.describe(member="The member", videos="Videos per window (0 stops them)", reason=REASON_HELP)
    async def limit(
        self,
        interaction: discord.Interaction[Reelbot],
        member: discord.Member,
        videos: Videos,
        reason: Reason | None = None,
    ) -> None:
        status = await self.actions.set_member_limit(
            self._gid(interaction),
            member.id,
            videos,
            member_role_ids(member),
            actor_id=interaction.user.id,
            reason=reason,
        )
        await self._done(
            interaction,
            f"set {member.mention}'s limit to {videos} per window; " + self._quota_line(member, status),
            reason,
        )

    @app_commands.command(name="clear", description="Remove a member's own limit: roles and the server default apply")
    @app_commands.describe(member="The member", reason=REASON_HELP)
    async def clear(
        self, interaction: discord.Interaction[Reelbot], member: discord.Member, reason: Reason | None = None
    ) -> None:
        status = await self.actions.set_member_limit(
            self._gid(interaction),
            member.id,
            None,
            member_role_ids(member),
            actor_id=interaction.user.id,
            reason=reason,
        )
        await self._done(
            interaction, f"cleared {member.mention}'s own limit; " + self._quota_line(member, status), reason
        )

    @app_commands.command(name="reset", description="Start a member's window afresh (past videos stop counting)")
    @app_commands.describe(member="The member", reason=REASON_HELP)
    async def reset(
        self, interaction: discord.Interaction[Reelbot], member: discord.Member, reason: Reason | None = None
    ) -> None:
        status = await self.actions.reset(
            self._gid(interaction), member.id, member_role_ids(member), actor_id=interaction.user.id, reason=reason
        )
        await self._done(interaction, f"reset {member.mention}'s window; " + self._quota_line(member, status), reason)

    @app_commands.command(name="grant", description="Give a member extra videos for the current window")
    @app_commands.describe(member="The member", videos="Extra videos", reason=REASON_HELP)
    async def grant(
        self,
        interaction: discord.Interaction[Reelbot],
        member: discord.Member,
        videos: app_commands.Range[int, 1, 1000],
        reason: Reason | None = None,
    ) -> None:
        status = await self.actions.grant(
            self._gid(interaction),
            member.id,
            videos,
            member_role_ids(member),
            actor_id=interaction.user.id,
            reason=reason,
        )
        await self._done(
            interaction,
            f"granted {member.mention} {videos} extra video(s); " + self._quota_line(member, status),
            reason,
        )

    @app_commands.command(name="block", description="Stop a member from starting videos (they are told why)")
    @app_commands.describe(member="The member", reason="Why; the member sees this")
    async def block(
        self, interaction: discord.Interaction[Reelbot], member: discord.Member, reason: Reason | None = None
    ) -> None:
        await self.actions.block(self._gid(interaction), member.id, actor_id=interaction.user.id, reason=reason)
        await self._done(interaction, f"blocked {member.mention} from starting videos", reason)

    @app_commands.command(name="unblock", description="Let a blocked member start videos again")
    @app_commands.describe(member="The member", reason=REASON_HELP)
    async def unblock(
        self, interaction: discord.Interaction[Reelbot], member: discord.Member, reason: Reason | None = None
    ) -> None:
        status = await self.actions.unblock(
            self._gid(interaction), member.id, member_role_ids(member), actor_id=interaction.user.id, reason=reason
        )
        await self._done(interaction, f"unblocked {member.mention}; " + self._quota_line(member, status), reason)

    @app_commands.command(name="check", description="A member's allowance and their latest ledger rows")
    @app_commands.describe(member="The member")
    async def check(self, interaction: discord.Interaction[Reelbot], member: discord.Member) -> None:
        status, rows = await self.actions.member_record(self._gid(interaction), member.id, member_role_ids(member))
        own = status.own  # the same numbers the member's /quota shows
        lines = [
            f"{member.mention}: **{own.remaining}** of **{own.total}** videos left (used **{own.used}**"
            + (f", limit {status.limit} + {own.granted} granted)" if own.granted else ")")
            + f", {status.active} active"
            + (f", **blocked**: {escape_markdown(status.block_reason or '')}" if status.blocked else ""),
            "Latest ledger rows:" if rows else "No ledger rows yet.",
        ]
        for row in reversed(rows):
            by = f" by <@{row.actor_id}>" if row.actor_id else ""
            job = f" job #{row.job_id}" if row.job_id else ""
            amount = f" {row.amount}" if row.amount is not None else ""
            why = f" — {escape_markdown(row.reason)}" if row.reason else ""
            lines.append(f"`#{row.id}` <t:{int(row.at)}:f> **{row.kind.value}**{amount}{job}{by}{why}")
        await reply_ephemeral(interaction, "\n".join(lines)[:2000])

    # ------------------------------------------------------------------ roles and defaults

    @app_commands.command(name="role-limit", description="Give a role its own videos per window (empty removes it)")
    @app_commands.describe(role="The role", videos="Videos per window; leave empty to remove", reason=REASON_HELP)
    async def role_limit(
        self,
        interaction: discord.Interaction[Reelbot],
        role: discord.Role,
        videos: Videos | None = None,
        reason: Reason | None = None,
    ) -> None:
        await self.actions.set_role_limit(
            self._gid(interaction), role.id, videos, actor_id=interaction.user.id, reason=reason
        )
        what = (
            f"removed the limit of {role.mention}"
            if videos is None
            else f"set {role.mention}'s limit to {videos} per window"
        )
        await self._done(interaction, what + " (a member with several such roles gets the highest)", reason)

    @app_commands.command(name="default", description="The server's default videos per window (empty = bot default)")
    @app_commands.describe(videos="Videos per window; leave empty for the bot's default", reason=REASON_HELP)
    async def default(
        self, interaction: discord.Interaction[Reelbot], videos: Videos | None = None, reason: Reason | None = None
    ) -> None:
        now = await self.actions.set_guild_default(
            self._gid(interaction), videos, actor_id=interaction.user.id, reason=reason
        )
        what = (
            f"set the server default to {now} per window"
            if videos is not None
            else f"reset the server default to the bot's {now} per window"
        )
        await self._done(interaction, what, reason)

    # ------------------------------------------------------------------ server switches

    @app_commands.command(name="pause", description="Stop all new videos on this server (running ones finish)")
    @app_commands.describe(reason=REASON_HELP)
    async def pause(self, interaction: discord.Interaction[Reelbot], reason: Reason | None = None) -> None:
        await self.actions.set_paused(self._gid(interaction), True, actor_id=interaction.user.id, reason=reason)
        await self._done(interaction, "paused video generation on this server (running jobs still finish)", reason)

    @app_commands.command(name="resume", description="Allow new videos again")
    @app_commands.describe(reason=REASON_HELP)
    async def resume(self, interaction: discord.Interaction[Reelbot], reason: Reason | None = None) -> None:
        await self.actions.set_paused(self._gid(interaction), False, actor_id=interaction.user.id, reason=reason)
        await self._done(interaction, "resumed video generation on this server", reason)

    @app_commands.command(name="price", description="Price per second of video, for cost estimates (empty clears)")
    @app_commands.describe(usd_per_second="US dollars per second of generated video, e.g. 0.112")
    async def price(
        self, interaction: discord.Interaction[Reelbot], usd_per_second: app_commands.Range[float, 0, 100] | None = None
    ) -> None:
        await self.actions.set_price(self._gid(interaction), usd_per_second, actor_id=interaction.user.id)
        what = (
            "cleared the price (reports show no cost)"
            if usd_per_second is None
            else f"set the price to ${usd_per_second:g} per second of video"
        )
        await self._done(interaction, what, None)

    @app_commands.command(name="modlog", description="The channel that receives every moderator action and every job")
    @app_commands.describe(channel="The mod-log channel; leave empty to turn the mod-log off")
    async def modlog(
        self, interaction: discord.Interaction[Reelbot], channel: discord.TextChannel | None = None
    ) -> None:
        await self.actions.set_mod_log(
            self._gid(interaction), channel.id if channel else None, actor_id=interaction.user.id
        )
        what = f"set the mod-log channel to {channel.mention}" if channel else "turned the mod-log off"
        await self._done(interaction, what, None)

    @app_commands.command(name="modrole", description="A role whose members may also use /videomod and moderate jobs")
    @app_commands.describe(role="The moderator role; leave empty to rely on Manage Server only")
    async def modrole(self, interaction: discord.Interaction[Reelbot], role: discord.Role | None = None) -> None:
        await self.actions.set_moderator_role(
            self._gid(interaction), role.id if role else None, actor_id=interaction.user.id
        )
        what = (
            f"made {role.mention} a moderator role "
            "(also allow it in Server Settings → Integrations to show the command)"
            if role
            else "removed the moderator role (Manage Server only)"
        )
        await self._done(interaction, what, None)

    # ------------------------------------------------------------------ channels

    @channels.command(name="allow", description="Allow /video in a channel (once any is set, only those)")
    @app_commands.describe(channel="The channel", reason=REASON_HELP)
    async def channels_allow(
        self, interaction: discord.Interaction[Reelbot], channel: discord.TextChannel, reason: Reason | None = None
    ) -> None:
        config = await self.actions.allow_channel(
            self._gid(interaction), channel.id, actor_id=interaction.user.id, reason=reason
        )
        await self._done(
            interaction,
            f"allowed /video in {channel.mention}; allowed now: {_places(config.allowed_channel_ids)}",
            reason,
        )

    @channels.command(name="disallow", description="Remove a channel from the allowed list")
    @app_commands.describe(channel="The channel", reason=REASON_HELP)
    async def channels_disallow(
        self, interaction: discord.Interaction[Reelbot], channel: discord.TextChannel, reason: Reason | None = None
    ) -> None:
        config = await self.actions.disallow_channel(
            self._gid(interaction), channel.id, actor_id=interaction.user.id, reason=reason
        )
        await self._done(
            interaction, f"removed {channel.mention}; allowed now: {_places(config.allowed_channel_ids)}", reason
        )

    @channels.command(name="list", description="Where /video may be used")
    async def channels_list(self, interaction: discord.Interaction[Reelbot]) -> None:
        config = await self.actions.settings(self._gid(interaction))
        state = " Video generation is **paused**." if config.paused else ""
        await reply_ephemeral(interaction, f"/video is allowed in: {_places(config.allowed_channel_ids)}.{state}")

    # ------------------------------------------------------------------ styles and channel defaults

    @style.command(name="set", description="Add a style, or change its text")
    @app_commands.describe(
        name="The style's name; members pick it in /video", text="Added to the prompt of every video that uses it"
    )
    async def style_set(
        self,
        interaction: discord.Interaction[Reelbot],
        name: app_commands.Range[str, 1, MAX_NAME_CHARS],
        text: app_commands.Range[str, 1, MAX_STYLE_TEXT],
    ) -> None:
        outcome = await self.bot.styles.set(self._gid(interaction), name, text, actor_id=interaction.user.id)
        if isinstance(outcome, str):
            await reply_ephemeral(interaction, f"{outcome} Nothing changed.")
            return
        style, created = outcome
        verb = "added the style" if created else "changed the style"
        await self._done(interaction, f"{verb} **{style.name}**: “{quote_prompt(style.text, 200)}”", None)

    @style.command(name="remove", description="Remove a style (channels that had it as default lose it)")
    @app_commands.describe(name="The style")
    async def style_remove(
        self, interaction: discord.Interaction[Reelbot], name: app_commands.Range[str, 1, 100]
    ) -> None:
        outcome = await self.bot.styles.remove(self._gid(interaction), name, actor_id=interaction.user.id)
        if isinstance(outcome, str):
            await reply_ephemeral(interaction, outcome)
            return
        style, channels = outcome
        also = f"; it is no longer the default in {_places(frozenset(channels))}" if channels else ""
        await self._done(interaction, f"removed the style **{style.name}**{also}", None)

    @app_commands.command(
        name="channel-defaults", description="What /video uses in a channel when members do not choose (empty clears)"
    )
    @app_commands.describe(
        channel="The channel",
        style="The style its videos get unless the member picks another (or none)",
        duration="The length its videos get unless the member picks one",
        aspect_ratio="The shape its videos get unless the member picks one",
    )
    @app_commands.choices(duration=DURATION_CHOICES, aspect_ratio=ASPECT_CHOICES)
    async def channel_defaults(
        self,
        interaction: discord.Interaction[Reelbot],
        channel: discord.TextChannel,
        style: app_commands.Range[str, 1, 100] | None = None,
        duration: app_commands.Choice[int] | None = None,
        aspect_ratio: app_commands.Choice[str] | None = None,
    ) -> None:
        outcome = await self.bot.styles.set_channel_defaults(
            self._gid(interaction),
            channel.id,
            style=style,
            duration=duration.value if duration else None,
            aspect_ratio=aspect_ratio.value if aspect_ratio else None,
            actor_id=interaction.user.id,
        )
        if isinstance(outcome, str):
            await reply_ephemeral(interaction, f"{outcome} Nothing changed.")
            return
        if outcome.empty:
            await self._done(interaction, f"cleared the /video defaults of {channel.mention}", None)
            return
        parts = [
            f"style **{outcome.style}**" if outcome.style else "no style",
            f"{outcome.duration} s" if outcome.duration else "5 s (the bot's default)",
            outcome.aspect_ratio or "16:9 (the bot's default)",
        ]
        await self._done(interaction, f"set the /video defaults of {channel.mention}: {', '.join(parts)}", None)

    @style_remove.autocomplete("name")
    @channel_defaults.autocomplete("style")
    async def _style_names(
        self, interaction: discord.Interaction[Reelbot], current: str
    ) -> list[app_commands.Choice[str]]:
        found = await self.bot.styles.suggest(self._gid(interaction), None, current)
        return [app_commands.Choice(name=s.label, value=s.value) for s in found]

    # ------------------------------------------------------------------ report

    @app_commands.command(
        name="report", description="Who made how many videos, and the estimated cost, as an embed and CSV"
    )
    @app_commands.describe(days="How many days back, ending now (default 7)")
    async def report(
        self, interaction: discord.Interaction[Reelbot], days: app_commands.Range[int, 1, 366] = 7
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        report = await self.actions.report(self._gid(interaction), days)
        embed = discord.Embed(
            title=f"Video usage, last {days} day(s)",
            description="\n".join(summary_lines(report, lambda uid: f"<@{uid}>"))[:4000],
            colour=0x5865F2,
        )
        embed.set_footer(text="From the audit ledger: started and refunded by ledger date, outcomes by finish date.")
        guild = interaction.guild

        def name(uid: int) -> str:
            member = guild.get_member(uid) if guild else None
            return member.display_name if member else ""

        def channel_name(channel_id: int) -> str:
            channel = guild.get_channel(channel_id) if guild else None
            return channel.name if channel else ""

        stamp = datetime.fromtimestamp(report.until, UTC).strftime("%Y%m%d")
        files = [discord.File(io.BytesIO(report_csv(report, name)), filename=f"video-usage-{days}d-{stamp}.csv")]
        if report.pools:
            data = budgets_csv(report, channel_name)
            files.append(discord.File(io.BytesIO(data), filename=f"video-budgets-{days}d-{stamp}.csv"))
        await interaction.followup.send(embed=embed, files=files, ephemeral=True)


def _places(channel_ids: frozenset[int]) -> str:
    return ", ".join(f"<#{c}>" for c in sorted(channel_ids)) if channel_ids else "every channel"


async def setup(bot: Reelbot) -> None:
    await bot.add_cog(ModerationCog(bot))

"""The Discord pieces every command and button shares: private replies, a member's roles, the moderator check,
the shapes a member can pick, recording a new job's card, and the mod-log channel's posts.

Everything here is a thin adapter between discord.py objects and the services the bot holds
(`interaction.client.intake`, `.moderators`, ...); decisions and data stay in the services.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.chat import card_embed
from bot.domain.jobs import Job
from bot.domain.text import escape_markdown
from bot.logs import job_extra
from bot.services.modlog import action_text, job_entry

if TYPE_CHECKING:
    from bot.app import Reelbot

__all__ = [
    "ASPECTS",
    "ASPECT_CHOICES",
    "DURATION_CHOICES",
    "character_choices",
    "is_moderator",
    "member_role_ids",
    "post_job_entry",
    "post_modlog_line",
    "record_card",
    "reply_ephemeral",
    "report_moderator_action",
    "style_choices",
    "update_job_entry",
    "withdraw",
]

log = logging.getLogger(__name__)

ASPECTS = (("16:9", "16:9 landscape"), ("9:16", "9:16 portrait"), ("1:1", "1:1 square"))
"""Each shape a member can pick (`/video` and the card's aspect switch): its value and its label."""
ASPECT_CHOICES: list[app_commands.Choice[int | float | str]] = [
    app_commands.Choice(name=label, value=value) for value, label in ASPECTS
]
DURATION_CHOICES: list[app_commands.Choice[int | float | str]] = [
    app_commands.Choice(name="5 seconds", value=5),
    app_commands.Choice(name="10 seconds", value=10),
]

_NO_MENTIONS = discord.AllowedMentions.none()


async def reply_ephemeral(interaction: discord.Interaction[Any], content: str) -> None:
    """Answer privately, whether or not the interaction was already acknowledged."""
    if interaction.response.is_done():
        await interaction.followup.send(content, ephemeral=True, allowed_mentions=_NO_MENTIONS)
    else:
        await interaction.response.send_message(content, ephemeral=True, allowed_mentions=_NO_MENTIONS)


async def withdraw(interaction: discord.Interaction[Any], content: str) -> None:
    """Answer privately, also after a public deferral: the public "thinking…" message is deleted first (a
    followup would otherwise replace it, in public), then the answer goes out as a private followup."""
    if interaction.response.is_done():
        try:
            await interaction.delete_original_response()
        except discord.HTTPException as exc:
            log.warning("could not withdraw the deferred answer: %s", exc)
    await reply_ephemeral(interaction, content)


def member_role_ids(user: discord.abc.User) -> tuple[int, ...]:
    """The member's role ids (their limit may come from a role); none outside a server."""
    return tuple(role.id for role in user.roles) if isinstance(user, discord.Member) else ()


async def is_moderator(interaction: discord.Interaction[Reelbot]) -> bool:
    """Manage Server in this channel, or the moderator role the guild configured (`/videomod modrole`)."""
    if interaction.guild_id is None or not isinstance(interaction.user, discord.Member):
        return False
    return await interaction.client.moderators.is_moderator(
        interaction.guild_id, member_role_ids(interaction.user), manage_guild=interaction.permissions.manage_guild
    )


async def record_card(bot: Reelbot, job: Job, message_id: int) -> Job:
    """Record the new job's status card and hand the job to the poller (which starts the job's thread on the card,
    paced with everything else the bot sends) and to the mod-log.

    Shared by `/video` and the card buttons that start a new job (Retry, Remix, aspect switch)."""
    job = await bot.intake.card_posted(job.id, message_id)
    bot.poller.wake()
    bot.dispatch("job_accepted", job)  # the mod-log entry (cogs/modlog.py)
    return job


# ---------------------------------------------------------------------- the mod-log channel
# Best-effort everywhere: the action already happened, and a missing mod-log line must never undo or block it.


async def report_moderator_action(interaction: discord.Interaction[Reelbot], what: str, reason: str | None) -> None:
    """Tell the moderator what changed (privately) and log it in the mod-log channel: every `/videomod` change."""
    assert interaction.guild_id is not None  # /videomod is guild-only
    await reply_ephemeral(interaction, f"Done: {what}." + (f" Reason: {escape_markdown(reason)}" if reason else ""))
    await post_modlog_line(interaction.client, interaction.guild_id, action_text(interaction.user.id, what, reason))
    log.info("moderator %s in guild %s: %s", interaction.user.id, interaction.guild_id, what)


async def post_modlog_line(bot: Reelbot, guild_id: int, text: str) -> None:
    """One line in the guild's mod-log channel, if it has one."""
    channel_id = await bot.moderators.mod_log_channel(guild_id)
    if channel_id is None:
        return
    try:
        await bot.get_partial_messageable(channel_id).send(text, allowed_mentions=_NO_MENTIONS)
    except discord.HTTPException as exc:
        log.warning("could not post to the mod-log channel of guild %s: %s", guild_id, exc)


async def post_job_entry(bot: Reelbot, job: Job) -> None:
    """A new job's entry in the mod-log channel (with Block and Cancel), remembered for its outcome later."""
    channel_id = await bot.moderators.mod_log_channel(job.guild_id)
    if channel_id is None:
        return
    entry = job_entry(job)
    try:
        message = await bot.get_partial_messageable(channel_id).send(
            embed=card_embed(entry), view=bot.chat.view(entry), allowed_mentions=_NO_MENTIONS
        )
    except discord.HTTPException as exc:
        log.warning("could not post the job to the mod-log: %s", exc, extra=job_extra(job.id))
        return
    await bot.moderators.remember_log_entry(job.id, channel_id, message.id)


async def update_job_entry(bot: Reelbot, job: Job) -> None:
    """Fill in the outcome of an ended job's mod-log entry (and drop its Cancel button)."""
    where = await bot.moderators.log_entry_of(job.id)
    if where is None:
        return
    entry = job_entry(job)
    try:
        message = bot.get_partial_messageable(where[0]).get_partial_message(where[1])
        await message.edit(embed=card_embed(entry), view=bot.chat.view(entry))
    except discord.HTTPException as exc:
        log.warning("could not update the job's mod-log entry: %s", exc, extra=job_extra(job.id))


# ---------------------------------------------------------------------- autocomplete
# Discord gives an autocomplete answer 3 seconds and no deferral: these read only the store.

_CHARACTER_OPTIONS = ("character1", "character2", "character3", "character4")


async def character_choices(interaction: discord.Interaction[Reelbot], current: str) -> list[app_commands.Choice[str]]:
    """The member's own and the server's shared characters matching what they typed, without those already
    picked in the other character options."""
    if interaction.guild_id is None:
        return []
    focused = next((o.get("name") for o in _options(interaction) if o.get("focused")), None)
    picked = [str(getattr(interaction.namespace, name, "") or "") for name in _CHARACTER_OPTIONS if name != focused]
    found = await interaction.client.characters.suggest(
        interaction.guild_id, interaction.user.id, current, exclude=picked
    )
    return [app_commands.Choice(name=s.label, value=s.value) for s in found]


async def style_choices(interaction: discord.Interaction[Reelbot], current: str) -> list[app_commands.Choice[str]]:
    """The server's styles matching what the member typed (and "no style" where the channel has a default)."""
    if interaction.guild_id is None:
        return []
    found = await interaction.client.styles.suggest(interaction.guild_id, interaction.channel_id, current)
    return [app_commands.Choice(name=s.label, value=s.value) for s in found]


def _options(interaction: discord.Interaction[Any]) -> list[dict[str, Any]]:
    """The leaf options of a command interaction (inside its subcommand, if any)."""
    data: Any = interaction.data or {}
    options: list[dict[str, Any]] = list(data.get("options") or [])
    while options and options[0].get("type") in (1, 2):
        options = list(options[0].get("options") or [])
    return options

"""`/character create | list | delete`: saved characters (a front view and other angles) for `/video`.

Discord is the only public host the bot has, and the provider needs public URLs, so `create` posts the images in a
character sheet: a message the bot owns, in the channel where the command ran. The sheet is public on purpose:
only a message in a channel outlives the interaction (a private reply cannot be read back with the bot's token and
disappears), it shows everyone who can use `/video` there what the character looks like, and it gives moderators
the plain Discord way to take the images down (deleting the sheet deletes the character). The store keeps only the
sheet's ids. Every reply to the member is private.
"""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import PurePosixPath

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Reelbot
from bot.discord_ui import is_moderator, post_modlog_line, reply_ephemeral
from bot.domain.cast import ANGLES_SENT, MAX_NAME_CHARS, Character
from bot.domain.text import escape_markdown
from bot.domain.validation import ImageMeta, problems_message
from bot.services.characters import NewCharacter
from bot.services.modlog import action_text

__all__ = ["CharacterCog"]

log = logging.getLogger(__name__)

SHEET_COLOUR = 0xEB459E
READ_TIMEOUT = 30.0
"""Seconds to read the member's images back from Discord before saying "try again"."""

# What the bot needs where the sheet goes: post it with its images, and read it back before each use.
_SHEET_PERMISSIONS = {
    "view_channel": "View Channel",
    "embed_links": "Embed Links",
    "attach_files": "Attach Files",
    "read_message_history": "Read Message History",
}
_THREADS = (discord.ChannelType.public_thread, discord.ChannelType.private_thread, discord.ChannelType.news_thread)
_SHEET_CHANNELS = (discord.ChannelType.text, discord.ChannelType.news, *_THREADS)
_NO_MENTIONS = discord.AllowedMentions.none()

Name = app_commands.Range[str, 1, MAX_NAME_CHARS]


def sheet_problem(interaction: discord.Interaction[Reelbot]) -> str | None:
    """Why the character sheet cannot be posted here, in words for the member; None if it can."""
    channel = interaction.channel
    if channel is None or channel.type not in _SHEET_CHANNELS:
        return "`/character create` posts the character's sheet where it runs: use it in a text channel or thread."
    permissions = interaction.app_permissions
    send = "send_messages_in_threads" if channel.type in _THREADS else "send_messages"
    needed = {send: "Send Messages", **_SHEET_PERMISSIONS}
    missing = [label for name, label in needed.items() if not getattr(permissions, name)]
    if missing:
        return (
            f"I cannot post the character sheet here: I am missing **{', '.join(missing)}**. "
            "Ask a moderator, or use another channel."
        )
    return None


def _jump(guild_id: int, character: Character) -> str:
    return f"https://discord.com/channels/{guild_id}/{character.channel_id}/{character.id}"


def _file_name(position: int, attachment: discord.Attachment) -> str:
    suffix = PurePosixPath(attachment.filename.lower()).suffix or ".png"
    return "front" + suffix if position == 0 else f"angle-{position}{suffix}"


def _sheet(name: str, owner_id: int, shared: bool, angles: int, front_file: str) -> discord.Embed:
    who = f"shared by <@{owner_id}> with everyone on this server" if shared else f"<@{owner_id}>'s, for them only"
    sent = (
        f" The video service uses the first {ANGLES_SENT} angles for now; all {angles} are kept."
        if angles > ANGLES_SENT
        else ""
    )
    embed = discord.Embed(
        title=f"🎭 {name}",
        description=(
            f"A character for `/video` ({who}): the front view and {angles} other "
            f"angle{'s' if angles != 1 else ''} are attached.{sent}"
        ),
        colour=SHEET_COLOUR,
    )
    embed.set_image(url=f"attachment://{front_file}")
    embed.set_footer(text="The character lives in this message: deleting it deletes the character.")
    return embed


@app_commands.guild_only()
class CharacterCog(commands.GroupCog, group_name="character", group_description="Saved characters for /video"):
    def __init__(self, bot: Reelbot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(name="create", description="Save a character: a front view and 1–4 other angles")
    @app_commands.describe(
        name="What to call it (you pick it by this name in /video, and write @Name in prompts)",
        frontal="The front view: PNG, JPEG or WebP, at least 300×300 px, up to 10 MiB",
        reference1="Another angle of the same character",
        reference2="Another angle (optional)",
        reference3="Another angle (optional)",
        reference4="Another angle (optional)",
        shared="Moderators: let everyone on this server use it",
    )
    async def create(
        self,
        interaction: discord.Interaction[Reelbot],
        name: Name,
        frontal: discord.Attachment,
        reference1: discord.Attachment,
        reference2: discord.Attachment | None = None,
        reference3: discord.Attachment | None = None,
        reference4: discord.Attachment | None = None,
        shared: bool = False,
    ) -> None:
        """Save a character or object to reuse in /video."""
        assert interaction.guild_id is not None
        assert interaction.channel_id is not None
        problem = sheet_problem(interaction)
        if problem is not None:
            await reply_ephemeral(interaction, problem)
            return
        attached = [a for a in (frontal, reference1, reference2, reference3, reference4) if a is not None]
        new = NewCharacter(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            owner_id=interaction.user.id,
            name=name,
            shared=shared,
            by_moderator=shared and await is_moderator(interaction),
            images=tuple(
                ImageMeta(n, a.filename, a.content_type, a.size, a.width, a.height) for n, a in enumerate(attached)
            ),
        )
        problems = await self.bot.characters.check_new(new)
        if problems:
            text = problems_message(problems, head="I could not save this character:", tail="Nothing was saved.")
            await reply_ephemeral(interaction, text)
            return
        # Reading the images back and posting the sheet are Discord calls: acknowledge first.
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                contents = await asyncio.gather(*(a.read() for a in attached))
        except (TimeoutError, discord.HTTPException) as exc:
            log.warning("could not read the images of a new character: %r", exc)
            await reply_ephemeral(
                interaction, "Discord did not give me your images in time. Nothing was saved; try again in a moment."
            )
            return
        names = [_file_name(n, a) for n, a in enumerate(attached)]
        files = [discord.File(io.BytesIO(data), filename=f) for data, f in zip(contents, names, strict=True)]
        embed = _sheet(" ".join(name.split()), interaction.user.id, shared, len(attached) - 1, names[0])
        channel = interaction.channel
        assert isinstance(channel, discord.abc.Messageable)
        try:
            sheet = await channel.send(embed=embed, files=files, allowed_mentions=_NO_MENTIONS)
        except discord.HTTPException as exc:
            log.warning("could not post a character sheet: %s", exc)
            await reply_ephemeral(interaction, "I could not post the character sheet here. Nothing was saved.")
            return
        by_name = {a.filename: a.id for a in sheet.attachments}
        # Front view first, then the angles: by the names we gave the files, else in the order they were sent.
        ids = [by_name[f] for f in names] if all(f in by_name for f in names) else [a.id for a in sheet.attachments]
        saved = await self.bot.characters.save(new, sheet.id, ids)
        if isinstance(saved, str):
            await _delete_sheet(sheet)
            await reply_ephemeral(interaction, f"{saved} Nothing was saved.")
            return
        await reply_ephemeral(interaction, _saved_text(saved, interaction.guild_id))
        if saved.shared:
            what = f"shared the character **{saved.name}** with the server ({_jump(saved.guild_id, saved)})"
            await post_modlog_line(self.bot, saved.guild_id, action_text(interaction.user.id, what))
        log.info("character %s saved in guild %s by %s", saved.id, saved.guild_id, saved.owner_id)

    @app_commands.command(name="list", description="Your characters and the server's shared ones")
    async def list_(self, interaction: discord.Interaction[Reelbot]) -> None:
        assert interaction.guild_id is not None
        characters = await self.bot.characters.visible(interaction.guild_id, interaction.user.id)
        own = [c for c in characters if not c.shared]
        shared = [c for c in characters if c.shared]
        limits = self.bot.characters.limits
        lines = [f"**Your characters** ({len(own)} of {limits.per_member}):"]
        lines += [_line(c, interaction.guild_id) for c in own] or ["• none yet — save one with `/character create`"]
        lines.append(f"**Shared on this server** ({len(shared)}):")
        lines += [_line(c, interaction.guild_id) for c in shared] or ["• none"]
        lines.append("Use them in `/video` with `character1`…`character4`; write `@Name` in the prompt.")
        await reply_ephemeral(interaction, _fit(lines))

    @app_commands.command(name="delete", description="Delete one of your characters (moderators: also shared ones)")
    @app_commands.describe(name="The character to delete")
    async def delete(self, interaction: discord.Interaction[Reelbot], name: app_commands.Range[str, 1, 100]) -> None:
        assert interaction.guild_id is not None
        moderator = await is_moderator(interaction)
        deleted = await self.bot.characters.delete(interaction.guild_id, interaction.user.id, name, moderator=moderator)
        if isinstance(deleted, str):
            await reply_ephemeral(interaction, deleted)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        sheet = self.bot.get_partial_messageable(deleted.channel_id).get_partial_message(deleted.id)
        if await _delete_sheet(sheet):
            text = f"Deleted **{deleted.name}** and its character sheet; its images are off Discord."
        else:
            text = (
                f"Deleted **{deleted.name}**. I could not delete its character sheet "
                f"({_jump(interaction.guild_id, deleted)}); a moderator can."
            )
        await reply_ephemeral(interaction, text)
        if deleted.shared:
            what = f"deleted the shared character **{deleted.name}**"
            await post_modlog_line(self.bot, deleted.guild_id, action_text(interaction.user.id, what))

    @delete.autocomplete("name")
    async def _deletable(
        self, interaction: discord.Interaction[Reelbot], current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        found = await self.bot.characters.deletable_suggestions(
            interaction.guild_id, interaction.user.id, current, moderator=await is_moderator(interaction)
        )
        return [app_commands.Choice(name=s.label, value=s.value) for s in found]


def _saved_text(character: Character, guild_id: int) -> str:
    whose = "Everyone on this server can use it" if character.shared else "Only you can use it"
    more = (
        f" (the video service uses the first {ANGLES_SENT} of its {character.angles} angles)"
        if character.angles > ANGLES_SENT
        else ""
    )
    return (
        f"Saved **{character.name}**{more}. {whose}: pick it in `/video` as `character1`, and write "
        f"`@{character.name}` in the prompt to refer to it. Its sheet: {_jump(guild_id, character)} — "
        "deleting that message deletes the character."
    )


def _line(character: Character, guild_id: int) -> str:
    angles = f"{character.angles} angle{'s' if character.angles != 1 else ''}"
    return f"• **{escape_markdown(character.name)}** — front + {angles} · {_jump(guild_id, character)}"


def _fit(lines: list[str], limit: int = 2000) -> str:
    """The lines, cut to one Discord message."""
    text = "\n".join(lines)
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def _delete_sheet(sheet: discord.Message | discord.PartialMessage) -> bool:
    """Delete a character sheet; True once it is gone (also when it already was)."""
    try:
        await sheet.delete()
    except discord.NotFound:
        return True
    except discord.HTTPException as exc:
        log.warning("could not delete character sheet %s: %s", sheet.id, exc)
        return False
    return True


async def setup(bot: Reelbot) -> None:
    await bot.add_cog(CharacterCog(bot))

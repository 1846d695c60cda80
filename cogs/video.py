"""`/video`: reference images and a prompt in, a status card and a thread out — within Discord's 3 seconds.

A well-formed request is answered first, at once: a public "thinking…" that becomes the card. Only then does the
cog do its slower local work (the channel's rules, the quota transaction, the card's numbers), and while a
crowd's commands keep arriving it lets them be answered first (`Reelbot.members_first`): in a crowd every member
hears back in milliseconds and the cards follow. A request whose prompt or images break a rule is not deferred:
the private refusal is the answer, and nothing appears in the channel.

Everything remote happens in the poller. The order matters: nothing is charged until every check passed, and
the job row with its reservation exists before the first remote call, so no later failure can lose either. With
saved characters there is one remote step before the charge: reading their sheets from Discord (fresh image
URLs, or word that a sheet is gone). Any refusal after the deferral withdraws the public "thinking…" and tells
the member privately; nothing was charged.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Reelbot
from bot.chat import card_embed
from bot.discord_ui import (
    ASPECT_CHOICES,
    DURATION_CHOICES,
    character_choices,
    member_role_ids,
    record_card,
    reply_ephemeral,
    style_choices,
    withdraw,
)
from bot.domain.validation import MAX_PROMPT_CHARS, ImageMeta, clean_prompt, content_problems, problems_message
from bot.logs import job_extra
from bot.services.intake import Invalid, VideoRequest
from bot.services.media import Unavailable
from bot.services.presenter import Card, render_card
from bot.services.quota_words import refusal_message, unavailable_message
from bot.services.styles import DEFAULT_ASPECT_RATIO, DEFAULT_DURATION, VideoSettings
from bot.storage import Refused

__all__ = ["VideoCog", "thread_problem"]

log = logging.getLogger(__name__)

# What the bot needs in the channel to post the card, start the thread on it, and deliver the file there.
REQUIRED = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "embed_links": "Embed Links",
    "read_message_history": "Read Message History",
    "create_public_threads": "Create Public Threads",
    "send_messages_in_threads": "Send Messages in Threads",
    "attach_files": "Attach Files",
}
THREAD_PARENTS = (discord.ChannelType.text, discord.ChannelType.news)


def thread_problem(interaction: discord.Interaction[Reelbot]) -> str | None:
    """Why the video could not be delivered in a thread started here, in words for the member; None if it can."""
    channel = interaction.channel
    if interaction.guild_id is None or channel is None:
        return "`/video` works in a server's text channel, not in direct messages."
    if channel.type in (discord.ChannelType.public_thread, discord.ChannelType.private_thread):
        return "`/video` starts a thread for each video, and threads cannot hold threads. Run it in the channel."
    if channel.type not in THREAD_PARENTS:
        return "`/video` needs a text channel where I can start a thread (not a forum, voice or stage channel)."
    permissions = interaction.app_permissions
    missing = [label for name, label in REQUIRED.items() if not getattr(permissions, name)]
    if missing:
        return (
            f"I cannot start a thread and post the video in this channel: I am missing **{', '.join(missing)}**. "
            "Ask a moderator to grant them, or use another channel."
        )
    return None


def _why_not(outcome: Invalid | Refused) -> str:
    """Why the video was not started (a rule broken, or the allowance), with nothing charged."""
    if isinstance(outcome, Invalid):
        return problems_message(outcome.problems)
    return refusal_message(outcome.quota, outcome.refusal)


class VideoCog(commands.Cog):
    def __init__(self, bot: Reelbot) -> None:
        self.bot = bot

    def _answered(self, interaction: discord.Interaction[Reelbot]) -> None:
        """Record how long the member waited for the first answer, counted from when Discord created the
        interaction (the 3-second deadline runs from there, not from when the bot received it)."""
        waited = (discord.utils.utcnow() - interaction.created_at).total_seconds()
        self.bot.metrics.initial_response.observe(max(0.0, waited))

    @app_commands.command(name="video")
    @app_commands.describe(
        prompt="What should happen? Refer to your images as image 1, image 2… (up to 2500 characters)",
        image1="A reference image: PNG, JPEG or WebP, at least 300×300 px, up to 10 MiB",
        image2="Another reference image (optional)",
        image3="Another reference image (optional)",
        image4="Another reference image (optional)",
        image5="Another reference image (optional)",
        image6="Another reference image (optional)",
        image7="Another reference image (optional)",
        character1="A saved character to put in the video (write @Name in the prompt to refer to it)",
        character2="Another saved character (optional)",
        character3="Another saved character (optional)",
        character4="Another saved character (optional)",
        style="A look set by the moderators (default: this channel's, if it has one)",
        duration="How long the video is (default 5 seconds, or this channel's default)",
        aspect_ratio="The shape of the video (default 16:9 landscape, or this channel's default)",
    )
    @app_commands.choices(duration=DURATION_CHOICES, aspect_ratio=ASPECT_CHOICES)
    @app_commands.autocomplete(
        character1=character_choices,
        character2=character_choices,
        character3=character_choices,
        character4=character_choices,
        style=style_choices,
    )
    async def video(
        self,
        interaction: discord.Interaction[Reelbot],
        prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
        image1: discord.Attachment,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        image6: discord.Attachment | None = None,
        image7: discord.Attachment | None = None,
        character1: app_commands.Range[str, 1, 100] | None = None,
        character2: app_commands.Range[str, 1, 100] | None = None,
        character3: app_commands.Range[str, 1, 100] | None = None,
        character4: app_commands.Range[str, 1, 100] | None = None,
        style: app_commands.Range[str, 1, 100] | None = None,
        duration: app_commands.Choice[int] | None = None,
        aspect_ratio: app_commands.Choice[str] | None = None,
    ) -> None:
        """Make a short video from reference images and a prompt."""
        problem = thread_problem(interaction)
        if problem is not None:
            await reply_ephemeral(interaction, problem)
            self._answered(interaction)
            return
        assert interaction.guild_id is not None
        assert interaction.channel_id is not None
        images = _images((image1, image2, image3, image4, image5, image6, image7))
        if not content_problems(clean_prompt(prompt), [meta for meta, _ in images]):
            await interaction.response.defer(thinking=True)  # public: the card replaces "thinking…"
            self._answered(interaction)
            await self.bot.members_first()
        picked = [c for c in (character1, character2, character3, character4) if c]
        built, problems = await self._request(
            interaction,
            prompt,
            images,
            picked,
            style=style,
            duration=duration.value if duration else None,
            aspect_ratio=aspect_ratio.value if aspect_ratio else None,
        )
        if problems:
            # Every problem at once: the style and the characters named, and whatever else is wrong.
            early = await self.bot.intake.check(built)
            more = early.problems if isinstance(early, Invalid) else []
            await self._refuse(interaction, problems_message([*problems, *more]))
            return
        request = await self._read_sheets(interaction, built) if built.characters else built
        if request is None:
            return
        outcome = await self.bot.intake.start(request)
        if isinstance(outcome, Invalid | Refused):
            await self._refuse(interaction, _why_not(outcome))
            return
        job, quota = outcome.job, outcome.quota
        card = render_card(job, await self.bot.intake.card_context(job, quota=quota))
        try:
            message = await self._show_card(interaction, card)
        except discord.HTTPException:
            log.exception("could not answer /video; cancelling job", extra=job_extra(job.id))
            await self.bot.intake.abandon(job.id, "the reply to /video could not be sent")
            return
        job = await record_card(self.bot, job, message.id)
        log.info("job accepted", extra=job_extra(job.id, user_id=job.user_id, guild_id=job.guild_id))

    async def _refuse(self, interaction: discord.Interaction[Reelbot], text: str) -> None:
        """Tell the member privately why not (withdrawing the public "thinking…" if it was sent)."""
        answered_already = interaction.response.is_done()
        await withdraw(interaction, text)
        if not answered_already:
            self._answered(interaction)

    async def _show_card(self, interaction: discord.Interaction[Reelbot], card: Card) -> discord.InteractionMessage:
        """The card as the interaction's own answer (the poller starts the job's thread on it): the deferred
        "thinking…" message edited into the card."""
        return await interaction.edit_original_response(embed=card_embed(card), view=self.bot.chat.view(card))

    async def _request(
        self,
        interaction: discord.Interaction[Reelbot],
        prompt: str,
        images: list[tuple[ImageMeta, discord.Attachment]],
        picked: list[str],
        *,
        style: str | None,
        duration: int | None,
        aspect_ratio: str | None,
    ) -> tuple[VideoRequest, list[str]]:
        """The request from the options, the channel's defaults and the picked characters, and what is wrong
        with the style or the characters named (member-facing; the request then leaves them out)."""
        assert interaction.guild_id is not None
        assert interaction.channel_id is not None
        settings = await self.bot.styles.for_video(
            interaction.guild_id, interaction.channel_id, style=style, duration=duration, aspect_ratio=aspect_ratio
        )
        cast = await self.bot.characters.cast_for(interaction.guild_id, interaction.user.id, picked)
        problems = [settings] if isinstance(settings, str) else []
        problems.extend(p for p in cast if isinstance(p, str))
        if isinstance(settings, str):
            settings = VideoSettings(None, duration or DEFAULT_DURATION, aspect_ratio or DEFAULT_ASPECT_RATIO)
        return VideoRequest(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            user_id=interaction.user.id,
            role_ids=member_role_ids(interaction.user),
            prompt=prompt,
            images=tuple((meta, a.url) for meta, a in images),
            attachment_ids=tuple(a.id for _, a in images),
            duration=settings.duration,
            aspect_ratio=settings.aspect_ratio,
            characters=tuple(c for c in cast if not isinstance(c, str)),
            style=settings.style,
        ), problems

    async def _read_sheets(
        self, interaction: discord.Interaction[Reelbot], request: VideoRequest
    ) -> VideoRequest | None:
        """The request with its characters' fresh URLs, read from their sheets; None once the member has been
        told why not. Every check that needs no Discord call refuses first, before the sheets are read."""
        assert interaction.guild_id is not None
        early = await self.bot.intake.check(request)
        if early is not None:
            await self._refuse(interaction, _why_not(early))
            return None
        fresh = await self.bot.characters.fresh_cast(self.bot.media, interaction.guild_id, request.characters)
        if isinstance(fresh, Unavailable):
            await withdraw(interaction, unavailable_message(fresh))
            return None
        return replace(request, characters=fresh)


def _images(slots: tuple[discord.Attachment | None, ...]) -> list[tuple[ImageMeta, discord.Attachment]]:
    """The attached images with what is known of each, numbered by their option (`image1`…)."""
    return [
        (ImageMeta(position, a.filename, a.content_type, a.size, a.width, a.height), a)
        for position, a in enumerate(slots, start=1)
        if a is not None
    ]


async def setup(bot: Reelbot) -> None:
    await bot.add_cog(VideoCog(bot))

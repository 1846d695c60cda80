"""`/video`: reference images and a prompt in, a status card and a thread out — within Discord's 3 seconds.

Before the reply the cog does only local work (checks, one SQLite transaction); everything remote happens in
the poller. The order matters: nothing is charged until every check passed, and the job row with its
reservation exists before the first remote call, so no later failure can lose either.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Reelbot, reply_ephemeral
from bot.chat import card_embed
from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.domain.quotas import Refusal
from bot.domain.validation import MAX_PROMPT_CHARS, ImageMeta, problems_message
from bot.logs import job_extra
from bot.services.intake import Invalid, VideoRequest
from bot.services.moderation import estimate_context
from bot.services.presenter import quota_lines, render_card
from bot.storage import Refused
from cogs.quota import member_role_ids

__all__ = ["VideoCog", "abandon", "record_card", "thread_problem"]

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
DURATION_CHOICES: list[app_commands.Choice[int | float | str]] = [
    app_commands.Choice(name="5 seconds", value=5),
    app_commands.Choice(name="10 seconds", value=10),
]
ASPECTS = (("16:9", "16:9 landscape"), ("9:16", "9:16 portrait"), ("1:1", "1:1 square"))
"""Each shape a member can pick (`/video` and the card's aspect switch): its value and its label."""
ASPECT_CHOICES: list[app_commands.Choice[int | float | str]] = [
    app_commands.Choice(name=label, value=value) for value, label in ASPECTS
]
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


def _refusal_text(refused: Refused) -> str:
    quota = refused.quota
    if refused.refusal is Refusal.BLOCKED:
        head = "You cannot start videos on this server right now."
    elif refused.refusal is Refusal.TOO_MANY_ACTIVE:
        head = (
            f"You already have {quota.active} videos in progress, the most you can have at once "
            f"({quota.max_active}). Start another when one is delivered."
        )
    else:
        head = "You have reached your video limit for now."
    return "\n".join([head, *quota_lines(quota), "Nothing was charged."])


async def abandon(bot: Reelbot, job: Job, why: str) -> None:
    """The member never saw the new job's card, so it must not run: fail it, which refunds it. If the poller
    already picked it up the compare-and-set fails and the job runs to the end, delivering in the channel (with
    no card there is nothing to start a thread on)."""
    await bot.store.jobs.transition(
        job.id, JobStatus.QUEUED, JobStatus.FAILED, failure_kind=FailureKind.INTERNAL, last_error=why
    )


async def record_card(bot: Reelbot, job: Job, message_id: int) -> Job:
    """Record the new job's status card and hand the job to the poller (which starts its thread on the card,
    paced with everything else the bot sends) and to the mod-log.

    Shared by `/video` and the card buttons that start a new job (Retry, Remix, aspect switch)."""
    job = await bot.store.jobs.update_fields(job.id, status_message_id=message_id)
    bot.poller.wake()
    bot.dispatch("job_accepted", job)  # the mod-log entry (cogs.controls)
    return job


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
        duration="How long the video is (default 5 seconds)",
        aspect_ratio="The shape of the video (default 16:9 landscape)",
    )
    @app_commands.choices(duration=DURATION_CHOICES, aspect_ratio=ASPECT_CHOICES)
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
        slots = (image1, image2, image3, image4, image5, image6, image7)
        attached = [(position, a) for position, a in enumerate(slots, start=1) if a is not None]
        request = VideoRequest(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            user_id=interaction.user.id,
            role_ids=member_role_ids(interaction.user),
            prompt=prompt,
            images=tuple(
                (ImageMeta(position, a.filename, a.content_type, a.size, a.width, a.height), a.url)
                for position, a in attached
            ),
            attachment_ids=tuple(a.id for _, a in attached),
            duration=duration.value if duration else 5,
            aspect_ratio=aspect_ratio.value if aspect_ratio else "16:9",
        )
        outcome = await self.bot.intake.start(request)
        if isinstance(outcome, Invalid):
            await reply_ephemeral(interaction, problems_message(outcome.problems))
            self._answered(interaction)
            return
        if isinstance(outcome, Refused):
            await reply_ephemeral(interaction, _refusal_text(outcome))
            self._answered(interaction)
            return
        job, quota = outcome.job, outcome.quota
        card = render_card(job, await estimate_context(self.bot.store, job, quota=quota))
        try:
            callback = await interaction.response.send_message(embed=card_embed(card), view=self.bot.chat.view(card))
            self._answered(interaction)
            message = callback.resource
            if not isinstance(message, discord.InteractionMessage):
                message = await interaction.original_response()
        except discord.HTTPException:
            log.exception("could not answer /video; cancelling job", extra=job_extra(job.id))
            await abandon(self.bot, job, "the reply to /video could not be sent")
            return
        job = await record_card(self.bot, job, message.id)
        log.info("job accepted", extra=job_extra(job.id, user_id=job.user_id, guild_id=job.guild_id))


async def setup(bot: Reelbot) -> None:
    await bot.add_cog(VideoCog(bot))

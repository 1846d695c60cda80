"""The buttons of team channels and of delivered videos: Approve and Reject (with the Reject form) on a card that
waits for a moderator, Delete on the delivered video, Details on every card — what pressing each one does.

They are `JobButton`s like the others (bot/card_buttons.py), so they survive restarts: the custom id carries the
action and the job id, and each press re-reads the job from the store, limited to the interaction's guild. The
decisions are the services' (`ModeratorActions.approve`/`reject`, `CardControls.remove`); this module checks who
pressed, answers them privately, deletes the message, and tells the thread, the card and the mod-log.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from bot.chat import card_embed
from bot.discord_ui import is_moderator, post_modlog_line, reply_ephemeral
from bot.domain.jobs import JobStatus
from bot.logs import job_extra
from bot.services.card_controls import Actor, RemoveOutcome
from bot.services.details import details_card
from bot.services.moderator_actions import ReviewOutcome, ReviewResult
from bot.services.modlog import action_text
from bot.services.ports import ChatError
from bot.services.presenter import approved_message, removed_message, status_label

if TYPE_CHECKING:
    from bot.app import Reelbot

__all__ = ["RejectModal", "approve", "delete", "details", "show_reject"]

log = logging.getLogger(__name__)

MAX_REASON = 300


async def approve(interaction: discord.Interaction[Reelbot], job_id: int) -> None:
    if interaction.guild_id is None:
        return
    if not await is_moderator(interaction):
        await reply_ephemeral(interaction, "Only moderators can approve videos.")
        return
    await interaction.response.defer(ephemeral=True, thinking=True)
    bot = interaction.client
    result = await bot.moderators.approve(interaction.guild_id, job_id, actor_id=interaction.user.id)
    if result.outcome is not ReviewOutcome.DONE:
        await reply_ephemeral(interaction, _not_reviewed(job_id, result))
        return
    job = result.job
    assert job is not None
    bot.poller.wake()  # it is due now
    await bot.poller.announce(job)  # card, mod-log entry
    await post_modlog_line(
        bot, job.guild_id, action_text(interaction.user.id, f"approved job #{job.id} of <@{job.user_id}>")
    )
    await reply_ephemeral(interaction, f"Approved: job #{job.id} goes to the video service now.")
    log.info("job approved by %s", interaction.user.id, extra=job_extra(job.id))
    await bot.poller.tell(job, approved_message(job))  # last: the thread may still be waiting its turn


async def show_reject(interaction: discord.Interaction[Reelbot], job_id: int) -> None:
    if interaction.guild_id is None:
        return
    if not await is_moderator(interaction):
        await reply_ephemeral(interaction, "Only moderators can reject videos.")
        return
    job = await interaction.client.card_controls.job_for(interaction.guild_id, job_id)
    if job is None or job.status is not JobStatus.AWAITING_APPROVAL:
        await reply_ephemeral(interaction, f"Job #{job_id} is not waiting for approval.")
        return
    await interaction.response.send_modal(RejectModal(job_id))


class RejectModal(discord.ui.Modal):
    """Why a video is rejected: the member reads it on the card and in the thread."""

    def __init__(self, job_id: int) -> None:
        super().__init__(title=f"Reject video #{job_id}", custom_id=f"reelbot:reject-modal:{job_id}", timeout=900)
        self.job_id = job_id
        self.reason: discord.ui.TextInput[RejectModal] = discord.ui.TextInput(
            label="Reason (the member sees it)",
            style=discord.TextStyle.paragraph,
            min_length=1,
            max_length=MAX_REASON,
            custom_id="reason",
        )
        self.add_item(self.reason)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await reject(interaction, self.job_id, self.reason.value)


async def reject(interaction: discord.Interaction[Reelbot], job_id: int, reason: str) -> None:
    if interaction.guild_id is None:
        return
    if not await is_moderator(interaction):  # the form is a new interaction: check again
        await reply_ephemeral(interaction, "Only moderators can reject videos.")
        return
    reason = " ".join(reason.split())
    if not reason:
        await reply_ephemeral(interaction, "Give a reason: the member reads it. Nothing was changed.")
        return
    await interaction.response.defer(ephemeral=True, thinking=True)
    bot = interaction.client
    result = await bot.moderators.reject(interaction.guild_id, job_id, actor_id=interaction.user.id, reason=reason)
    if result.outcome is not ReviewOutcome.DONE:
        await reply_ephemeral(interaction, _not_reviewed(job_id, result))
        return
    job = result.job
    assert job is not None
    await bot.poller.announce(job)  # card, metrics, mod-log entry
    what = f"rejected job #{job.id} of <@{job.user_id}> (refunded)"
    await post_modlog_line(bot, job.guild_id, action_text(interaction.user.id, what, reason))
    await reply_ephemeral(interaction, f"Rejected: job #{job.id} will not be made, and its video was refunded.")
    log.info("job rejected by %s", interaction.user.id, extra=job_extra(job.id))
    await bot.poller.tell(job)  # last: the thread may still be waiting its turn


def _not_reviewed(job_id: int, result: ReviewResult) -> str:
    if result.outcome is ReviewOutcome.NOT_FOUND or result.job is None:
        return "That job is not on this server."
    return f"Job #{job_id} is not waiting for approval any more ({status_label(result.job)})."


async def delete(interaction: discord.Interaction[Reelbot], job_id: int) -> None:
    """The requester or a moderator takes a delivered video down: the message goes, the job is recorded as
    removed (not refunded), and the mod-log says who."""
    if interaction.guild_id is None:
        return
    bot = interaction.client
    actor = Actor(interaction.user.id, is_moderator=await is_moderator(interaction))
    await interaction.response.defer(ephemeral=True, thinking=True)
    result = await bot.card_controls.remove(interaction.guild_id, job_id, actor)
    job = result.job
    if result.outcome is RemoveOutcome.NOT_FOUND or job is None:
        await reply_ephemeral(interaction, "That job is not on this server.")
        return
    if result.outcome is RemoveOutcome.NOT_ALLOWED:
        await reply_ephemeral(interaction, "Only the member who asked for this video, or a moderator, can delete it.")
        return
    if result.outcome is RemoveOutcome.NOT_DELIVERED:
        await reply_ephemeral(interaction, f"Job #{job.id} has no posted video to delete.")
        return
    if job.delivered_message_id is not None:
        try:
            await bot.chat.delete_message(job.thread_id or job.channel_id, job.delivered_message_id)
        except ChatError as exc:
            log.warning("could not delete the video message: %s", exc, extra=job_extra(job.id))
            await reply_ephemeral(
                interaction,
                f"Video #{job.id} is recorded as removed, but Discord did not delete the message. "
                "Press Delete again in a moment.",
            )
            return
    if result.outcome is RemoveOutcome.REMOVED:
        await bot.poller.announce(job)  # the card says who removed it
        await bot.poller.tell(job, removed_message(job))
        what = f"removed the video of job #{job.id} of <@{job.user_id}>"
        await post_modlog_line(bot, job.guild_id, action_text(interaction.user.id, what))
        log.info("video removed by %s", interaction.user.id, extra=job_extra(job.id))
    await reply_ephemeral(interaction, f"Video #{job.id} was deleted.")


async def details(interaction: discord.Interaction[Reelbot], job_id: int) -> None:
    """How the video was made, for anyone who asks, privately."""
    if interaction.guild_id is None:
        return
    job = await interaction.client.card_controls.job_for(interaction.guild_id, job_id)
    if job is None:
        await reply_ephemeral(interaction, "That job is not on this server.")
        return
    await interaction.response.send_message(
        embed=card_embed(details_card(job)), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
    )

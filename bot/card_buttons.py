"""The buttons on status cards, delivered videos and mod-log entries: Cancel, Retry, Remix, aspect switch,
Block, and the team channels' Approve, Reject, Delete and Details (pressed in bot/team_buttons.py) — what they
look like (`card_view`), and what pressing them does, over `CardControls` and `ModeratorActions`.

Every component is a `discord.ui.DynamicItem` whose custom id carries the job id (`reelbot:cancel:42`), and the
bot registers the classes in its `setup_hook` (not a cog, so no extension can take the buttons away), so a
button on a card posted last week still works after any number of restarts: nothing about it lives in memory.
The handler re-reads the job from the store, limited to the interaction's guild, and checks who pressed it
(the owner, or a moderator) before anything happens.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from bot.chat import card_embed
from bot.discord_ui import ASPECTS, is_moderator, member_role_ids, post_modlog_line, record_card, reply_ephemeral
from bot.domain.jobs import Job, JobStatus
from bot.domain.quotas import QuotaStatus
from bot.domain.validation import MAX_PROMPT_CHARS, problems_message
from bot.logs import job_extra
from bot.services.card_controls import Actor, CancelOutcome, Denied
from bot.services.intake import Invalid
from bot.services.media import Unavailable
from bot.services.modlog import action_text
from bot.services.presenter import Card, Controls, render_card
from bot.services.quota_words import refusal_message, unavailable_message
from bot.storage import Refused
from bot.team_buttons import approve, delete, details, show_reject

if TYPE_CHECKING:
    from bot.app import Reelbot

__all__ = ["DYNAMIC_ITEMS", "AspectSelect", "JobButton", "RemixModal", "card_view"]

log = logging.getLogger(__name__)

_ID = r"(?P<job_id>[0-9]{1,19})"


# Each button: its label, emoji and style, and the handler it calls. One DynamicItem class serves them all; the
# custom id names the action and the job, e.g. `reelbot:cancel:42`.
_BUTTONS: dict[str, tuple[str, str, discord.ButtonStyle]] = {
    "approve": ("Approve", "✅", discord.ButtonStyle.success),  # moderators, while it waits for approval
    "reject": ("Reject", "✋", discord.ButtonStyle.danger),
    "cancel": ("Cancel", "🚫", discord.ButtonStyle.danger),
    "retry": ("Retry", "🔁", discord.ButtonStyle.primary),
    "remix": ("Remix", "✏️", discord.ButtonStyle.secondary),
    "delete": ("Delete", "🗑️", discord.ButtonStyle.secondary),  # on the delivered video
    "details": ("Details", "ℹ️", discord.ButtonStyle.secondary),
    "block": ("Block member", "⛔", discord.ButtonStyle.danger),  # on mod-log entries
}


class JobButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"reelbot:(?P<action>{'|'.join(_BUTTONS)}):{_ID}"
):
    def __init__(self, action: str, job_id: int) -> None:
        label, emoji, style = _BUTTONS[action]
        super().__init__(
            discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=f"reelbot:{action}:{job_id}")
        )
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> JobButton:
        return cls(match["action"], int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if self.action == "retry":
            await again(interaction, self.job_id, retry=True)
        else:
            await _PRESS[self.action](interaction, self.job_id)


class AspectSelect(discord.ui.DynamicItem[discord.ui.Select[Any]], template=rf"reelbot:aspect:{_ID}"):
    def __init__(self, job_id: int) -> None:
        super().__init__(
            discord.ui.Select(
                custom_id=f"reelbot:aspect:{job_id}",
                placeholder="Make it again in another shape…",
                options=[discord.SelectOption(label=label, value=value) for value, label in ASPECTS],
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> AspectSelect:
        return cls(int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        values = self.item.values  # filled from the interaction before the callback runs
        shape = values[0] if values else None
        if shape not in {value for value, _ in ASPECTS}:
            await reply_ephemeral(interaction, "Pick one of the shapes in the list.")
            return
        await again(interaction, self.job_id, aspect_ratio=shape)


DYNAMIC_ITEMS = (JobButton, AspectSelect)


def card_view(card: Card | Controls) -> discord.ui.View:
    """The components for a card's (or other message's) actions (an empty view removes them)."""
    controls = card.controls if isinstance(card, Card) else card
    view = discord.ui.View(timeout=None)
    if controls.job_id is not None:
        for action in controls.actions:
            job_id = controls.job_id
            view.add_item(AspectSelect(job_id) if action == "aspect" else JobButton(action, job_id))
    return view


class RemixModal(discord.ui.Modal):
    """Edit the prompt of a delivered video; the same images, duration and shape are used again."""

    def __init__(self, job: Job) -> None:
        super().__init__(title=f"Remix video #{job.id}", custom_id=f"reelbot:remix-modal:{job.id}", timeout=900)
        self.job_id = job.id
        self.prompt: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
            label="Prompt",
            style=discord.TextStyle.paragraph,
            default=job.prompt[:MAX_PROMPT_CHARS],
            min_length=1,
            max_length=MAX_PROMPT_CHARS,
            custom_id="prompt",
        )
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await again(interaction, self.job_id, prompt=self.prompt.value)


# ---------------------------------------------------------------------- what a press does


async def _actor(interaction: discord.Interaction[Reelbot]) -> Actor:
    return Actor(interaction.user.id, is_moderator=await is_moderator(interaction))


def _owner_roles(interaction: discord.Interaction[Reelbot], job: Job) -> tuple[int, ...]:
    """The job owner's roles (their limit may come from a role): their current ones when they pressed it,
    else the ones stored with the job when they asked (no extra Discord request for a moderator's press)."""
    if interaction.user.id == job.user_id:
        return member_role_ids(interaction.user)
    return job.role_ids


async def cancel(interaction: discord.Interaction[Reelbot], job_id: int) -> None:
    if interaction.guild_id is None:
        return
    bot = interaction.client
    await interaction.response.defer(ephemeral=True, thinking=True)
    result = await bot.card_controls.cancel(interaction.guild_id, job_id, await _actor(interaction))
    outcome, job = result.outcome, result.job
    if outcome is CancelOutcome.NOT_FOUND:
        text = "That job is not on this server."
    elif outcome is CancelOutcome.NOT_ALLOWED:
        text = "Only the member who started this video, or a moderator, can cancel it."
    elif outcome is CancelOutcome.TOO_LATE:
        text = f"Job #{job_id} is already finished or being posted; it can no longer be cancelled."
    elif outcome is CancelOutcome.ALREADY_ENDED:
        text = f"Job #{job_id} has already ended ({job.status.value if job else 'ended'}); nothing to cancel."
    else:
        assert job is not None
        text = f"Job #{job.id} is cancelled and its video was refunded. Nothing will be posted."
        await bot.poller.announce(job)  # card, metrics, mod-log
        if interaction.user.id != job.user_id:
            await post_modlog_line(
                bot, job.guild_id, action_text(interaction.user.id, f"cancelled job #{job.id} of <@{job.user_id}>")
            )
        log.info("job cancelled by %s", interaction.user.id, extra=job_extra(job.id))
    await reply_ephemeral(interaction, text)
    if outcome is CancelOutcome.CANCELLED and job is not None:
        # In the thread, like every job's ending; after the reply, as the thread may still be waiting its turn.
        await bot.poller.tell(job)


async def show_remix(interaction: discord.Interaction[Reelbot], job_id: int) -> None:
    if interaction.guild_id is None:
        return
    job = await interaction.client.card_controls.job_for(interaction.guild_id, job_id)
    actor = await _actor(interaction)
    if job is None or not actor.may_act_on(job):
        await reply_ephemeral(interaction, "Only the member who started this video, or a moderator, can remix it.")
        return
    await interaction.response.send_modal(RemixModal(job))


async def again(
    interaction: discord.Interaction[Reelbot],
    job_id: int,
    *,
    retry: bool = False,
    prompt: str | None = None,
    aspect_ratio: str | None = None,
) -> None:
    """Retry / Remix / aspect switch: a new public card and thread, like `/video`, or a private refusal."""
    if interaction.guild_id is None:
        return
    bot = interaction.client
    actor = await _actor(interaction)
    job = await bot.card_controls.job_for(interaction.guild_id, job_id)
    if job is None or not actor.may_act_on(job):
        await reply_ephemeral(interaction, "Only the member who started this video, or a moderator, can do that.")
        return
    # Renewing the image URLs means asking Discord: acknowledge first (3-second rule). The answer to the
    # presser is private; the new job's card is a bot message in the channel, like any other card.
    await interaction.response.defer(ephemeral=True, thinking=True)
    outcome = await bot.card_controls.again(
        interaction.guild_id,
        job_id,
        actor,
        role_ids=_owner_roles(interaction, job),
        media=bot.media,
        retry=retry,
        prompt=prompt,
        aspect_ratio=aspect_ratio,
    )
    if isinstance(outcome, Denied):
        await reply_ephemeral(interaction, outcome.reason)
        return
    if isinstance(outcome, Unavailable):
        await reply_ephemeral(interaction, unavailable_message(outcome))
        return
    if isinstance(outcome, Invalid):
        await reply_ephemeral(interaction, problems_message(outcome.problems))
        return
    if isinstance(outcome, Refused):
        await reply_ephemeral(interaction, refusal_message(outcome.quota, outcome.refusal))
        return
    new = await _post_card(bot, outcome.job, outcome.quota if outcome.job.user_id == actor.user_id else None)
    if new is None:
        await reply_ephemeral(interaction, "I could not post the new video's card here, so it was not started.")
        return
    free = " It is free: the last attempt failed on the video service's side." if new.retry_of and retry else ""
    waits = " It waits for a moderator's approval." if new.status is JobStatus.AWAITING_APPROVAL else ""
    await reply_ephemeral(interaction, f"Started video #{new.id}; follow it on its card.{free}{waits}")
    log.info("job %s started from job %s by %s", new.id, job_id, interaction.user.id, extra=job_extra(new.id))


async def _post_card(bot: Reelbot, job: Job, quota: QuotaStatus | None) -> Job | None:
    """The new job's public card, with the bot token and ids only (the poller starts its thread on it). If the
    card cannot be posted the member would never see the job, so it fails and is refunded before the poller picks
    it up."""
    card = render_card(job, await bot.intake.card_context(job, quota=quota))
    try:
        message = await bot.get_partial_messageable(job.channel_id).send(embed=card_embed(card), view=card_view(card))
    except discord.HTTPException:
        log.exception("could not post the card of a restarted job; failing it", extra=job_extra(job.id))
        await bot.intake.abandon(job.id, "the card could not be posted")
        return None
    return await record_card(bot, job, message.id)


async def block_from_log(interaction: discord.Interaction[Reelbot], job_id: int) -> None:
    if interaction.guild_id is None:
        return
    if not await is_moderator(interaction):
        await reply_ephemeral(interaction, "Only moderators can block members.")
        return
    bot = interaction.client
    entry = await bot.moderators.block_from_job(interaction.guild_id, job_id, actor_id=interaction.user.id)
    if entry is None:
        await reply_ephemeral(interaction, "That job is not on this server.")
        return
    await reply_ephemeral(
        interaction,
        f"<@{entry.user_id}> is now blocked from starting videos here. Lift it with `/videomod unblock`.",
    )
    what = action_text(interaction.user.id, f"blocked <@{entry.user_id}>", entry.reason)
    await post_modlog_line(bot, entry.guild_id, what)


_PRESS: dict[str, Callable[[discord.Interaction[Any], int], Awaitable[None]]] = {
    "approve": approve,
    "reject": show_reject,
    "cancel": cancel,
    "remix": show_remix,
    "delete": delete,
    "details": details,
    "block": block_from_log,
}
"""What pressing each button does (Retry is `again`)."""

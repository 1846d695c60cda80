"""The buttons on status cards and mod-log entries: Cancel, Retry, Remix, aspect switch, Block.

Every component is a `discord.ui.DynamicItem` whose custom id carries the job id (`reelbot:cancel:42`), and the
classes are registered at start-up, so a button on a card posted last week still works after any number of
restarts: nothing about it lives in memory. The handler re-reads the job from the store, limited to the
interaction's guild, and checks who pressed it (the owner, or a moderator) before anything happens.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import discord
from discord.ext import commands

from bot.app import Reelbot, reply_ephemeral
from bot.chat import card_embed
from bot.domain.jobs import Job, Reference
from bot.domain.quotas import QuotaStatus
from bot.domain.validation import MAX_PROMPT_CHARS, problems_message
from bot.logs import job_extra
from bot.services.intake import Invalid
from bot.services.moderation import Actor, CancelOutcome, Denied, JobControls, estimate_context
from bot.services.modlog import action_text, job_entry, job_message, remember_job_message
from bot.services.presenter import Card, quota_lines, render_card
from bot.storage import Refused
from cogs.quota import member_role_ids
from cogs.video import ASPECTS, abandon, record_card

__all__ = ["AspectSelect", "ControlsCog", "JobButton", "card_view", "is_moderator"]

log = logging.getLogger(__name__)

_ID = r"(?P<job_id>[0-9]{1,19})"


async def is_moderator(interaction: discord.Interaction[Reelbot]) -> bool:
    """Manage Server in this channel, or the moderator role the guild configured (`/videomod modrole`)."""
    if interaction.guild_id is None or not isinstance(interaction.user, discord.Member):
        return False
    if interaction.permissions.manage_guild:
        return True
    config = await interaction.client.store.guilds.get(interaction.guild_id)
    role = config.moderator_role_id
    return role is not None and any(r.id == role for r in interaction.user.roles)


def _cog(interaction: discord.Interaction[Reelbot]) -> ControlsCog:
    cog = interaction.client.get_cog(ControlsCog.__cog_name__)
    assert isinstance(cog, ControlsCog)
    return cog


# Each button: its label, emoji and style, and the handler it calls. One DynamicItem class serves them all; the
# custom id names the action and the job, e.g. `reelbot:cancel:42`.
_BUTTONS: dict[str, tuple[str, str, discord.ButtonStyle]] = {
    "cancel": ("Cancel", "🚫", discord.ButtonStyle.danger),
    "retry": ("Retry", "🔁", discord.ButtonStyle.primary),
    "remix": ("Remix", "✏️", discord.ButtonStyle.secondary),
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
        cog = _cog(interaction)
        if self.action == "cancel":
            await cog.cancel(interaction, self.job_id)
        elif self.action == "retry":
            await cog.again(interaction, self.job_id, retry=True)
        elif self.action == "remix":
            await cog.show_remix(interaction, self.job_id)
        else:
            await cog.block_from_log(interaction, self.job_id)


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
        await _cog(interaction).again(interaction, self.job_id, aspect_ratio=shape)


DYNAMIC_ITEMS = (JobButton, AspectSelect)


def card_view(card: Card) -> discord.ui.View:
    """The components for `card.actions` (an empty view removes them)."""
    view = discord.ui.View(timeout=None)
    if card.job_id is not None:
        for action in card.actions:
            view.add_item(AspectSelect(card.job_id) if action == "aspect" else JobButton(action, card.job_id))
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
        await _cog(interaction).again(interaction, self.job_id, prompt=self.prompt.value)


def _usable(url: str, now: float) -> bool:
    """Whether a Discord CDN URL is not yet past its signed expiry (`ex`, hex epoch seconds)."""
    ex = parse_qs(urlsplit(url).query).get("ex")
    if not ex:
        return True
    try:
        return int(ex[0], 16) > now
    except ValueError:
        return True


class ControlsCog(commands.Cog):
    """Button handlers, the card's components, and the mod-log entry of every job."""

    def __init__(self, bot: Reelbot) -> None:
        self.bot = bot
        self.controls = JobControls(bot.store, bot.intake)

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(*DYNAMIC_ITEMS)
        self.bot.chat.card_view = card_view

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(*DYNAMIC_ITEMS)
        self.bot.chat.card_view = None

    # ------------------------------------------------------------------ helpers

    async def _actor(self, interaction: discord.Interaction[Reelbot]) -> Actor:
        return Actor(interaction.user.id, is_moderator=await is_moderator(interaction))

    async def _owner_roles(self, interaction: discord.Interaction[Reelbot], job: Job) -> tuple[int, ...]:
        """The job owner's roles (their limit may come from a role): their current ones when they pressed it,
        else the ones stored with the job when they asked (no extra Discord request for a moderator's press)."""
        if interaction.user.id == job.user_id:
            return member_role_ids(interaction.user)
        return job.role_ids

    async def refresh(self, references: tuple[Reference, ...]) -> tuple[Reference, ...] | None:
        """The references with fresh signed URLs, or None if Discord no longer serves one of them.

        Why refresh rather than keep copies: the provider needs a public URL it can fetch, and the only public
        host the bot has is Discord itself; a copy on the bot's disk would have to be uploaded somewhere anyway.
        """
        if not references:
            return references
        try:
            fresh = await self.bot.chat.refresh_urls([r.url for r in references])
        except Exception:
            log.warning("could not refresh reference URLs", exc_info=True)
            return None
        now = time.time()
        out: list[Reference] = []
        for ref in references:
            url = fresh.get(ref.url, ref.url)
            if url == ref.url and not _usable(url, now):
                return None
            out.append(dataclasses.replace(ref, url=url))
        return tuple(out)

    # ------------------------------------------------------------------ Cancel

    async def cancel(self, interaction: discord.Interaction[Reelbot], job_id: int) -> None:
        if interaction.guild_id is None:
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        result = await self.controls.cancel(interaction.guild_id, job_id, await self._actor(interaction))
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
            await self.bot.poller.announce(job)  # card, metrics, mod-log
            if interaction.user.id != job.user_id:
                await self.post_modlog_action(
                    job.guild_id, action_text(interaction.user.id, f"cancelled job #{job.id} of <@{job.user_id}>")
                )
            log.info("job cancelled by %s", interaction.user.id, extra=job_extra(job.id))
        await reply_ephemeral(interaction, text)
        if outcome is CancelOutcome.CANCELLED and job is not None:
            # In the thread, like every job's ending (after the reply: the thread may still be waiting its turn).
            await self.bot.poller.tell(job)

    # ------------------------------------------------------------------ Retry, Remix, aspect switch

    async def show_remix(self, interaction: discord.Interaction[Reelbot], job_id: int) -> None:
        if interaction.guild_id is None:
            return
        job = await self.controls.job_for(interaction.guild_id, job_id)
        actor = await self._actor(interaction)
        if job is None or not actor.may_act_on(job):
            await reply_ephemeral(interaction, "Only the member who started this video, or a moderator, can remix it.")
            return
        await interaction.response.send_modal(RemixModal(job))

    async def again(
        self,
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
        actor = await self._actor(interaction)
        job = await self.controls.job_for(interaction.guild_id, job_id)
        if job is None or not actor.may_act_on(job):
            await reply_ephemeral(interaction, "Only the member who started this video, or a moderator, can do that.")
            return
        # Refreshing the image URLs is a Discord call: acknowledge first (3-second rule). The answer to the
        # presser is private; the new job's card is a bot message in the channel, like any other card.
        await interaction.response.defer(ephemeral=True, thinking=True)
        outcome = await self.controls.again(
            interaction.guild_id,
            job_id,
            actor,
            role_ids=await self._owner_roles(interaction, job),
            refresh=self.refresh,
            retry=retry,
            prompt=prompt,
            aspect_ratio=aspect_ratio,
        )
        if isinstance(outcome, Denied):
            await reply_ephemeral(interaction, outcome.reason)
            return
        if isinstance(outcome, Invalid):
            await reply_ephemeral(interaction, problems_message(outcome.problems))
            return
        if isinstance(outcome, Refused):
            await reply_ephemeral(interaction, "\n".join([*quota_lines(outcome.quota), "Nothing was charged."]))
            return
        new = await self._post_card(outcome.job, outcome.quota if outcome.job.user_id == actor.user_id else None)
        if new is None:
            await reply_ephemeral(interaction, "I could not post the new video's card here, so it was not started.")
            return
        free = " It is free: the last attempt failed on the video service's side." if new.retry_of and retry else ""
        await reply_ephemeral(interaction, f"Started video #{new.id}; follow it on its card.{free}")
        log.info("job %s started from job %s by %s", new.id, job_id, interaction.user.id, extra=job_extra(new.id))

    async def _post_card(self, job: Job, quota: QuotaStatus | None) -> Job | None:
        """The new job's public card and thread, with the bot token. If the card cannot be posted the member
        would never see the job, so it fails and is refunded before the poller picks it up."""
        card = render_card(job, await estimate_context(self.bot.store, job, quota=quota))
        try:
            channel = self.bot.get_partial_messageable(job.channel_id)
            message = await channel.send(embed=card_embed(card), view=card_view(card))
        except discord.HTTPException:
            log.exception("could not post the card of a restarted job; failing it", extra=job_extra(job.id))
            await abandon(self.bot, job, "the card could not be posted")
            return None
        return await record_card(self.bot, job, message.id)

    # ------------------------------------------------------------------ mod-log

    async def block_from_log(self, interaction: discord.Interaction[Reelbot], job_id: int) -> None:
        if interaction.guild_id is None:
            return
        if not await is_moderator(interaction):
            await reply_ephemeral(interaction, "Only moderators can block members.")
            return
        job = await self.controls.job_for(interaction.guild_id, job_id)
        if job is None:
            await reply_ephemeral(interaction, "That job is not on this server.")
            return
        reason = f"blocked from the mod-log entry of job #{job.id}"
        await self.bot.store.quotas.block(job.guild_id, job.user_id, actor_id=interaction.user.id, reason=reason)
        await reply_ephemeral(
            interaction,
            f"<@{job.user_id}> is now blocked from starting videos here. Lift it with `/videomod unblock`.",
        )
        await self.post_modlog_action(
            job.guild_id, action_text(interaction.user.id, f"blocked <@{job.user_id}>", reason)
        )

    async def post_modlog_action(self, guild_id: int, text: str) -> None:
        """One line in the guild's mod-log channel, if it has one (best-effort: the action already happened)."""
        config = await self.bot.store.guilds.get(guild_id)
        if config.mod_log_channel_id is None:
            return
        try:
            channel = self.bot.get_partial_messageable(config.mod_log_channel_id)
            await channel.send(text, allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as exc:
            log.warning("could not post to the mod-log channel of guild %s: %s", guild_id, exc)

    @commands.Cog.listener()
    async def on_job_accepted(self, job: Job) -> None:
        config = await self.bot.store.guilds.get(job.guild_id)
        if config.mod_log_channel_id is None:
            return
        entry = job_entry(job)
        try:
            channel = self.bot.get_partial_messageable(config.mod_log_channel_id)
            message = await channel.send(
                embed=card_embed(entry), view=card_view(entry), allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException as exc:
            log.warning("could not post the job to the mod-log: %s", exc, extra=job_extra(job.id))
            return
        await remember_job_message(self.bot.store, job.id, config.mod_log_channel_id, message.id)

    @commands.Cog.listener()
    async def on_job_changed(self, job: Job) -> None:
        if not job.terminal:
            return
        where = await job_message(self.bot.store, job.id)
        if where is None:
            return
        entry = job_entry(job)
        try:
            message = self.bot.get_partial_messageable(where[0]).get_partial_message(where[1])
            await message.edit(embed=card_embed(entry), view=card_view(entry))
        except discord.HTTPException as exc:
            log.warning("could not update the job's mod-log entry: %s", exc, extra=job_extra(job.id))


async def setup(bot: Reelbot) -> None:
    await bot.add_cog(ControlsCog(bot))

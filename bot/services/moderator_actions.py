"""The moderators' actions, without Discord: what `/videomod` and the mod-log's Block button do.

Who counts as a moderator, every allowance and server switch, the usage report, and where each job's mod-log
entry was posted. Every change is a ledger row with the moderator and the reason, which the store writes in
the same transaction as the change itself, so the audit trail cannot miss one. Every call is keyed by the
guild the interaction came from, so one guild's moderators never reach another's data; the words moderators
read are the Discord side's business (cogs/moderation.py, bot/discord_ui.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.domain.clock import Clock, system_clock
from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.domain.pools import Period, PoolStatus
from bot.domain.quotas import QuotaStatus
from bot.services.intake import Intake
from bot.services.usage import UsageReport, build_report
from bot.storage import BlockedWord, GuildConfig, LedgerEntry, Store

__all__ = ["MAX_BLOCKED_WORDS", "ModeratorActions", "ReviewOutcome", "ReviewResult"]

MAX_BLOCKED_WORDS = 500
"""Per server; each prompt is checked against the whole list."""


class ReviewOutcome(StrEnum):
    DONE = "done"
    NOT_FOUND = "not_found"  # no such job on this server
    NOT_WAITING = "not_waiting"  # approved, rejected, cancelled or expired already


@dataclass(frozen=True)
class ReviewResult:
    """What became of an Approve or Reject: the job as it is now."""

    outcome: ReviewOutcome
    job: Job | None = None


DAY = 86_400.0
Roles = tuple[int, ...]


class ModeratorActions:
    """`/videomod` and the mod-log over the store. Methods that change a member's allowance return it as it is
    now (read with the member's current roles, passed in by the caller who knows them), for the reply."""

    def __init__(self, store: Store, intake: Intake, *, default_limit: int, clock: Clock = system_clock) -> None:
        self._store = store
        self._intake = intake
        self._default_limit = default_limit
        self._clock = clock

    async def is_moderator(self, guild_id: int, role_ids: Roles, *, manage_guild: bool) -> bool:
        """Manage Server (in the channel at hand), or the moderator role the guild configured (`modrole`)."""
        if manage_guild:
            return True
        role = (await self._store.guilds.get(guild_id)).moderator_role_id
        return role is not None and role in role_ids

    async def settings(self, guild_id: int) -> GuildConfig:
        return await self._store.guilds.get(guild_id)

    # ------------------------------------------------------------------ members

    async def set_member_limit(
        self, guild_id: int, member_id: int, videos: int | None, roles: Roles, *, actor_id: int, reason: str | None
    ) -> QuotaStatus:
        """The member's own limit per window (None removes it: roles and the server default apply again)."""
        await self._store.quotas.set_member_limit(guild_id, member_id, videos, actor_id=actor_id, reason=reason)
        return await self._intake.quota(guild_id, member_id, roles)

    async def reset(
        self, guild_id: int, member_id: int, roles: Roles, *, actor_id: int, reason: str | None
    ) -> QuotaStatus:
        """Start the member's window afresh: videos before now stop counting."""
        await self._store.quotas.reset(guild_id, member_id, actor_id=actor_id, reason=reason)
        return await self._intake.quota(guild_id, member_id, roles)

    async def grant(
        self, guild_id: int, member_id: int, videos: int, roles: Roles, *, actor_id: int, reason: str | None
    ) -> QuotaStatus:
        """Extra videos for the current window."""
        await self._store.quotas.grant(guild_id, member_id, videos, actor_id=actor_id, reason=reason)
        return await self._intake.quota(guild_id, member_id, roles)

    async def block(self, guild_id: int, member_id: int, *, actor_id: int, reason: str | None) -> None:
        """The member can start no video here until unblocked; `reason` is shown to them."""
        await self._store.quotas.block(guild_id, member_id, actor_id=actor_id, reason=reason)

    async def unblock(
        self, guild_id: int, member_id: int, roles: Roles, *, actor_id: int, reason: str | None
    ) -> QuotaStatus:
        await self._store.quotas.unblock(guild_id, member_id, actor_id=actor_id, reason=reason)
        return await self._intake.quota(guild_id, member_id, roles)

    async def member_record(
        self, guild_id: int, member_id: int, roles: Roles, *, rows: int = 10
    ) -> tuple[QuotaStatus, list[LedgerEntry]]:
        """The member's allowance and their latest ledger rows, newest first (`check`)."""
        status = await self._intake.quota(guild_id, member_id, roles)
        return status, await self._store.quotas.ledger(guild_id, user_id=member_id, limit=rows)

    async def block_from_job(self, guild_id: int, job_id: int, *, actor_id: int) -> LedgerEntry | None:
        """Block the member who started `job_id` (the mod-log entry's Block button) and return the ledger row;
        None if the job is not on this server (a custom id is just a number anyone could craft)."""
        job = await self._store.jobs.get(job_id, guild_id=guild_id)
        if job is None:
            return None
        reason = f"blocked from the mod-log entry of job #{job.id}"
        return await self._store.quotas.block(job.guild_id, job.user_id, actor_id=actor_id, reason=reason)

    # ------------------------------------------------------------------ roles and defaults

    async def set_role_limit(
        self, guild_id: int, role_id: int, videos: int | None, *, actor_id: int, reason: str | None
    ) -> None:
        """A role's own limit per window (None removes it); a member with several such roles gets the highest."""
        await self._store.quotas.set_role_limit(guild_id, role_id, videos, actor_id=actor_id, reason=reason)

    async def set_guild_default(self, guild_id: int, videos: int | None, *, actor_id: int, reason: str | None) -> int:
        """The server's default limit (None falls back to the bot's); returns the default now in force."""
        await self._store.quotas.set_guild_default(guild_id, videos, actor_id=actor_id, reason=reason)
        return self._default_limit if videos is None else videos

    # ------------------------------------------------------------------ server switches

    async def set_paused(self, guild_id: int, paused: bool, *, actor_id: int, reason: str | None) -> None:
        """Stop (or allow again) new videos on the server; running jobs always finish."""
        await self._store.guilds.update(guild_id, actor_id=actor_id, reason=reason, paused=paused)

    async def set_price(self, guild_id: int, usd_per_second: float | None, *, actor_id: int) -> None:
        """The price per second of video that reports multiply by (None: reports show no cost)."""
        await self._store.guilds.update(guild_id, actor_id=actor_id, price_per_second=usd_per_second)

    async def set_mod_log(self, guild_id: int, channel_id: int | None, *, actor_id: int) -> None:
        await self._store.guilds.update(guild_id, actor_id=actor_id, mod_log_channel_id=channel_id)

    async def set_moderator_role(self, guild_id: int, role_id: int | None, *, actor_id: int) -> None:
        await self._store.guilds.update(guild_id, actor_id=actor_id, moderator_role_id=role_id)

    async def allow_channel(self, guild_id: int, channel_id: int, *, actor_id: int, reason: str | None) -> GuildConfig:
        """Allow `/video` in the channel; once any channel is allowed, only the allowed ones."""
        return await self._store.guilds.allow_channel(guild_id, channel_id, actor_id=actor_id, reason=reason)

    async def disallow_channel(
        self, guild_id: int, channel_id: int, *, actor_id: int, reason: str | None
    ) -> GuildConfig:
        return await self._store.guilds.disallow_channel(guild_id, channel_id, actor_id=actor_id, reason=reason)

    # ------------------------------------------------------------------ team channels

    async def set_budget(
        self, guild_id: int, channel_id: int, videos: int | None, period: Period, *, actor_id: int
    ) -> PoolStatus | None:
        """A shared budget of `videos` per calendar `period` for the channel (None removes it); this period's use
        still counts after a change. Returns the budget as it stands now."""
        return await self._store.teams.set_pool(guild_id, channel_id, videos, period, actor_id=actor_id)

    async def set_approvals(self, guild_id: int, channel_id: int, enabled: bool, *, actor_id: int) -> None:
        """Whether new videos in the channel wait for a moderator's Approve before anything is submitted."""
        await self._store.teams.set_approvals(guild_id, channel_id, enabled, actor_id=actor_id)

    async def approve(self, guild_id: int, job_id: int, *, actor_id: int) -> ReviewResult:
        """Let a job waiting for approval go to the provider: it is queued now (and due at once)."""
        now = self._clock()
        return await self._review(
            guild_id, job_id, JobStatus.QUEUED, actor_id, reviewed_by=actor_id, reviewed_at=now, next_poll_at=now
        )

    async def reject(self, guild_id: int, job_id: int, *, actor_id: int, reason: str) -> ReviewResult:
        """Turn down a job waiting for approval, with the reason the member reads; its unit is refunded (to the
        member's quota or the channel's budget) in the same write, the moderator named on the refund row."""
        return await self._review(
            guild_id,
            job_id,
            JobStatus.CANCELLED,
            actor_id,
            failure_kind=FailureKind.REJECTED,
            last_error=reason,
            reviewed_by=actor_id,
            reviewed_at=self._clock(),
        )

    async def _review(self, guild_id: int, job_id: int, new: JobStatus, actor_id: int, **fields: Any) -> ReviewResult:
        job = await self._store.jobs.get(job_id, guild_id=guild_id)
        if job is None:
            return ReviewResult(ReviewOutcome.NOT_FOUND)
        moved = await self._store.jobs.transition(job.id, JobStatus.AWAITING_APPROVAL, new, actor_id=actor_id, **fields)
        if moved is None:
            return ReviewResult(ReviewOutcome.NOT_WAITING, await self._store.jobs.get(job.id) or job)
        if not moved.terminal:
            await self._store.jobs.wake_workers(job.id)  # approved: due now, whichever process works it
        return ReviewResult(ReviewOutcome.DONE, moved)

    async def blocked_words(self, guild_id: int) -> list[BlockedWord]:
        return await self._store.teams.words(guild_id)

    async def block_word(self, guild_id: int, text: str, *, actor_id: int) -> BlockedWord | None:
        """Refuse prompts containing `text` (a word or phrase, in any spelling); None if it is blocked already.
        ValueError (a sentence for the moderator) if it cannot be blocked."""
        if len(await self._store.teams.words(guild_id)) >= MAX_BLOCKED_WORDS:
            raise ValueError(f"this server already blocks {MAX_BLOCKED_WORDS} words; remove some first")
        return await self._store.teams.add_word(guild_id, text, actor_id=actor_id)

    async def unblock_word(self, guild_id: int, text: str, *, actor_id: int) -> BlockedWord | None:
        """Allow `text` again (in any spelling); None if it was not blocked."""
        return await self._store.teams.remove_word(guild_id, text, actor_id=actor_id)

    # ------------------------------------------------------------------ usage

    async def report(self, guild_id: int, days: int) -> UsageReport:
        """Usage of the last `days` days, ending now."""
        until = self._clock()
        return await build_report(self._store, guild_id, until - days * DAY, until)

    # ------------------------------------------------------------------ the mod-log's bookkeeping

    async def mod_log_channel(self, guild_id: int) -> int | None:
        """The guild's mod-log channel, if moderators set one."""
        return (await self._store.guilds.get(guild_id)).mod_log_channel_id

    async def remember_log_entry(self, job_id: int, channel_id: int, message_id: int) -> None:
        """Where the job's mod-log entry is, so its outcome can be filled in when it ends, even after a restart
        (kept in the store's `meta` table under `modlog:job:<id>`)."""
        await self._store.set_meta(_entry_key(job_id), f"{channel_id}:{message_id}")

    async def log_entry_of(self, job_id: int) -> tuple[int, int] | None:
        """Where the job's mod-log entry is (channel id, message id), if one was posted."""
        value = await self._store.get_meta(_entry_key(job_id))
        if not value:
            return None
        channel, _, message = value.partition(":")
        return int(channel), int(message)


def _entry_key(job_id: int) -> str:
    return f"modlog:job:{job_id}"

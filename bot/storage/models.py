"""The values the store takes and returns besides `Job` (which lives in the domain)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from bot.domain.cast import CastMember
from bot.domain.jobs import Job, Reference
from bot.domain.pools import Period
from bot.domain.quotas import QuotaStatus, Refusal

__all__ = [
    "BlockedWord",
    "ChannelPool",
    "GuildConfig",
    "JobNotFound",
    "Lease",
    "LedgerEntry",
    "LedgerKind",
    "NewJob",
    "PoolUsageRow",
    "QuotaRequest",
    "Refused",
    "Reserved",
    "TeamChannel",
    "UsageRow",
]


@dataclass(frozen=True)
class NewJob:
    """What `/video` (or Retry/Remix) asks the store to create."""

    guild_id: int
    channel_id: int
    user_id: int
    prompt: str
    duration: int
    aspect_ratio: str
    model: str
    references: tuple[Reference, ...]
    retry_of: int | None = None
    free: bool = False
    """A Retry of a job the provider failed: recorded in the ledger but not charged, and never refunded."""
    role_ids: tuple[int, ...] = ()
    characters: tuple[CastMember, ...] = ()
    style_name: str | None = None
    style_text: str | None = None


@dataclass(frozen=True)
class QuotaRequest:
    """The settings-derived numbers a quota check needs, plus the member's roles (known only to Discord)."""

    window_seconds: float
    fallback_limit: int
    max_active: int
    role_ids: tuple[int, ...] = ()
    approval_timeout: float = 1800.0
    """How long a job in a channel with approvals may wait for a moderator (JOB_TIMEOUT_SECONDS)."""


@dataclass(frozen=True)
class Reserved:
    job: Job
    quota: QuotaStatus
    """The member's quota after this reservation (with the channel's budget, when the job drew from one)."""


@dataclass(frozen=True)
class Refused:
    quota: QuotaStatus
    refusal: Refusal


class LedgerKind(StrEnum):
    RESERVE = "reserve"
    """A job was accepted and charged one unit."""
    FREE = "free"
    """A job was accepted without charge (Retry of a provider failure)."""
    REFUND = "refund"
    """The unit of a job came back (failed, expired, cancelled, or a moderator's refund)."""
    GRANT = "grant"
    """A moderator gave extra videos in the current window."""
    RESET = "reset"
    """A moderator restarted the member's window: earlier uses and grants stop counting."""
    BLOCK = "block"
    UNBLOCK = "unblock"
    MEMBER_LIMIT = "member_limit"
    """A member override was set (amount) or cleared (amount NULL)."""
    ROLE_LIMIT = "role_limit"
    GUILD_DEFAULT = "guild_default"
    GUILD_SETTING = "guild_setting"
    """Another guild setting changed; `detail` holds the new values as JSON."""
    CHANNEL_ALLOW = "channel_allow"
    CHANNEL_DISALLOW = "channel_disallow"


@dataclass(frozen=True)
class LedgerEntry:
    """One row of the audit ledger."""

    id: int
    guild_id: int
    user_id: int | None
    role_id: int | None
    kind: LedgerKind
    amount: int | None
    job_id: int | None
    actor_id: int | None
    reason: str | None
    at: float
    detail: str | None = None
    pool_id: int | None = None
    """On `reserve` and `refund` rows: the channel budget charged or refunded (None: the member's own quota); on a
    `guild_setting` row that set or removed a budget: that budget."""


@dataclass(frozen=True)
class GuildConfig:
    """A guild's moderator-chosen settings. A guild never configured gets these defaults."""

    guild_id: int
    default_limit: int | None = None
    paused: bool = False
    mod_log_channel_id: int | None = None
    moderator_role_id: int | None = None
    price_per_second: float | None = None
    allowed_channel_ids: frozenset[int] = frozenset()

    def channel_allowed(self, channel_id: int) -> bool:
        """No channel configured means `/video` works everywhere."""
        return not self.allowed_channel_ids or channel_id in self.allowed_channel_ids


@dataclass(frozen=True)
class UsageRow:
    """One member's activity in a period, for the moderators' usage report.

    `started`/`charged` and `refunds` count ledger rows dated in the period (a draw from a channel budget is
    charged too); `delivered`, `failed`, `cancelled`, `removed`, `seconds` and `credits` count jobs that
    finished in the period. `seconds` is the requested duration of every delivered video (removed ones too:
    they were made), the unit the provider bills by; `credits` is what the provider reported the jobs cost.
    """

    user_id: int
    started: int
    charged: int
    refunds: int
    delivered: int
    failed: int
    cancelled: int
    seconds: int
    removed: int = 0
    credits: float = 0.0

    COUNTS: ClassVar[tuple[str, ...]] = (
        "started",
        "charged",
        "refunds",
        "delivered",
        "failed",
        "cancelled",
        "seconds",
        "removed",
        "credits",
    )
    """Every counter field (all but `user_id`), for code that fills or adds them up by name."""

    @property
    def net_used(self) -> int:
        return self.charged - self.refunds


@dataclass(frozen=True)
class Lease:
    """A process (`owner`) works on the job until `until` (epoch seconds) unless it renews the lease."""

    job_id: int
    owner: str
    until: float


class JobNotFound(LookupError):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"no job with id {job_id}")
        self.job_id = job_id


@dataclass(frozen=True)
class ChannelPool:
    """A channel's shared budget as moderators set it (`/videomod budget`)."""

    pool_id: int
    guild_id: int
    channel_id: int
    videos: int
    period: Period


@dataclass(frozen=True)
class TeamChannel:
    """What moderators set up for one channel: a shared budget, approvals."""

    guild_id: int
    channel_id: int
    pool: ChannelPool | None = None
    approvals: bool = False


@dataclass(frozen=True)
class BlockedWord:
    """A word or phrase prompts may not contain: `text` as the moderator typed it, `phrase` folded for matching."""

    phrase: str
    text: str
    added_by: int
    added_at: float


@dataclass(frozen=True)
class PoolUsageRow:
    """One channel budget's activity in a period, for the usage report: draws and refunds by ledger date,
    outcomes of the jobs charged to it by finish date (as in `UsageRow`)."""

    pool_id: int
    channel_id: int
    videos: int | None
    """Its size now (None: removed since)."""
    period: Period
    draws: int
    refunds: int
    delivered: int
    seconds: int
    credits: float

    @property
    def net_used(self) -> int:
        return self.draws - self.refunds

"""Quota rules without I/O: which limit applies to a member, the rolling-window arithmetic, and the one
computation of what a member may still start (`allowance_of`).

A quota is a number of videos per rolling window. The store keeps the ledger; these functions decide. In a
channel with a team budget (bot/domain/pools.py) the budget takes the place of the member's own quota.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from bot.domain.pools import PoolStatus

__all__ = ["Allowance", "QuotaStatus", "Refusal", "allowance_of", "next_free_at", "resolve_limit"]


def resolve_limit(
    *, member_override: int | None, role_limits: Iterable[int], guild_default: int | None, fallback: int
) -> int:
    """Member override > highest limit among the member's roles > guild default > QUOTA_DEFAULT_LIMIT.

    The highest role wins (not the lowest) so that giving someone a "Creators" role can only ever raise their
    allowance; a moderator who wants less for one member sets a member override. Blocks are separate and win
    over every limit.
    """
    if member_override is not None:
        return member_override
    roles = list(role_limits)
    if roles:
        return max(roles)
    if guild_default is not None:
        return guild_default
    return fallback


def next_free_at(use_times: Sequence[float], limit: int, window_seconds: float) -> float | None:
    """When the member can start another video, given the start times of the uses counted in the window.

    `None` means a slot is free now (or, with a limit of 0, that no slot will ever free by waiting). With `n`
    uses and limit `L`, the member is below the limit once `n - L + 1` of the oldest uses have left the window,
    i.e. when the `(n - L)`-th oldest (0-based) leaves it.
    """
    if limit <= 0 or len(use_times) < limit:
        return None
    ordered = sorted(use_times)
    return ordered[len(ordered) - limit] + window_seconds


class Refusal(StrEnum):
    BLOCKED = "blocked"
    OVER_LIMIT = "over_limit"
    POOL_EMPTY = "pool_empty"
    """The channel's team budget is used up for this period."""
    TOO_MANY_ACTIVE = "too_many_active"


@dataclass(frozen=True)
class Allowance:
    """What a member may start where they are: `used` of `total`, from their own quota or a channel's budget.

    Every view shows these numbers (`/quota`, the refusal, the status card, the moderators' replies) and the
    reservation checks them, so no two of them can disagree.
    """

    used: int
    total: int
    """The member's limit plus the videos moderators granted them, or the size of the channel's budget."""
    granted: int = 0
    """The part of `total` that moderators granted (0 for a budget)."""
    pool: PoolStatus | None = None
    """The channel budget this allowance is, or None for the member's own quota."""

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.used)


def allowance_of(status: QuotaStatus) -> Allowance:
    """The one computation of what a member may still start: the channel's budget when one applies, otherwise
    their limit plus what moderators granted them, against what they used."""
    if status.pool is not None:
        return Allowance(used=status.pool.used, total=status.pool.videos, pool=status.pool)
    return Allowance(used=status.used, total=status.limit + status.granted, granted=status.granted)


@dataclass(frozen=True)
class QuotaStatus:
    """A member's quota as shown on `/quota`, on the card, and in refusals."""

    used: int
    limit: int
    window_seconds: float
    active: int
    max_active: int
    blocked: bool = False
    block_reason: str | None = None
    next_free_at: float | None = None
    granted: int = 0  # extra videos granted by moderators that are still inside the window
    pool: PoolStatus | None = None
    """The budget of the channel asked about, when it has one: videos started there draw from it instead."""

    @property
    def allowance(self) -> Allowance:
        """See `allowance_of`: the numbers every view shows and the reservation checks."""
        return allowance_of(self)

    @property
    def own(self) -> Allowance:
        """The member's own quota, also where a channel budget applies (what they have left elsewhere)."""
        return allowance_of(replace(self, pool=None))

    @property
    def remaining(self) -> int:
        return self.allowance.remaining

    @property
    def refusal(self) -> Refusal | None:
        """Why a new job would be refused now, or None if it may start."""
        return self.refusal_for(charged=True)

    def refusal_for(self, *, charged: bool) -> Refusal | None:
        """Why a new job would be refused now; a job that is not `charged` (a free Retry) needs no unit left."""
        if self.blocked:
            return Refusal.BLOCKED
        if charged and self.remaining <= 0:
            return Refusal.POOL_EMPTY if self.pool is not None else Refusal.OVER_LIMIT
        if self.active >= self.max_active:
            return Refusal.TOO_MANY_ACTIVE
        return None

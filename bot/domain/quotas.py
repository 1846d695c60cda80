"""Quota rules without I/O: which limit applies to a member, and the rolling-window arithmetic.

A quota is a number of videos per rolling window. The store keeps the ledger; these functions decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["QuotaStatus", "Refusal", "next_free_at", "resolve_limit"]


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
    TOO_MANY_ACTIVE = "too_many_active"


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

    @property
    def remaining(self) -> int:
        return max(0, self.limit + self.granted - self.used)

    @property
    def refusal(self) -> Refusal | None:
        """Why a new job would be refused now, or None if it may start."""
        return self.refusal_for(charged=True)

    def refusal_for(self, *, charged: bool) -> Refusal | None:
        """Why a new job would be refused now; a job that is not `charged` (a free Retry) needs no unit left."""
        if self.blocked:
            return Refusal.BLOCKED
        if charged and self.remaining <= 0:
            return Refusal.OVER_LIMIT
        if self.active >= self.max_active:
            return Refusal.TOO_MANY_ACTIVE
        return None

"""Channel budgets ("pools"): a number of videos per calendar day, week or month that every member starting a
video in one channel draws from, instead of from their own quota.

Periods are calendar periods in UTC, not rolling windows: a team reads "37 of 100 left this month, resets on
1 December" and can plan around a fixed date, where a rolling window would free units one at a time at hours
nobody can predict. A day starts at 00:00 UTC, a week on Monday 00:00 UTC, a month on its first day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

__all__ = ["Period", "PoolStatus", "period_bounds"]


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def period_bounds(period: Period, now: float) -> tuple[float, float]:
    """The UTC calendar period containing `now`: (start, end) in epoch seconds, start inclusive, end exclusive."""
    moment = datetime.fromtimestamp(now, UTC)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAY:
        start, end = midnight, midnight + timedelta(days=1)
    elif period is Period.WEEK:
        start = midnight - timedelta(days=midnight.weekday())  # Monday is 0
        end = start + timedelta(days=7)
    else:
        start = midnight.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start.timestamp(), end.timestamp()


@dataclass(frozen=True)
class PoolStatus:
    """One channel's budget as it stands at some moment: its size, what this period used, when it resets."""

    pool_id: int
    channel_id: int
    videos: int
    period: Period
    used: int
    resets_at: float
    """The start of the next period (epoch seconds), when `used` starts again from zero."""

    @property
    def remaining(self) -> int:
        return max(0, self.videos - self.used)

"""Channel budgets' calendar periods (UTC) and the one computation of what a member may start."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain.pools import Period, PoolStatus, period_bounds
from bot.domain.quotas import Allowance, QuotaStatus, Refusal, allowance_of


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("period", "now", "start", "end"),
    [
        (Period.DAY, "2025-11-29T13:45:00", "2025-11-29T00:00:00", "2025-11-30T00:00:00"),
        (Period.DAY, "2025-11-29T00:00:00", "2025-11-29T00:00:00", "2025-11-30T00:00:00"),
        (Period.WEEK, "2025-11-29T13:45:00", "2025-11-24T00:00:00", "2025-12-01T00:00:00"),  # a Saturday
        (Period.WEEK, "2025-11-24T00:00:00", "2025-11-24T00:00:00", "2025-12-01T00:00:00"),  # Monday midnight
        (Period.MONTH, "2025-11-29T13:45:00", "2025-11-01T00:00:00", "2025-12-01T00:00:00"),
        (Period.MONTH, "2025-12-31T23:59:59", "2025-12-01T00:00:00", "2026-01-01T00:00:00"),
        (Period.MONTH, "2024-02-29T12:00:00", "2024-02-01T00:00:00", "2024-03-01T00:00:00"),
    ],
)
def test_periods_are_utc_calendar_periods(period: Period, now: str, start: str, end: str) -> None:
    assert period_bounds(period, at(now)) == (at(start), at(end))


def test_the_last_instant_of_a_period_belongs_to_it_and_the_next_starts_fresh() -> None:
    end = at("2025-12-01T00:00:00")
    assert period_bounds(Period.MONTH, end - 0.001)[1] == end
    assert period_bounds(Period.MONTH, end)[0] == end


def quota(**kw: object) -> QuotaStatus:
    values: dict[str, object] = {"used": 1, "limit": 1, "window_seconds": 86_400, "active": 0, "max_active": 2}
    values.update(kw)
    return QuotaStatus(**values)  # type: ignore[arg-type]


def test_the_allowance_is_limit_plus_grants_or_the_channels_budget() -> None:
    assert allowance_of(quota()) == Allowance(used=1, total=1)
    granted = quota(granted=1)
    assert allowance_of(granted) == Allowance(used=1, total=2, granted=1)
    assert (granted.remaining, granted.refusal) == (1, None)
    assert quota(used=2, granted=1).refusal is Refusal.OVER_LIMIT

    pool = PoolStatus(pool_id=1, channel_id=9, videos=100, period=Period.MONTH, used=63, resets_at=0.0)
    in_team = quota(used=5, limit=5, pool=pool)
    assert in_team.allowance == Allowance(used=63, total=100, pool=pool)
    assert in_team.own == Allowance(used=5, total=5)  # what they have left elsewhere
    assert (in_team.remaining, in_team.refusal) == (37, None)  # their own quota is used up; the pool is not
    empty = quota(used=0, pool=PoolStatus(1, 9, 2, Period.DAY, used=2, resets_at=0.0))
    assert empty.refusal is Refusal.POOL_EMPTY
    assert quota(blocked=True, pool=pool).refusal is Refusal.BLOCKED  # blocks still apply in a team channel
    assert quota(active=2, pool=pool).refusal is Refusal.TOO_MANY_ACTIVE  # and so does the active-job limit
    assert empty.refusal_for(charged=False) is None  # a free Retry needs no unit

"""Quota rules without I/O: which limit applies, when the next slot frees, and why a job would be refused."""

from __future__ import annotations

import pytest

from bot.domain.clock import FakeClock, system_clock
from bot.domain.quotas import QuotaStatus, Refusal, next_free_at, resolve_limit

DAY = 86_400.0


@pytest.mark.parametrize(
    ("member", "roles", "guild", "expected"),
    [
        (None, [], None, 5),  # nothing configured: QUOTA_DEFAULT_LIMIT
        (None, [], 3, 3),  # guild default beats the fallback
        (None, [2, 9, 4], 3, 9),  # the highest role wins over the guild default...
        (None, [1], 3, 1),  # ...even when it is lower than the default
        (7, [2, 9], 3, 7),  # a member override beats everything
        (0, [9], 3, 0),  # an override of 0 is an override, not "unset"
        (None, [0], None, 0),  # a role of 0 is a limit too
        (None, [], 0, 0),  # a guild default of 0 is a limit too
    ],
)
def test_resolve_limit_precedence(member: int | None, roles: list[int], guild: int | None, expected: int) -> None:
    assert resolve_limit(member_override=member, role_limits=roles, guild_default=guild, fallback=5) == expected


def test_resolve_limit_accepts_any_iterable_of_roles() -> None:
    assert resolve_limit(member_override=None, role_limits=iter([1, 4]), guild_default=None, fallback=5) == 4


def test_next_free_at_below_limit_is_now() -> None:
    assert next_free_at([], 3, DAY) is None
    assert next_free_at([100.0, 200.0], 3, DAY) is None


def test_next_free_at_at_limit_is_when_the_oldest_use_leaves() -> None:
    assert next_free_at([300.0, 100.0, 200.0], 3, DAY) == 100.0 + DAY


def test_next_free_at_over_limit_waits_for_enough_uses_to_leave() -> None:
    # Limit lowered to 2 after 4 uses: 3 must leave, so the slot frees when the third oldest leaves.
    assert next_free_at([10.0, 20.0, 30.0, 40.0], 2, DAY) == 30.0 + DAY


def test_next_free_at_with_zero_limit_never_frees_by_waiting() -> None:
    assert next_free_at([10.0], 0, DAY) is None


def _status(**kw: object) -> QuotaStatus:
    base: dict[str, object] = {"used": 0, "limit": 5, "window_seconds": DAY, "active": 0, "max_active": 2}
    base.update(kw)
    return QuotaStatus(**base)  # type: ignore[arg-type]


def test_refusal_order_block_wins() -> None:
    assert _status(blocked=True).refusal is Refusal.BLOCKED
    assert _status(blocked=True, used=5, active=2).refusal is Refusal.BLOCKED
    assert _status(used=5, active=2).refusal is Refusal.OVER_LIMIT
    assert _status(used=1, active=2).refusal is Refusal.TOO_MANY_ACTIVE
    assert _status(used=4, active=1).refusal is None


def test_grants_add_to_the_limit() -> None:
    status = _status(used=5, granted=2)
    assert status.remaining == 2
    assert status.refusal is None
    assert _status(used=9, limit=5).remaining == 0  # never negative


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(100.0)
    assert clock() == 100.0
    assert clock.advance(2.5) == 102.5
    assert clock() == 102.5
    assert system_clock() > 1_600_000_000  # epoch seconds, not a monotonic counter

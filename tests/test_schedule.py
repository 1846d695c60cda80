"""The poll schedule and retry backoff: pure arithmetic, pinned randomness."""

from __future__ import annotations

import pytest

from bot.services.schedule import backoff, first_poll_delay, next_poll_delay


def test_first_poll_waits_for_the_median_of_recent_jobs() -> None:
    assert first_poll_delay([100.0, 130.0, 500.0], default=10.0) == 130.0
    assert first_poll_delay([100.0, 140.0], default=10.0) == 120.0


def test_first_poll_without_history_uses_the_default() -> None:
    assert first_poll_delay([], default=10.0) == 10.0
    # Broken history (clock skew, zero durations) is ignored rather than polling at once forever.
    assert first_poll_delay([-3.0, 0.0], default=10.0) == 10.0


def test_first_poll_never_beyond_the_cap() -> None:
    assert first_poll_delay([900.0], default=10.0, cap=60.0) == 60.0
    assert first_poll_delay([900.0], default=10.0, cap=-5.0) == 0.0


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 9.0), (0.5, 10.0), (0.999999, 11.0)])
def test_next_poll_jitter_stays_within_ten_percent(rand: float, expected: float) -> None:
    assert next_poll_delay(10.0, lambda: rand) == pytest.approx(expected, abs=1e-4)


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    mid = lambda: 0.5  # noqa: E731 - no jitter at the midpoint
    delays = [backoff(n, base=10.0, cap=300.0, rand=mid) for n in range(1, 8)]
    assert delays == [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]
    assert backoff(10_000, base=10.0, cap=300.0, rand=mid) == 300.0


def test_backoff_jitter_spreads_but_never_exceeds_the_cap() -> None:
    assert backoff(1, base=10.0, rand=lambda: 0.0) == pytest.approx(9.0)
    assert backoff(1, base=10.0, rand=lambda: 0.99999) == pytest.approx(11.0, abs=1e-3)
    assert backoff(20, base=10.0, cap=300.0, rand=lambda: 0.99999) == 300.0


def test_retry_after_is_a_minimum_and_is_not_capped() -> None:
    assert backoff(1, retry_after=42.0, base=10.0, rand=lambda: 0.0) == 42.0
    assert 42.0 <= backoff(5, retry_after=42.0, base=10.0, rand=lambda: 0.9) <= 42.0 * 1.1
    assert backoff(1, retry_after=900.0, cap=300.0, rand=lambda: 0.0) == 900.0

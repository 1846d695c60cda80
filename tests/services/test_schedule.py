"""The poll schedule and retry backoff: pure arithmetic, pinned randomness."""

from __future__ import annotations

import pytest

from bot.services.schedule import backoff, first_poll_delay, next_poll_delay, typical_duration


def test_first_poll_comes_two_intervals_before_the_fastest_recent_job() -> None:
    assert first_poll_delay([130.0, 100.0, 500.0], default=10.0) == 80.0
    assert first_poll_delay([140.0, 100.0], default=10.0) == 80.0
    # Never sooner than one interval, even when recent jobs were very fast.
    assert first_poll_delay([12.0, 30.0], default=10.0) == 10.0


def test_typical_duration_is_the_median_for_the_eta() -> None:
    assert typical_duration([100.0, 140.0, 500.0]) == 140.0
    assert typical_duration([0.0, -1.0]) is None


def test_first_poll_without_history_uses_the_default() -> None:
    assert first_poll_delay([], default=10.0) == 10.0
    # Broken history (clock skew, zero durations) is ignored rather than polling at once forever.
    assert first_poll_delay([-3.0, 0.0], default=10.0) == 10.0


def test_first_poll_never_beyond_the_cap() -> None:
    assert first_poll_delay([900.0], default=10.0, cap=60.0) == 60.0
    assert first_poll_delay([900.0], default=10.0, cap=-5.0) == 0.0


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 8.1), (0.5, 9.0), (0.999999, 9.9)])
def test_follow_up_polls_are_a_little_faster_than_the_interval_with_ten_percent_jitter(
    rand: float, expected: float
) -> None:
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

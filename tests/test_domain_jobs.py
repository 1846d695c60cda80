"""The job state machine: exactly the documented transitions are allowed, and the derived sets agree with it."""

from __future__ import annotations

import itertools

import pytest

from bot.domain.jobs import (
    ACTIVE,
    REFUNDED_ON,
    TERMINAL,
    TRANSITIONS,
    InvalidTransition,
    JobStatus,
    can_transition,
    check_transition,
)

S = JobStatus

# Written out by hand from docs/jobs.md (not derived from TRANSITIONS), so a change to the table must be deliberate.
EXPECTED_ALLOWED = {
    (S.QUEUED, S.SUBMITTING),
    (S.QUEUED, S.CANCELLED),
    (S.QUEUED, S.EXPIRED),
    (S.QUEUED, S.FAILED),
    (S.SUBMITTING, S.GENERATING),
    (S.SUBMITTING, S.QUEUED),
    (S.SUBMITTING, S.FAILED),
    (S.SUBMITTING, S.EXPIRED),
    (S.GENERATING, S.DOWNLOADING),
    (S.GENERATING, S.FAILED),
    (S.GENERATING, S.EXPIRED),
    (S.GENERATING, S.CANCELLED),
    (S.DOWNLOADING, S.DELIVERING),
    (S.DOWNLOADING, S.FAILED),
    (S.DOWNLOADING, S.EXPIRED),
    (S.DELIVERING, S.DELIVERED),
    (S.DELIVERING, S.FAILED),
}
ALL_PAIRS = list(itertools.product(JobStatus, JobStatus))


def test_table_covers_every_status() -> None:
    assert set(TRANSITIONS) == set(JobStatus)


@pytest.mark.parametrize(("old", "new"), sorted(EXPECTED_ALLOWED))
def test_allowed_transition_passes(old: JobStatus, new: JobStatus) -> None:
    assert can_transition(old, new)
    check_transition(old, new)  # does not raise


@pytest.mark.parametrize(("old", "new"), [p for p in ALL_PAIRS if p not in EXPECTED_ALLOWED])
def test_every_other_transition_is_refused(old: JobStatus, new: JobStatus) -> None:
    assert not can_transition(old, new)
    with pytest.raises(InvalidTransition) as info:
        check_transition(old, new)
    assert (info.value.old, info.value.new) == (old, new)
    assert str(old) in str(info.value)
    assert str(new) in str(info.value)


def test_terminal_active_and_refunded_sets() -> None:
    assert {S.DELIVERED, S.FAILED, S.CANCELLED, S.EXPIRED} == TERMINAL
    assert {S.QUEUED, S.SUBMITTING, S.GENERATING, S.DOWNLOADING, S.DELIVERING} == ACTIVE
    assert {S.FAILED, S.CANCELLED, S.EXPIRED} == REFUNDED_ON
    # Every terminal state but success gives the unit back, and nothing leaves a terminal state.
    assert TERMINAL - {S.DELIVERED} == REFUNDED_ON
    assert all(not TRANSITIONS[s] for s in TERMINAL)


def test_cancel_is_impossible_once_the_video_is_ours() -> None:
    # Once downloading, the member gets the video; a Cancel click then must not refund a delivered video.
    for late in (S.DOWNLOADING, S.DELIVERING, S.DELIVERED):
        assert not can_transition(late, S.CANCELLED)


def test_every_active_state_can_reach_a_terminal_state() -> None:
    for start in ACTIVE:
        seen, frontier = {start}, [start]
        while frontier:
            nxt = [n for s in frontier for n in TRANSITIONS[s] if n not in seen]
            seen.update(nxt)
            frontier = nxt
        assert seen & TERMINAL, start

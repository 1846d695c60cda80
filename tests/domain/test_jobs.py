"""The job state machine: exactly the documented transitions are allowed, and the derived sets agree with it."""

from __future__ import annotations

import itertools

import pytest

from bot.domain.jobs import (
    ACTIVE,
    INITIAL,
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
    (S.AWAITING_APPROVAL, S.QUEUED),
    (S.AWAITING_APPROVAL, S.CANCELLED),
    (S.AWAITING_APPROVAL, S.EXPIRED),
    (S.AWAITING_APPROVAL, S.FAILED),
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
    (S.DELIVERED, S.REMOVED),
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
    assert {S.DELIVERED, S.FAILED, S.CANCELLED, S.EXPIRED, S.REMOVED} == TERMINAL
    assert {S.AWAITING_APPROVAL, S.QUEUED, S.SUBMITTING, S.GENERATING, S.DOWNLOADING, S.DELIVERING} == ACTIVE
    assert {S.FAILED, S.CANCELLED, S.EXPIRED} == REFUNDED_ON
    assert {S.QUEUED, S.AWAITING_APPROVAL} == INITIAL
    # Every end but a video gives the unit back (a removed video was made: it stays charged), and the only move
    # out of an end is the takedown of a delivered video.
    assert TERMINAL - {S.DELIVERED, S.REMOVED} == REFUNDED_ON
    assert {(s, n) for s in TERMINAL for n in TRANSITIONS[s]} == {(S.DELIVERED, S.REMOVED)}


def test_nothing_reaches_the_provider_before_approval() -> None:
    # From waiting for approval the only way on is Approve (queued); submitting is never one step away.
    assert TRANSITIONS[S.AWAITING_APPROVAL] == {S.QUEUED, S.CANCELLED, S.EXPIRED, S.FAILED}
    assert not any(S.AWAITING_APPROVAL in nexts for nexts in TRANSITIONS.values())  # nothing goes back to it


def test_cancel_is_impossible_once_the_video_is_ours() -> None:
    # Once downloading, the member gets the video; a Cancel click then must not refund a delivered video.
    for late in (S.DOWNLOADING, S.DELIVERING, S.DELIVERED, S.REMOVED):
        assert not can_transition(late, S.CANCELLED)


def test_every_active_state_can_reach_a_terminal_state() -> None:
    for start in ACTIVE:
        seen, frontier = {start}, [start]
        while frontier:
            nxt = [n for s in frontier for n in TRANSITIONS[s] if n not in seen]
            seen.update(nxt)
            frontier = nxt
        assert seen & TERMINAL, start

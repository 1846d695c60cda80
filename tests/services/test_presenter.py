"""The words about a job that appear in more than one place are written once: the short status label used by
`/jobs` and the mod-log, for every state a job can be in."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.domain.pools import Period, PoolStatus
from bot.domain.quotas import QuotaStatus, Refusal
from bot.services.details import details_card
from bot.services.modlog import job_entry
from bot.services.presenter import (
    CardContext,
    Controls,
    failure_message,
    render_card,
    status_label,
    video_controls,
)
from bot.services.quota_words import quota_lines, refusal_message
from tests.fakes import references

JOB = Job(
    id=7,
    guild_id=1,
    channel_id=2,
    user_id=3,
    prompt="a fox",
    duration=5,
    aspect_ratio="16:9",
    model="m",
    references=references(1),
    status=JobStatus.QUEUED,
    created_at=0.0,
    updated_at=0.0,
    delivery_nonce="n",
)


@pytest.mark.parametrize("status", list(JobStatus))
def test_every_state_has_a_short_label_and_the_mod_log_shows_it(status: JobStatus) -> None:
    job = replace(JOB, status=status, failure_kind=FailureKind.TIMEOUT if status is JobStatus.FAILED else None)
    label = status_label(job)
    assert 2 <= len(label.split()) <= 4
    outcome = dict(job_entry(job).fields)["Outcome"]
    assert outcome.startswith(label)
    assert ("refunded" in label) == (status in (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED))


def test_a_failed_jobs_mod_log_entry_says_why() -> None:
    failed = replace(JOB, status=JobStatus.FAILED, failure_kind=FailureKind.OUT_OF_CREDITS)
    outcome = dict(job_entry(failed).fields)["Outcome"]
    assert outcome.startswith("❌ failed, refunded — ")
    assert "run out of credits" in outcome


def test_characters_and_style_appear_by_name_on_the_card_the_thread_the_mod_log_and_details() -> None:
    from bot.domain.cast import CastMember
    from bot.services.presenter import cast_note

    cast = (CastMember("Fox", 2, 10, (11, 12)), CastMember("Robot", 2, 20, (21, 22)))
    job = replace(JOB, characters=cast, style_name="Noir", style_text="secret moderator wording")
    card = render_card(job)
    fields = dict(card.fields)
    assert fields["Characters"] == "`@Element1` **Fox** · `@Element2` **Robot**"
    assert fields["Style"] == "**Noir**"
    assert "secret moderator wording" not in str(card)
    note = cast_note(job)
    assert note is not None
    assert "`@Element1` **Fox** · `@Element2` **Robot**" in note
    assert "`@Fox` or `@Element1`" in note
    assert cast_note(JOB) is None
    entry = dict(job_entry(job).fields)
    assert (entry["Characters"], entry["Style"]) == (fields["Characters"], "**Noir**")
    assert "Characters" not in dict(render_card(JOB).fields)
    details = details_card(job)
    assert (dict(details.fields)["Characters"], dict(details.fields)["Style"]) == (fields["Characters"], "**Noir**")
    assert "secret moderator wording" not in str(details)
    assert "Characters" not in dict(details_card(JOB).fields)


# ---------------------------------------------------------------------- allowances, team channels, details

POOL = PoolStatus(
    pool_id=1,
    channel_id=2,
    videos=100,
    period=Period.MONTH,
    used=63,
    resets_at=datetime(2025, 12, 1, tzinfo=UTC).timestamp(),
)


def quota(**kw: object) -> QuotaStatus:
    values: dict[str, object] = {"used": 2, "limit": 1, "window_seconds": 86_400, "active": 1, "max_active": 2}
    values.update(kw)
    return QuotaStatus(**values)  # type: ignore[arg-type]


def test_the_members_quota_counts_grants() -> None:
    lines = quota_lines(quota(granted=1))
    assert lines[0] == (
        "You have used **2** of **2** videos in the last 24 hours (that includes 1 granted by a moderator)."
    )
    assert quota_lines(quota(used=0))[0] == "You have used **0** of **1** videos in the last 24 hours."


def test_in_a_budget_channel_the_budget_comes_first_with_its_reset_date() -> None:
    lines = quota_lines(quota(pool=POOL, next_free_at=123.0))
    assert lines[0] == (
        "This channel's team budget: **37** of **100** videos left this month; it resets on 1 December (UTC)."
    )
    assert lines[1].startswith("Videos started here use the team budget. Your own quota, for other channels: you")
    assert not any("next video slot" in line for line in lines)  # the member's own next slot is beside the point
    day = replace(POOL, period=Period.DAY)
    assert "left today; it resets at 00:00 UTC (<t:" in quota_lines(quota(pool=day))[0]


def test_each_refusal_says_why_with_the_numbers_and_that_nothing_was_charged() -> None:
    assert refusal_message(quota(), Refusal.OVER_LIMIT).startswith("You have reached your video limit")
    empty = refusal_message(quota(pool=replace(POOL, used=100)), Refusal.POOL_EMPTY)
    assert empty.startswith("This channel's team budget is used up for now.")
    assert "**0** of **100**" in empty
    assert refusal_message(quota(active=2), Refusal.TOO_MANY_ACTIVE).startswith("You already have 2 videos")
    blocked = refusal_message(quota(blocked=True, block_reason="spam"), Refusal.BLOCKED)
    assert "blocked you from starting videos: spam" in blocked
    for refusal in Refusal:
        assert refusal_message(quota(), refusal).endswith("Nothing was charged.")


def test_the_card_shows_the_budget_or_the_members_quota() -> None:
    in_team = dict(render_card(JOB, CardContext(allowance=quota(pool=POOL).allowance)).fields)
    assert in_team["Team budget"] == "37 of 100 videos left this month; resets on 1 December (UTC)"
    assert "Your quota" not in in_team
    own = dict(render_card(JOB, CardContext(allowance=quota(used=0, granted=1).allowance)).fields)
    assert own["Your quota"] == "2 of 2 videos left"


def test_cards_of_the_team_channel_states_say_who_and_why() -> None:
    waiting = render_card(replace(JOB, status=JobStatus.AWAITING_APPROVAL, needs_approval=True))
    assert "Waiting for a moderator" in dict(waiting.fields)["Status"]
    assert waiting.actions == ("approve", "reject", "cancel", "details")
    rejected = replace(
        JOB, status=JobStatus.CANCELLED, failure_kind=FailureKind.REJECTED, last_error="wrong *logo*", reviewed_by=9
    )
    assert "Rejected by a moderator — reason: wrong \\*logo\\*." in dict(render_card(rejected).fields)["Status"]
    assert "A moderator rejected it (reason: wrong \\*logo\\*.)" in failure_message(rejected)
    expired = replace(JOB, status=JobStatus.EXPIRED, needs_approval=True, failure_kind=FailureKind.TIMEOUT)
    assert "Not approved in time" in dict(render_card(expired).fields)["Status"]
    assert "No moderator approved it in time" in failure_message(expired)
    removed = replace(JOB, status=JobStatus.REMOVED, removed_by=JOB.user_id)
    assert "removed by the member who asked for it" in dict(render_card(removed).fields)["Status"]
    assert "removed by moderator <@9>" in dict(render_card(replace(removed, removed_by=9)).fields)["Status"]
    assert render_card(removed).actions == ("details",)
    assert video_controls(JOB) == Controls(JOB.id, ("delete", "details"))


def test_details_tell_how_the_video_was_made_and_what_it_cost() -> None:
    job = replace(
        JOB,
        status=JobStatus.DELIVERED,
        needs_approval=True,
        reviewed_by=9,
        reviewed_at=100.0,
        submitted_at=110.0,
        provider_finished_at=200.0,
        finished_at=210.0,
        credits_used=1_120_000.0,
        pool_id=4,
    )
    card = details_card(job)
    fields = dict(card.fields)
    assert card.title == "Details of video #7"
    assert card.description == "> a fox"
    assert fields["Options"] == "5 s · 16:9 · model `m`"
    assert fields["Images"] == "1. ref1.png (1024×768, 49 KiB)"
    assert fields["Requested by"] == "<@3>, charged to the team budget of <#2>"
    assert fields["Approval"] == "approved by <@9> <t:100:f>"
    assert fields["Timings"] == (
        "requested: <t:0:f>\napproved: <t:100:f>\ngenerating: <t:110:f>\ngenerated: <t:200:f>\ndelivered: <t:210:f>"
    )
    assert fields["Credits used"] == "1,120,000 credits (as the video service reported them)"
    assert dict(details_card(JOB).fields)["Credits used"] == "none yet: nothing was generated"
    assert dict(details_card(JOB).fields)["Approval"] == "not needed in this channel"
    free = replace(JOB, free=True, retry_of=6)
    assert dict(details_card(free).fields)["Requested by"] == "<@3>, charged to nothing: a free retry of job #6"


def test_a_mod_log_entry_offers_approve_and_reject_while_the_video_waits() -> None:
    waiting = job_entry(replace(JOB, status=JobStatus.AWAITING_APPROVAL))
    assert waiting.actions == ("approve", "reject", "block")
    assert "Approve lets this video be made" in waiting.footer
    assert job_entry(JOB).actions == ("block", "cancel")
    assert job_entry(replace(JOB, status=JobStatus.REMOVED)).actions == ("block",)

"""The words about a job that appear in more than one place are written once: the short status label used by
`/jobs` and the mod-log, for every state a job can be in."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.services.modlog import job_entry
from bot.services.presenter import status_label
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


def test_characters_and_style_appear_by_name_on_the_card_the_thread_and_the_mod_log() -> None:
    from bot.domain.cast import CastMember
    from bot.services.presenter import cast_note, render_card

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

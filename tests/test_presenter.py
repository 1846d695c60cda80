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

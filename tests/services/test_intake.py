"""`Intake` on a real store: what a member's request turns into (a charged job, or a refusal that charges
nothing), the numbers on the card, and the card's bookkeeping until the poller takes over."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.domain.clock import FakeClock
from bot.domain.jobs import FailureKind, JobStatus
from bot.domain.pools import Period
from bot.domain.quotas import Allowance, Refusal
from bot.services.intake import Intake, Invalid, QuotaPolicy
from bot.services.quota_words import BLOCKED_WORDS_PROBLEM
from bot.storage import Refused, Reserved, Store
from tests.fakes import CHANNEL, GUILD, USER, attachments, video_request

MOD = 99
OTHER_CHANNEL = CHANNEL + 1


async def accepted(intake: Intake, **fields: object) -> Reserved:
    outcome = await intake.start(video_request(**fields))  # type: ignore[arg-type]
    assert isinstance(outcome, Reserved), outcome
    return outcome


async def used(intake: Intake, user_id: int = USER) -> int:
    return (await intake.quota(GUILD, user_id, ())).used


async def test_a_valid_request_becomes_a_charged_queued_job_with_its_images(intake: Intake, store: Store) -> None:
    reserved = await accepted(intake, role_ids=(5, 6))
    job = reserved.job
    assert job.status is JobStatus.QUEUED
    assert (job.guild_id, job.channel_id, job.user_id) == (GUILD, CHANNEL, USER)
    assert [r.filename for r in job.references] == ["ref1.png", "ref2.png"]
    assert [r.attachment_id for r in job.references] == [700, 701]
    assert job.role_ids == (5, 6)
    assert job.model == "klingai/video-o1-reference-to-video"
    assert reserved.quota.used == 1
    assert await used(intake) == 1
    assert await store.jobs.get(job.id) == job


async def test_bad_input_is_refused_with_every_problem_and_charges_nothing(intake: Intake, store: Store) -> None:
    gif = attachments(1, filename="a.gif", content_type="image/gif", width=100, height=100)
    outcome = await intake.start(video_request(images=gif, prompt="   ", duration=7))
    assert isinstance(outcome, Invalid)
    text = "\n".join(outcome.problems).lower()
    assert "prompt" in text
    assert "image 1" in text
    assert "duration" in text
    assert len(outcome.problems) == 3  # the prompt, the image type and the duration: all at once
    assert await used(intake) == 0
    assert await store.jobs.list_for_user(GUILD, USER) == []


async def test_a_paused_server_or_a_closed_channel_refuses_before_charging(intake: Intake, store: Store) -> None:
    await store.guilds.update(GUILD, actor_id=MOD, paused=True)
    paused = await intake.start(video_request())
    assert isinstance(paused, Invalid)
    assert "paused" in paused.problems[0]

    await store.guilds.update(GUILD, actor_id=MOD, paused=False)
    await store.guilds.allow_channel(GUILD, OTHER_CHANNEL, actor_id=MOD)
    closed = await intake.start(video_request())
    assert isinstance(closed, Invalid)
    assert f"<#{OTHER_CHANNEL}>" in closed.problems[0]
    assert await used(intake) == 0
    await accepted(intake, channel_id=OTHER_CHANNEL)


async def test_over_the_limit_or_the_active_limit_is_refused_with_the_quota(intake: Intake) -> None:
    await accepted(intake)
    await accepted(intake)
    too_many = await intake.start(video_request())
    assert isinstance(too_many, Refused)
    assert too_many.refusal is Refusal.TOO_MANY_ACTIVE  # max_active is 2 in the fixture
    assert too_many.quota.used == 2


async def test_start_from_reuses_the_images_and_a_free_retry_is_not_charged(intake: Intake) -> None:
    original = (await accepted(intake)).job
    fresh = tuple(replace(r, url=r.url + "?fresh") for r in original.references)
    remix = await intake.start_from(original, role_ids=(), references=fresh, prompt="new words", aspect_ratio="1:1")
    assert isinstance(remix, Reserved)
    assert (remix.job.prompt, remix.job.aspect_ratio, remix.job.duration) == ("new words", "1:1", 5)
    assert [r.url for r in remix.job.references] == [r.url for r in fresh]
    assert remix.quota.used == 2

    await intake.abandon(remix.job.id, "make room")  # back under the active limit
    retry = await intake.start_from(original, role_ids=(), references=fresh, free=True, retry_of=original.id)
    assert isinstance(retry, Reserved)
    assert retry.job.retry_of == original.id
    assert retry.quota.used == 1  # the first job only: the retry is free and the remix was refunded


async def test_the_card_shows_quota_place_in_line_and_an_eta_only_from_history(
    intake: Intake, store: Store, clock: FakeClock
) -> None:
    first = await accepted(intake)
    second = await accepted(intake, user_id=USER + 1)
    context = await intake.card_context(second.job, quota=second.quota)
    assert context.allowance == Allowance(used=1, total=5)
    assert context.queue_position == 2
    assert context.eta is None  # no history: no made-up ETA

    # One job of the same model and duration took 120 s at the provider: the next is expected 120 s from now.
    done = await store.jobs.update_fields(first.job.id, submitted_at=clock() - 200, provider_finished_at=clock() - 80)
    assert done.id == first.job.id
    context = await intake.card_context(second.job)
    assert context.allowance is None  # no quota given: no quota line
    assert context.eta == clock() + 120


async def test_cards_reuse_the_typical_time_for_a_while_instead_of_reading_history_for_every_edit(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr("bot.services.intake.time.monotonic", lambda: now[0])
    policy = QuotaPolicy(default_limit=5, window_seconds=86_400, max_active=2)
    intake = Intake(store, model="m", policy=policy, clock=clock, card_quota_fresh=10.0)
    first = await accepted(intake)
    second = await accepted(intake, user_id=USER + 1)
    assert (await intake.card_context(second.job)).eta is None
    await store.jobs.update_fields(first.job.id, submitted_at=clock() - 200, provider_finished_at=clock() - 80)
    now[0] += 9.9
    assert (await intake.card_context(second.job)).eta is None  # read 9.9 s ago: shown again
    now[0] += 0.1
    assert (await intake.card_context(second.job)).eta == clock() + 120  # 10 s on: history read again


async def test_the_owners_card_context_reads_their_limit_with_the_roles_stored_with_the_job(
    intake: Intake, store: Store
) -> None:
    await store.quotas.set_role_limit(GUILD, 42, 9, actor_id=MOD)
    job = (await accepted(intake, role_ids=(42,))).job
    context = await intake.owner_card_context(job)
    assert (context.allowance.remaining, context.allowance.total) == (8, 9)  # type: ignore[union-attr]


async def test_the_card_is_recorded_with_its_thread_to_start_and_an_unseen_job_is_abandoned_and_refunded(
    intake: Intake, store: Store
) -> None:
    job = (await accepted(intake)).job
    job = await intake.card_posted(job.id, 555)
    assert (job.status_message_id, job.thread_id) == (555, None)
    assert job.thread_pending  # the poller's thread step starts it on the card

    abandoned = await intake.abandon(job.id, "the reply could not be sent")
    assert abandoned is not None
    assert abandoned.status is JobStatus.FAILED
    assert abandoned.failure_kind is FailureKind.INTERNAL
    assert await used(intake) == 0


async def test_a_job_the_poller_already_took_is_not_abandoned(intake: Intake, store: Store) -> None:
    job = (await accepted(intake)).job
    await store.jobs.transition(job.id, JobStatus.QUEUED, JobStatus.SUBMITTING)
    assert await intake.abandon(job.id, "too late") is None
    current = await store.jobs.get(job.id)
    assert current is not None
    assert current.status is JobStatus.SUBMITTING
    assert await used(intake) == 1


async def test_recent_jobs_are_the_members_own_on_this_server_newest_first(intake: Intake, store: Store) -> None:
    first = (await accepted(intake)).job
    second = (await accepted(intake)).job
    await accepted(intake, user_id=USER + 1)
    await accepted(intake, guild_id=GUILD + 1)
    assert [j.id for j in await intake.recent_jobs(GUILD, USER)] == [second.id, first.id]
    assert [j.id for j in await intake.recent_jobs(GUILD, USER, limit=1)] == [second.id]


async def test_a_blocked_word_refuses_the_prompt_without_naming_it_and_charges_nothing(
    intake: Intake, store: Store
) -> None:
    await store.teams.add_word(GUILD, "lava lamp", actor_id=MOD)
    refused = await intake.start(video_request(prompt="image 1 next to a LAVA\u200b-lamp"))
    assert isinstance(refused, Invalid)
    assert refused.problems == [BLOCKED_WORDS_PROBLEM]
    assert "lava" not in BLOCKED_WORDS_PROBLEM.lower()
    assert await used(intake) == 0
    assert await intake.blocked_word(GUILD, "a lava lamp") == "lava lamp"
    assert await intake.blocked_word(GUILD + 1, "a lava lamp") is None  # another server's list
    # Every way to start a job is checked: a Remix with a new prompt too.
    done = await accepted(intake, prompt="image 1 on a table")
    remix = await intake.start_from(
        done.job, role_ids=(), references=done.job.references, prompt="image 1 beside a lava lamp"
    )
    assert isinstance(remix, Invalid)
    assert await used(intake) == 1


async def test_a_job_in_an_approvals_channel_waits_for_the_policys_timeout(store: Store, clock: FakeClock) -> None:
    policy = QuotaPolicy(default_limit=5, window_seconds=86_400, max_active=2, approval_timeout=90.0)
    intake = Intake(store, model="m", policy=policy, clock=clock)
    await store.teams.set_approvals(GUILD, CHANNEL, True, actor_id=MOD)
    reserved = await accepted(intake)
    assert (reserved.job.status, reserved.job.next_poll_at) == (JobStatus.AWAITING_APPROVAL, clock() + 90.0)
    context = await intake.owner_card_context(reserved.job)
    assert context.allowance == Allowance(used=1, total=5)


async def test_the_quota_in_a_budget_channel_is_the_budget(intake: Intake, store: Store) -> None:
    await store.teams.set_pool(GUILD, CHANNEL, 10, Period.MONTH, actor_id=MOD)
    reserved = await accepted(intake)
    assert reserved.quota.allowance.pool is not None
    assert (reserved.quota.allowance.used, reserved.quota.allowance.total) == (1, 10)
    card = await intake.owner_card_context(reserved.job)
    assert card.allowance is not None
    assert card.allowance.pool is not None
    assert (await intake.quota(GUILD, USER, (), channel_id=OTHER_CHANNEL)).allowance == Allowance(used=0, total=5)


async def test_a_job_waiting_for_approval_whose_card_was_never_seen_is_abandoned_and_refunded(
    intake: Intake, store: Store
) -> None:
    await store.teams.set_approvals(GUILD, CHANNEL, True, actor_id=MOD)
    reserved = await accepted(intake)
    abandoned = await intake.abandon(reserved.job.id, "the reply to /video could not be sent")
    assert abandoned is not None
    assert abandoned.status is JobStatus.FAILED
    assert await used(intake) == 0

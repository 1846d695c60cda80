"""`CardControls` on a real store, without Discord: who may press Cancel, Retry, Remix and the aspect switch,
what each does to the job and the quota, and how Cancel races the poller."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from bot.domain.cast import CastMember, Character
from bot.domain.jobs import FailureKind, Job, JobStatus
from bot.domain.styles import StyleChoice
from bot.services.card_controls import Actor, CancelOutcome, CardControls, Denied, RemoveOutcome, retry_is_free
from bot.services.characters import CharacterLibrary
from bot.services.intake import Intake, Invalid
from bot.services.media import MediaForbidden, MediaGone, MediaProblem, MediaUnavailable, Unavailable
from bot.services.quota_words import unavailable_message
from bot.storage import Refused, Reserved, Store
from tests.fakes import CHANNEL, GUILD, USER, FakeMedia, video_request

OWNER = Actor(USER)
STRANGER = Actor(USER + 1)
MODERATOR = Actor(USER + 2, is_moderator=True)

# The path each state is reached by (a compare-and-set one step at a time, as the poller does it).
PATH = {
    JobStatus.SUBMITTING: [JobStatus.SUBMITTING],
    JobStatus.GENERATING: [JobStatus.SUBMITTING, JobStatus.GENERATING],
    JobStatus.DOWNLOADING: [JobStatus.SUBMITTING, JobStatus.GENERATING, JobStatus.DOWNLOADING],
    JobStatus.DELIVERED: [
        JobStatus.SUBMITTING,
        JobStatus.GENERATING,
        JobStatus.DOWNLOADING,
        JobStatus.DELIVERING,
        JobStatus.DELIVERED,
    ],
}


class Sleeps:
    """Stands in for `asyncio.sleep`: counts the waits and runs `action` (the poller moving on) at the first."""

    def __init__(self) -> None:
        self.count = 0
        self.action: Callable[[], Awaitable[object]] | None = None

    async def __call__(self, seconds: float) -> None:
        self.count += 1
        if self.count == 1 and self.action is not None:
            await self.action()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def controls(store: Store, intake: Intake, sleeps: Sleeps) -> CardControls:
    return CardControls(store, intake, submit_wait=0.5, sleep=sleeps)


async def new_job(intake: Intake, user_id: int = USER) -> Job:
    outcome = await intake.start(video_request(user_id=user_id))
    assert isinstance(outcome, Reserved), outcome
    return outcome.job


async def move(store: Store, job: Job, to: JobStatus, **fields: object) -> Job:
    current = job
    for status in PATH.get(to, [] if to is JobStatus.QUEUED else [to]):
        moved = await store.jobs.transition(current.id, current.status, status, **fields)  # type: ignore[arg-type]
        assert moved is not None
        current = moved
    return current


async def used(intake: Intake) -> int:
    return (await intake.quota(GUILD, USER, ())).used


@pytest.fixture
def media() -> FakeMedia:
    return FakeMedia()


# ---------------------------------------------------------------------- Cancel


async def test_the_owner_cancels_a_queued_job_and_gets_the_unit_back(controls: CardControls, intake: Intake) -> None:
    job = await new_job(intake)
    result = await controls.cancel(GUILD, job.id, OWNER)
    assert result.outcome is CancelOutcome.CANCELLED
    assert result.job is not None
    assert result.job.status is JobStatus.CANCELLED
    assert result.job.failure_kind is FailureKind.CANCELLED
    assert result.job.last_error == "cancelled by the member"
    assert await used(intake) == 0


async def test_a_moderator_may_cancel_someone_elses_job_a_stranger_may_not(
    controls: CardControls, intake: Intake, store: Store
) -> None:
    job = await move(store, await new_job(intake), JobStatus.GENERATING)
    refused = await controls.cancel(GUILD, job.id, STRANGER)
    assert refused.outcome is CancelOutcome.NOT_ALLOWED
    assert (await controls.job_for(GUILD, job.id)).status is JobStatus.GENERATING  # type: ignore[union-attr]

    done = await controls.cancel(GUILD, job.id, MODERATOR)
    assert done.outcome is CancelOutcome.CANCELLED
    assert done.job is not None
    assert done.job.last_error == "cancelled by a moderator"
    assert await used(intake) == 0


async def test_a_job_of_another_server_is_not_found(controls: CardControls, intake: Intake) -> None:
    job = await new_job(intake)
    assert (await controls.cancel(GUILD + 1, job.id, MODERATOR)).outcome is CancelOutcome.NOT_FOUND
    assert (await controls.cancel(GUILD, job.id + 100, OWNER)).outcome is CancelOutcome.NOT_FOUND
    assert await controls.job_for(GUILD + 1, job.id) is None


@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        (JobStatus.DOWNLOADING, CancelOutcome.TOO_LATE),
        (JobStatus.DELIVERED, CancelOutcome.TOO_LATE),
        (JobStatus.FAILED, CancelOutcome.ALREADY_ENDED),
        (JobStatus.EXPIRED, CancelOutcome.ALREADY_ENDED),
    ],
)
async def test_once_the_video_exists_or_the_job_ended_nothing_changes(
    controls: CardControls, intake: Intake, store: Store, state: JobStatus, outcome: CancelOutcome
) -> None:
    job = await move(store, await new_job(intake), state)
    before = await used(intake)
    result = await controls.cancel(GUILD, job.id, OWNER)
    assert result.outcome is outcome
    assert (await controls.job_for(GUILD, job.id)).status is state  # type: ignore[union-attr]
    assert await used(intake) == before


async def test_cancel_during_submit_waits_for_the_provider_id_then_cancels(
    controls: CardControls, intake: Intake, store: Store, sleeps: Sleeps
) -> None:
    job = await move(store, await new_job(intake), JobStatus.SUBMITTING)

    async def poller_gets_the_id() -> None:
        await store.jobs.transition(job.id, JobStatus.SUBMITTING, JobStatus.GENERATING, generation_id="gen-1")

    sleeps.action = poller_gets_the_id
    result = await controls.cancel(GUILD, job.id, OWNER)
    assert sleeps.count == 1
    assert result.outcome is CancelOutcome.CANCELLED
    assert result.job is not None
    assert result.job.generation_id == "gen-1"
    assert await used(intake) == 0


async def test_cancel_during_a_submit_that_never_ends_gives_up_without_touching_the_job(
    controls: CardControls, intake: Intake, store: Store, sleeps: Sleeps
) -> None:
    job = await move(store, await new_job(intake), JobStatus.SUBMITTING)
    result = await controls.cancel(GUILD, job.id, OWNER)
    assert result.outcome is CancelOutcome.TOO_LATE
    assert sleeps.count == 5  # 0.5 s in steps of 0.1 s
    assert (await controls.job_for(GUILD, job.id)).status is JobStatus.SUBMITTING  # type: ignore[union-attr]


# ---------------------------------------------------------------------- Retry, Remix, aspect switch


async def test_retry_after_a_provider_failure_is_free_and_happens_once(
    media: FakeMedia, controls: CardControls, intake: Intake, store: Store
) -> None:
    job = await move(store, await new_job(intake), JobStatus.FAILED, failure_kind=FailureKind.PROVIDER_UNAVAILABLE)
    assert await used(intake) == 0
    assert retry_is_free(job)

    first = await controls.again(GUILD, job.id, OWNER, role_ids=(), media=media, retry=True)
    assert isinstance(first, Reserved)
    assert first.job.retry_of == job.id
    assert all(r.url.endswith("&fresh=1") for r in first.job.references)  # the refreshed URLs are sent
    assert await used(intake) == 0  # free

    again = await controls.again(GUILD, job.id, OWNER, role_ids=(), media=media, retry=True)
    assert isinstance(again, Denied)
    assert f"already retried as job #{first.job.id}" in again.reason


async def test_a_double_click_on_retry_starts_one_job(
    media: FakeMedia, controls: CardControls, intake: Intake, store: Store
) -> None:
    job = await move(store, await new_job(intake), JobStatus.EXPIRED)
    results = await asyncio.gather(
        *(controls.again(GUILD, job.id, OWNER, role_ids=(), media=media, retry=True) for _ in range(3))
    )
    assert sum(isinstance(r, Reserved) for r in results) == 1
    assert sum(isinstance(r, Denied) for r in results) == 2
    assert len(await store.jobs.retries_of(job.id)) == 1


async def test_retry_after_the_members_own_refused_prompt_is_charged(
    media: FakeMedia, controls: CardControls, intake: Intake, store: Store
) -> None:
    job = await move(store, await new_job(intake), JobStatus.FAILED, failure_kind=FailureKind.REJECTED_CONTENT)
    assert not retry_is_free(job)
    retry = await controls.again(GUILD, job.id, OWNER, role_ids=(), media=media, retry=True)
    assert isinstance(retry, Reserved)
    assert await used(intake) == 1


async def test_remix_and_aspect_switch_start_a_charged_job_from_a_delivered_one(
    media: FakeMedia, controls: CardControls, intake: Intake, store: Store
) -> None:
    job = await move(store, await new_job(intake), JobStatus.DELIVERED)
    remix = await controls.again(GUILD, job.id, MODERATOR, role_ids=(), media=media, prompt="at night")
    assert isinstance(remix, Reserved)
    assert (remix.job.user_id, remix.job.prompt) == (USER, "at night")  # started for the owner, by a moderator
    shape = await controls.again(GUILD, job.id, OWNER, role_ids=(), media=media, aspect_ratio="9:16")
    assert isinstance(shape, Reserved)
    assert shape.job.aspect_ratio == "9:16"
    assert await used(intake) == 3  # the delivered job, the remix and the new shape

    # Buttons are charged and checked like /video: a third job at once is over the active limit (2).
    third = await controls.again(GUILD, job.id, OWNER, role_ids=(), media=media, aspect_ratio="1:1")
    assert isinstance(third, Refused)
    assert await used(intake) == 3


@pytest.mark.parametrize(
    ("state", "retry", "words"),
    [
        (JobStatus.GENERATING, True, "has not failed"),
        (JobStatus.DELIVERED, True, "has not failed"),
        (JobStatus.QUEUED, False, "no video yet"),
        (JobStatus.FAILED, False, "no video yet"),
    ],
)
async def test_buttons_that_do_not_fit_the_state_are_denied(
    media: FakeMedia, controls: CardControls, intake: Intake, store: Store, state: JobStatus, retry: bool, words: str
) -> None:
    job = await move(store, await new_job(intake), state)
    outcome = await controls.again(GUILD, job.id, OWNER, role_ids=(), media=media, retry=retry)
    assert isinstance(outcome, Denied)
    assert words in outcome.reason
    assert len(await store.jobs.list_for_user(GUILD, USER)) == 1


async def test_nobody_but_the_owner_or_a_moderator_and_no_other_server_may_start_again(
    media: FakeMedia, controls: CardControls, intake: Intake, store: Store
) -> None:
    job = await move(store, await new_job(intake), JobStatus.DELIVERED)
    stranger = await controls.again(GUILD, job.id, STRANGER, role_ids=(), media=media)
    assert isinstance(stranger, Denied)
    assert "Only the member who started this video" in stranger.reason
    elsewhere = await controls.again(GUILD + 1, job.id, MODERATOR, role_ids=(), media=media)
    assert isinstance(elsewhere, Denied)
    assert "not on this server" in elsewhere.reason
    assert len(await store.jobs.list_for_user(GUILD, USER)) == 1


@pytest.mark.parametrize(
    ("problem", "gone"), [(MediaGone("404"), True), (MediaUnavailable("503"), False), (MediaForbidden(7), False)]
)
async def test_images_discord_cannot_give_end_it_without_charging_and_say_whether_they_are_gone(
    media: FakeMedia, controls: CardControls, intake: Intake, store: Store, problem: MediaProblem, gone: bool
) -> None:
    job = await move(store, await new_job(intake), JobStatus.DELIVERED)
    media.failing = problem
    outcome = await controls.again(GUILD, job.id, OWNER, role_ids=(), media=media)
    assert isinstance(outcome, Unavailable)
    assert outcome.gone is gone
    assert outcome.character is None
    assert await used(intake) == 1
    assert len(await store.jobs.list_for_user(GUILD, USER)) == 1


async def test_a_deleted_upload_is_gone_but_a_slow_discord_is_only_a_try_again(
    media: FakeMedia, controls: CardControls, intake: Intake, store: Store
) -> None:
    job = await move(store, await new_job(intake), JobStatus.DELIVERED)
    media.deleted_uploads.add(job.references[1].url)
    gone = await controls.again(GUILD, job.id, OWNER, role_ids=(), media=media)
    assert isinstance(gone, Unavailable)
    assert gone.gone
    assert "no longer has the reference images" in unavailable_message(gone)
    media.deleted_uploads.clear()
    media.failing = MediaUnavailable("timeout")
    later = await controls.again(GUILD, job.id, OWNER, role_ids=(), media=media)
    assert isinstance(later, Unavailable)
    assert "try again in a moment" in unavailable_message(later)
    assert "no longer has" not in unavailable_message(later)
    assert await used(intake) == 1


def cast_member(sheet: int, name: str) -> CastMember:
    return CastMember(
        name, CHANNEL, sheet, (sheet + 1, sheet + 2), f"https://old/{sheet}/f", (f"https://old/{sheet}/a",)
    )


async def test_remix_retry_and_shape_keep_the_characters_with_fresh_urls_and_the_style(
    media: FakeMedia, controls: CardControls, intake: Intake, store: Store
) -> None:
    cast = (cast_member(100, "Fox"), cast_member(200, "Robot"))
    media.add_sheet(100, (101, 102))
    media.add_sheet(200, (201, 202))
    start = await intake.start(video_request(characters=cast, style=StyleChoice("Noir", "black and white, grainy")))
    assert isinstance(start, Reserved)
    job = await move(store, start.job, JobStatus.DELIVERED)

    remix = await controls.again(GUILD, job.id, OWNER, role_ids=(), media=media, prompt="@Fox meets @Robot")
    shape = await controls.again(GUILD, job.id, OWNER, role_ids=(), media=media, aspect_ratio="1:1")
    for outcome in (remix, shape):
        assert isinstance(outcome, Reserved)
        assert [c.name for c in outcome.job.characters] == ["Fox", "Robot"]
        assert [c.message_id for c in outcome.job.characters] == [100, 200]
        assert all(c.frontal_url.startswith("https://cdn.example.test/") for c in outcome.job.characters)
        assert (outcome.job.style_name, outcome.job.style_text) == ("Noir", "black and white, grainy")
    assert isinstance(remix, Reserved)
    assert remix.job.prompt == "@Fox meets @Robot"

    failed = await move(store, shape.job, JobStatus.FAILED, failure_kind=FailureKind.PROVIDER_UNAVAILABLE)  # type: ignore[union-attr]
    retry = await controls.again(GUILD, failed.id, OWNER, role_ids=(), media=media, retry=True)
    assert isinstance(retry, Reserved)
    assert [c.name for c in retry.job.characters] == ["Fox", "Robot"]
    assert retry.job.style_name == "Noir"


async def test_a_character_whose_sheet_is_gone_stops_a_remix_and_leaves_the_library(
    media: FakeMedia, controls: CardControls, intake: Intake, store: Store
) -> None:
    library = CharacterLibrary(store)
    fox = Character(300, GUILD, USER, "Fox", False, CHANNEL, (301, 302), 0.0)
    assert isinstance(await store.characters.create(fox, personal_limit=25, shared_limit=100), Character)
    start = await intake.start(video_request(characters=(CastMember.of(fox).with_urls(["u1", "u2"]),)))
    assert isinstance(start, Reserved)
    job = await move(store, start.job, JobStatus.DELIVERED)

    media.sheet_failures[300] = MediaUnavailable("503")  # Discord is slow: nothing changes
    slow = await controls.again(GUILD, job.id, OWNER, role_ids=(), media=media)
    assert isinstance(slow, Unavailable)
    assert slow.character == "Fox"
    assert not slow.gone
    assert await library.find(GUILD, USER, "Fox") is not None

    media.sheet_failures.clear()  # the sheet (message 300) was deleted: gone
    gone = await controls.again(GUILD, job.id, OWNER, role_ids=(), media=media)
    assert isinstance(gone, Unavailable)
    assert gone.gone
    assert "**Fox** is gone" in unavailable_message(gone)
    assert await library.find(GUILD, USER, "Fox") is None
    assert await used(intake) == 1


async def test_a_remix_prompt_breaking_the_rules_is_invalid_and_charges_nothing(
    media: FakeMedia, controls: CardControls, intake: Intake, store: Store
) -> None:
    job = await move(store, await new_job(intake), JobStatus.DELIVERED)
    outcome = await controls.again(GUILD, job.id, OWNER, role_ids=(), media=media, prompt="x" * 2501)
    assert isinstance(outcome, Invalid)
    assert await used(intake) == 1


# ---------------------------------------------------------------------- Delete (takedown) and approvals


async def test_the_requester_or_a_moderator_removes_a_delivered_video_and_it_stays_charged(
    controls: CardControls, intake: Intake, store: Store
) -> None:
    job = await move(store, await new_job(intake), JobStatus.DELIVERED, delivered_message_id=77)
    assert (await controls.remove(GUILD, job.id, STRANGER)).outcome is RemoveOutcome.NOT_ALLOWED
    assert (await controls.remove(GUILD + 1, job.id, MODERATOR)).outcome is RemoveOutcome.NOT_FOUND
    result = await controls.remove(GUILD, job.id, MODERATOR)
    assert result.outcome is RemoveOutcome.REMOVED
    assert result.job is not None
    assert (result.job.status, result.job.removed_by) == (JobStatus.REMOVED, MODERATOR.user_id)
    assert result.job.removed_at == store.clock()
    assert result.job.delivered_message_id == 77  # what the Discord side deletes
    again = await controls.remove(GUILD, job.id, OWNER)  # e.g. the message could not be deleted the first time
    assert again.outcome is RemoveOutcome.ALREADY_REMOVED
    assert again.job is not None
    assert again.job.removed_by == MODERATOR.user_id  # the first remover stays on record
    assert await used(intake) == 1  # the video was made: not refunded


async def test_only_a_delivered_video_can_be_removed(controls: CardControls, intake: Intake, store: Store) -> None:
    for state in (JobStatus.QUEUED, JobStatus.GENERATING):
        job = await move(store, await new_job(intake), state)
        assert (await controls.remove(GUILD, job.id, OWNER)).outcome is RemoveOutcome.NOT_DELIVERED
        await store.jobs.transition(job.id, state, JobStatus.CANCELLED)
    owners = await move(store, await new_job(intake), JobStatus.DELIVERED)
    assert (await controls.remove(GUILD, owners.id, OWNER)).outcome is RemoveOutcome.REMOVED


async def test_the_member_may_cancel_a_video_that_waits_for_approval(
    controls: CardControls, intake: Intake, store: Store
) -> None:
    await store.teams.set_approvals(GUILD, CHANNEL, True, actor_id=MODERATOR.user_id)
    job = await new_job(intake)
    assert job.status is JobStatus.AWAITING_APPROVAL
    result = await controls.cancel(GUILD, job.id, OWNER)
    assert result.outcome is CancelOutcome.CANCELLED
    assert await used(intake) == 0

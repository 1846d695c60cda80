"""`ModeratorActions` on a real store, without Discord: who is a moderator, what each action changes in a
member's allowance (and the audit ledger), server switches, the report's window, and the mod-log bookkeeping —
always within the guild the action came from."""

from __future__ import annotations

import pytest

from bot.domain.clock import FakeClock
from bot.domain.jobs import FailureKind, JobStatus
from bot.domain.pools import Period
from bot.services import moderator_actions
from bot.services.intake import Intake, Invalid
from bot.services.moderator_actions import ModeratorActions, ReviewOutcome
from bot.storage import LedgerKind, Reserved, Store
from tests.fakes import CHANNEL, GUILD, USER, video_request

MOD = 99
OTHER_GUILD = GUILD + 1
HELPERS = 555  # a role
NO_ROLES: tuple[int, ...] = ()


@pytest.fixture
def actions(store: Store, intake: Intake, clock: FakeClock) -> ModeratorActions:
    return ModeratorActions(store, intake, default_limit=5, clock=clock)


async def test_manage_server_or_the_configured_role_of_this_guild_makes_a_moderator(actions: ModeratorActions) -> None:
    assert await actions.is_moderator(GUILD, NO_ROLES, manage_guild=True)
    assert not await actions.is_moderator(GUILD, (HELPERS,), manage_guild=False)

    await actions.set_moderator_role(OTHER_GUILD, HELPERS, actor_id=MOD)
    assert not await actions.is_moderator(GUILD, (HELPERS,), manage_guild=False)  # another guild's setting
    await actions.set_moderator_role(GUILD, HELPERS, actor_id=MOD)
    assert await actions.is_moderator(GUILD, (1, HELPERS), manage_guild=False)
    assert not await actions.is_moderator(GUILD, (1,), manage_guild=False)
    await actions.set_moderator_role(GUILD, None, actor_id=MOD)
    assert not await actions.is_moderator(GUILD, (HELPERS,), manage_guild=False)


async def test_each_allowance_change_returns_the_allowance_now_and_is_audited(
    actions: ModeratorActions, store: Store
) -> None:
    status = await actions.set_member_limit(GUILD, USER, 2, NO_ROLES, actor_id=MOD, reason="trial")
    assert (status.limit, status.remaining) == (2, 2)
    status = await actions.grant(GUILD, USER, 3, NO_ROLES, actor_id=MOD, reason=None)
    assert (status.limit, status.granted, status.remaining) == (2, 3, 5)
    status = await actions.set_member_limit(GUILD, USER, None, NO_ROLES, actor_id=MOD, reason=None)
    assert status.limit == 5  # the bot's default again

    await actions.block(GUILD, USER, actor_id=MOD, reason="spam")
    status, rows = await actions.member_record(GUILD, USER, NO_ROLES)
    assert status.blocked
    assert status.block_reason == "spam"
    assert [r.kind for r in rows] == [
        LedgerKind.MEMBER_LIMIT,
        LedgerKind.GRANT,
        LedgerKind.MEMBER_LIMIT,
        LedgerKind.BLOCK,
    ]  # oldest first
    assert {r.actor_id for r in rows} == {MOD}
    assert rows[0].reason == "trial"
    status = await actions.unblock(GUILD, USER, NO_ROLES, actor_id=MOD, reason=None)
    assert not status.blocked

    _, latest = await actions.member_record(GUILD, USER, NO_ROLES, rows=2)
    assert [r.kind for r in latest] == [LedgerKind.BLOCK, LedgerKind.UNBLOCK]  # the newest two
    _, elsewhere = await actions.member_record(OTHER_GUILD, USER, NO_ROLES)
    assert elsewhere == []


async def test_reset_forgets_earlier_videos_and_role_limits_count_with_the_roles_given(
    actions: ModeratorActions, intake: Intake
) -> None:
    reserved = await intake.start(video_request(role_ids=(HELPERS,)))
    assert isinstance(reserved, Reserved)
    await actions.set_role_limit(GUILD, HELPERS, 9, actor_id=MOD, reason=None)
    status = await actions.reset(GUILD, USER, (HELPERS,), actor_id=MOD, reason="new sprint")
    assert (status.used, status.limit) == (0, 9)
    status = await actions.reset(GUILD, USER, NO_ROLES, actor_id=MOD, reason=None)
    assert status.limit == 5  # the same member read without the role


async def test_the_server_default_falls_back_to_the_bots(actions: ModeratorActions, intake: Intake) -> None:
    assert await actions.set_guild_default(GUILD, 1, actor_id=MOD, reason=None) == 1
    assert (await intake.quota(GUILD, USER, NO_ROLES)).limit == 1
    assert (await intake.quota(OTHER_GUILD, USER, NO_ROLES)).limit == 5
    assert await actions.set_guild_default(GUILD, None, actor_id=MOD, reason=None) == 5
    assert (await intake.quota(GUILD, USER, NO_ROLES)).limit == 5


async def test_pause_and_channels_close_the_server_to_new_videos(actions: ModeratorActions, intake: Intake) -> None:
    await actions.set_paused(GUILD, True, actor_id=MOD, reason="budget")
    assert "paused" in (await intake.closed(GUILD, CHANNEL) or "")
    assert await intake.closed(OTHER_GUILD, CHANNEL) is None
    await actions.set_paused(GUILD, False, actor_id=MOD, reason=None)

    config = await actions.allow_channel(GUILD, CHANNEL + 1, actor_id=MOD, reason=None)
    assert config.allowed_channel_ids == frozenset({CHANNEL + 1})
    refused = await intake.start(video_request())
    assert isinstance(refused, Invalid)
    config = await actions.disallow_channel(GUILD, CHANNEL + 1, actor_id=MOD, reason=None)
    assert config.allowed_channel_ids == frozenset()
    assert (await actions.settings(GUILD)).allowed_channel_ids == frozenset()
    assert await intake.closed(GUILD, CHANNEL) is None


async def test_block_from_a_job_blocks_its_owner_only_in_the_jobs_guild(
    actions: ModeratorActions, intake: Intake
) -> None:
    reserved = await intake.start(video_request())
    assert isinstance(reserved, Reserved)
    job = reserved.job
    assert await actions.block_from_job(OTHER_GUILD, job.id, actor_id=MOD) is None
    assert not (await intake.quota(GUILD, USER, NO_ROLES)).blocked

    entry = await actions.block_from_job(GUILD, job.id, actor_id=MOD)
    assert entry is not None
    assert (entry.guild_id, entry.user_id, entry.actor_id, entry.kind) == (GUILD, USER, MOD, LedgerKind.BLOCK)
    assert entry.reason == f"blocked from the mod-log entry of job #{job.id}"
    status = await intake.quota(GUILD, USER, NO_ROLES)
    assert status.blocked
    assert status.block_reason == entry.reason


async def test_the_report_covers_the_last_days_ending_now(
    actions: ModeratorActions, intake: Intake, store: Store, clock: FakeClock
) -> None:
    await actions.set_price(GUILD, 0.5, actor_id=MOD)
    old = await intake.start(video_request())
    assert isinstance(old, Reserved)
    await store.jobs.transition(old.job.id, JobStatus.QUEUED, JobStatus.CANCELLED)
    clock.advance(3 * 86_400)
    recent = await intake.start(video_request())
    assert isinstance(recent, Reserved)
    clock.advance(1)  # the window ends now, exclusive

    report = await actions.report(GUILD, days=2)
    assert (report.since, report.until) == (clock() - 2 * 86_400, clock())
    assert report.price_per_second == 0.5
    assert [(row.user_id, row.started) for row in report.rows] == [(USER, 1)]  # the old job is outside
    assert (await actions.report(GUILD, days=7)).totals.started == 2
    assert (await actions.report(OTHER_GUILD, days=7)).rows == ()


async def test_the_mod_log_channel_and_each_jobs_entry_are_remembered(actions: ModeratorActions) -> None:
    assert await actions.mod_log_channel(GUILD) is None
    await actions.set_mod_log(GUILD, 777, actor_id=MOD)
    assert await actions.mod_log_channel(GUILD) == 777
    assert await actions.mod_log_channel(OTHER_GUILD) is None

    assert await actions.log_entry_of(1) is None
    await actions.remember_log_entry(1, 777, 123456789012345678)
    assert await actions.log_entry_of(1) == (777, 123456789012345678)
    await actions.set_mod_log(GUILD, None, actor_id=MOD)
    assert await actions.mod_log_channel(GUILD) is None


# ---------------------------------------------------------------------- team channels


async def test_approve_and_reject_act_only_on_a_waiting_job_of_this_server(
    actions: ModeratorActions, intake: Intake, store: Store, clock: FakeClock
) -> None:
    await actions.set_approvals(GUILD, CHANNEL, True, actor_id=MOD)
    first = await intake.start(video_request())
    second = await intake.start(video_request())
    assert isinstance(first, Reserved)
    assert isinstance(second, Reserved)
    assert first.job.status is JobStatus.AWAITING_APPROVAL

    assert (await actions.approve(OTHER_GUILD, first.job.id, actor_id=MOD)).outcome is ReviewOutcome.NOT_FOUND
    clock.advance(30)
    approved = await actions.approve(GUILD, first.job.id, actor_id=MOD)
    assert approved.outcome is ReviewOutcome.DONE
    assert approved.job is not None
    assert (approved.job.status, approved.job.reviewed_by, approved.job.next_poll_at) == (
        JobStatus.QUEUED,
        MOD,
        clock(),
    )
    again = await actions.reject(GUILD, first.job.id, actor_id=MOD, reason="too late")
    assert again.outcome is ReviewOutcome.NOT_WAITING
    assert again.job is not None
    assert again.job.status is JobStatus.QUEUED  # the first decision stands

    rejected = await actions.reject(GUILD, second.job.id, actor_id=MOD, reason="not on brief")
    assert rejected.outcome is ReviewOutcome.DONE
    assert rejected.job is not None
    assert (rejected.job.status, rejected.job.failure_kind) == (JobStatus.CANCELLED, FailureKind.REJECTED)
    assert rejected.job.last_error == "not on brief"
    assert (await intake.quota(GUILD, USER, NO_ROLES)).used == 1  # the rejected one came back
    assert (await actions.approve(GUILD, second.job.id, actor_id=MOD)).outcome is ReviewOutcome.NOT_WAITING

    await actions.set_approvals(GUILD, CHANNEL, False, actor_id=MOD)
    later = await intake.start(video_request())
    assert isinstance(later, Reserved)
    assert later.job.status is JobStatus.QUEUED


async def test_a_budget_is_set_changed_and_removed_and_the_member_sees_it_in_that_channel(
    actions: ModeratorActions, intake: Intake
) -> None:
    pool = await actions.set_budget(GUILD, CHANNEL, 2, Period.WEEK, actor_id=MOD)
    assert pool is not None
    assert (pool.videos, pool.period, pool.remaining) == (2, Period.WEEK, 2)
    assert isinstance(await intake.start(video_request()), Reserved)
    here = await intake.quota(GUILD, USER, NO_ROLES, channel_id=CHANNEL)
    assert here.allowance.pool is not None
    assert (here.allowance.used, here.allowance.total, here.own.used) == (1, 2, 0)
    changed = await actions.set_budget(GUILD, CHANNEL, 1, Period.MONTH, actor_id=MOD)
    assert changed is not None
    assert changed.remaining == 0  # this period's draw still counts against the smaller pool
    assert await actions.set_budget(GUILD, CHANNEL, None, Period.MONTH, actor_id=MOD) is None
    assert (await intake.quota(GUILD, USER, NO_ROLES, channel_id=CHANNEL)).pool is None


async def test_blocked_words_are_added_once_removed_in_any_spelling_and_capped(
    actions: ModeratorActions, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = await actions.block_word(GUILD, "Spoiler", actor_id=MOD)
    assert added is not None
    assert await actions.block_word(GUILD, "SPOILER", actor_id=MOD) is None
    assert [w.text for w in await actions.blocked_words(GUILD)] == ["Spoiler"]
    assert await actions.blocked_words(OTHER_GUILD) == []
    assert await actions.unblock_word(GUILD, "spoil\u200ber", actor_id=MOD) is not None
    assert await actions.unblock_word(GUILD, "spoiler", actor_id=MOD) is None

    monkeypatch.setattr(moderator_actions, "MAX_BLOCKED_WORDS", 2)
    await actions.block_word(GUILD, "one", actor_id=MOD)
    await actions.block_word(GUILD, "two", actor_id=MOD)
    with pytest.raises(ValueError, match="already blocks 2 words"):
        await actions.block_word(GUILD, "three", actor_id=MOD)

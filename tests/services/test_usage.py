"""The usage report from a real store: numbers traceable to the ledger, cost from the guild's price, CSV that a
spreadsheet reads safely, and nothing from another guild."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

from bot.domain.clock import FakeClock
from bot.domain.jobs import FailureKind, JobStatus, Reference
from bot.domain.pools import Period
from bot.services.usage import budgets_csv, build_report, report_csv, summary_lines
from bot.storage import LedgerKind, NewJob, QuotaRequest, Reserved, Store

GUILD, OTHER = 1, 2
ALICE, BOB, MOD = 10, 11, 99
REQUEST = QuotaRequest(window_seconds=86400, fallback_limit=10, max_active=10)


def new_job(guild: int, user: int, duration: int = 5) -> NewJob:
    ref = Reference(
        url="https://cdn.example/a.png", filename="a.png", content_type="image/png", size=1, width=400, height=400
    )
    return NewJob(
        guild_id=guild,
        channel_id=5,
        user_id=user,
        prompt="p",
        duration=duration,
        aspect_ratio="16:9",
        model="m",
        references=(ref,),
    )


async def run(
    store: Store,
    guild: int,
    user: int,
    end: JobStatus,
    duration: int = 5,
    *,
    channel: int = 5,
    credits: float | None = None,
) -> int:
    reserved = await store.jobs.create_reserved(replace(new_job(guild, user, duration), channel_id=channel), REQUEST)
    assert isinstance(reserved, Reserved)
    job_id = reserved.job.id
    if end is JobStatus.DELIVERED:
        for old, new in [
            (JobStatus.QUEUED, JobStatus.SUBMITTING),
            (JobStatus.SUBMITTING, JobStatus.GENERATING),
            (JobStatus.GENERATING, JobStatus.DOWNLOADING),
            (JobStatus.DOWNLOADING, JobStatus.DELIVERING),
            (JobStatus.DELIVERING, JobStatus.DELIVERED),
        ]:
            fields = {"credits_used": credits} if new is JobStatus.DOWNLOADING else {}
            assert await store.jobs.transition(job_id, old, new, **fields) is not None
    else:
        assert await store.jobs.transition(job_id, JobStatus.QUEUED, end, failure_kind=FailureKind.INTERNAL)
    return job_id


async def test_report_counts_cost_and_isolation(store: Store, clock: FakeClock) -> None:
    await run(store, GUILD, ALICE, JobStatus.DELIVERED, duration=10)
    await run(store, GUILD, ALICE, JobStatus.DELIVERED, duration=5)
    await run(store, GUILD, BOB, JobStatus.FAILED)
    await run(store, GUILD, BOB, JobStatus.CANCELLED)
    await run(store, OTHER, ALICE, JobStatus.DELIVERED, duration=10)  # another guild: never in this report
    await store.guilds.update(GUILD, actor_id=MOD, price_per_second=0.25)

    report = await build_report(store, GUILD, clock.now - 3600, clock.now + 1)
    by_user = {row.user_id: row for row in report.rows}
    assert set(by_user) == {ALICE, BOB}
    assert (by_user[ALICE].delivered, by_user[ALICE].seconds) == (2, 15)
    assert (by_user[BOB].failed, by_user[BOB].cancelled, by_user[BOB].refunds) == (1, 1, 2)
    assert report.total_cost == 15 * 0.25
    # Every charge or refund in the report is a ledger row of this guild.
    ledger = await store.quotas.ledger(GUILD, kinds=[LedgerKind.RESERVE, LedgerKind.REFUND])
    assert report.totals.charged == sum(1 for r in ledger if r.kind == "reserve")
    assert report.totals.refunds == sum(1 for r in ledger if r.kind == "refund")

    lines = summary_lines(report, lambda uid: f"<@{uid}>")
    assert "**4** videos started by **2** member(s)" in lines[0]
    assert "$3.75" in lines[1]

    rows = list(csv.DictReader(io.StringIO(report_csv(report, lambda uid: "=HYPERLINK()").decode())))
    assert [r["user_id"] for r in rows] == [str(ALICE), str(BOB), "TOTAL"]
    assert rows[0]["estimated_cost_usd"] == "3.75"
    assert rows[0]["member"] == "'=HYPERLINK()"  # not run as a formula by a spreadsheet
    assert rows[2]["seconds_delivered"] == "15"


async def test_report_without_price_or_activity(store: Store, clock: FakeClock) -> None:
    report = await build_report(store, GUILD, 0, clock.now + 1_000_000)
    lines = summary_lines(report, str)
    assert "no price set" in lines[1]
    assert "Nobody started a video" in lines[-1]
    rows = list(csv.DictReader(io.StringIO(report_csv(report).decode())))
    assert rows[-1]["user_id"] == "TOTAL"
    assert rows[-1]["estimated_cost_usd"] == ""
    assert rows[-1]["credits_used"] == "0"


async def test_credits_per_member_per_budget_and_in_total_with_removed_videos_still_counted(
    store: Store, clock: FakeClock
) -> None:
    team = 77
    await store.teams.set_pool(GUILD, team, 10, Period.WEEK, actor_id=MOD)
    await run(store, GUILD, ALICE, JobStatus.DELIVERED, credits=1_000_000)
    shared = await run(store, GUILD, BOB, JobStatus.DELIVERED, duration=10, channel=team, credits=2_000_000.5)
    await run(store, GUILD, ALICE, JobStatus.FAILED, channel=team)
    await run(store, GUILD, BOB, JobStatus.DELIVERED, channel=team)  # the provider reported no credits
    assert await store.jobs.transition(shared, JobStatus.DELIVERED, JobStatus.REMOVED, removed_by=MOD)
    await store.guilds.update(GUILD, actor_id=MOD, price_per_second=0.1)

    report = await build_report(store, GUILD, clock.now - 3600, clock.now + 1)
    by_user = {row.user_id: row for row in report.rows}
    assert by_user[ALICE].credits == 1_000_000
    assert by_user[BOB].credits == 2_000_000.5
    assert (by_user[BOB].delivered, by_user[BOB].removed, by_user[BOB].seconds) == (2, 1, 15)  # removed was made
    assert report.totals.credits == 3_000_000.5
    [pool] = report.pools
    assert (pool.channel_id, pool.videos, pool.period) == (team, 10, Period.WEEK)
    assert (pool.draws, pool.refunds, pool.net_used, pool.delivered, pool.seconds) == (3, 1, 2, 2, 15)
    assert pool.credits == 2_000_000.5

    lines = summary_lines(report, str)
    assert "**3,000,000 credits**" in lines[1]
    assert any(line.startswith(f"<#{team}> (10 per week) — 3 drawn, 1 refunded") for line in lines)
    members = {r["user_id"]: r for r in csv.DictReader(io.StringIO(report_csv(report).decode()))}
    assert members["TOTAL"]["credits_used"] == "3000000.50"
    assert members[str(BOB)]["removed"] == "1"
    [budget] = list(csv.DictReader(io.StringIO(budgets_csv(report, lambda c: "=team").decode())))
    assert budget == {
        "channel_id": str(team),
        "channel": "'=team",
        "budget_videos": "10",
        "period": "week",
        "drawn": "3",
        "refunds": "1",
        "net_drawn": "2",
        "delivered": "2",
        "seconds_delivered": "15",
        "estimated_cost_usd": "1.50",
        "credits_used": "2000000.50",
    }

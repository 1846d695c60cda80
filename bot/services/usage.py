"""The moderators' usage report: who spent what in a period, and what it cost — as lines for an embed and a CSV
per member (and one per channel budget, when budgets were used).

Built only from the store's `UsageRow`s and `PoolUsageRow`s, which come from the ledger and the jobs table, so
every number in the report can be traced to ledger rows. Two costs stand side by side: the estimate (seconds of
delivered video times the price per second a moderator configured with `/videomod price`; without a price there
is none) and the credits the provider reported for each job (`meta.usage.credits_used`, when it gave them).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.storage import PoolUsageRow, Store, UsageRow

__all__ = ["UsageReport", "budgets_csv", "build_report", "report_csv", "summary_lines"]

CSV_COLUMNS = (
    "user_id",
    "member",
    "videos_started",
    "charged",
    "refunds",
    "net_charged",
    "delivered",
    "failed",
    "cancelled",
    "seconds_delivered",
    "estimated_cost_usd",
    "credits_used",
    "removed",
)
BUDGET_CSV_COLUMNS = (
    "channel_id",
    "channel",
    "budget_videos",
    "period",
    "drawn",
    "refunds",
    "net_drawn",
    "delivered",
    "seconds_delivered",
    "estimated_cost_usd",
    "credits_used",
)


@dataclass(frozen=True)
class UsageReport:
    """One guild's usage in [since, until)."""

    guild_id: int
    since: float
    until: float
    rows: tuple[UsageRow, ...]
    price_per_second: float | None
    pools: tuple[PoolUsageRow, ...] = ()
    """Every channel budget drawn from (or whose jobs ended) in the period; their jobs are in `rows` too."""

    def cost(self, row: UsageRow | PoolUsageRow) -> float | None:
        return None if self.price_per_second is None else row.seconds * self.price_per_second

    @property
    def totals(self) -> UsageRow:
        """Every member added up (user_id 0)."""
        sums = {f: sum(getattr(r, f) for r in self.rows) for f in UsageRow.COUNTS}
        return UsageRow(user_id=0, **sums)

    @property
    def total_cost(self) -> float | None:
        return self.cost(self.totals)


async def build_report(store: Store, guild_id: int, since: float, until: float) -> UsageReport:
    """Read the report for one guild; no other guild's rows can appear (the store filters by guild)."""
    rows = await store.quotas.usage(guild_id, since, until)
    pools = await store.teams.pool_usage(guild_id, since, until)
    config = await store.guilds.get(guild_id)
    return UsageReport(
        guild_id=guild_id,
        since=since,
        until=until,
        rows=tuple(rows),
        price_per_second=config.price_per_second,
        pools=tuple(pools),
    )


def _money(value: float | None) -> str:
    return "—" if value is None else f"${value:,.2f}"


def _credits(value: float) -> str:
    return f"{value:,.0f} credits"


def _csv_number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.2f}"


def summary_lines(report: UsageReport, name_of: Callable[[int], str], *, top: int = 15) -> list[str]:
    """Lines for the embed: totals first, then the busiest members (the CSV has everyone)."""
    totals = report.totals
    lines = [
        f"**{totals.started}** videos started by **{len(report.rows)}** member(s): "
        f"**{totals.delivered}** delivered ({totals.seconds} s), {totals.failed} failed, "
        f"{totals.cancelled} cancelled, {totals.refunds} refunded.",
        f"Estimated cost: **{_money(report.total_cost)}**"
        + (
            f" at ${report.price_per_second:g} per second of video."
            if report.price_per_second is not None
            else " (no price set: `/videomod price`)."
        )
        + f" Credits used, as the video service reported them: **{_credits(totals.credits)}**.",
    ]
    if not report.rows:
        lines.append("Nobody started a video in this period.")
        return lines
    lines.append("")
    for row in report.rows[:top]:
        cost = report.cost(row)
        lines.append(
            f"{name_of(row.user_id)} — {row.started} started, {row.delivered} delivered ({row.seconds} s), "
            f"{row.failed} failed, {row.refunds} refunded"
            + (f", {_money(cost)}" if cost is not None else "")
            + f", {_credits(row.credits)}"
        )
    if len(report.rows) > top:
        lines.append(f"…and {len(report.rows) - top} more in the CSV.")
    if report.pools:
        lines += ["", "Team budgets:"]
        for pool in report.pools[:top]:
            size = f"{pool.videos} per {pool.period.value}" if pool.videos is not None else "removed since"
            cost = report.cost(pool)
            lines.append(
                f"<#{pool.channel_id}> ({size}) — {pool.draws} drawn, {pool.refunds} refunded, "
                f"{pool.delivered} delivered ({pool.seconds} s)"
                + (f", {_money(cost)}" if cost is not None else "")
                + f", {_credits(pool.credits)}"
            )
    return lines


def report_csv(report: UsageReport, names: Callable[[int], str] | None = None) -> bytes:
    """The whole report as CSV (UTF-8, header row, one row per member, a TOTAL row last)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    rows: Sequence[UsageRow] = report.rows
    for row in [*rows, report.totals]:
        is_total = row.user_id == 0
        cost = report.cost(row)
        writer.writerow(
            (
                "TOTAL" if is_total else row.user_id,
                "" if is_total or names is None else _csv_safe(names(row.user_id)),
                row.started,
                row.charged,
                row.refunds,
                row.net_used,
                row.delivered,
                row.failed,
                row.cancelled,
                row.seconds,
                "" if cost is None else f"{cost:.2f}",
                _csv_number(row.credits),
                row.removed,
            )
        )
    return buffer.getvalue().encode()


def budgets_csv(report: UsageReport, channel_names: Callable[[int], str] | None = None) -> bytes:
    """One row per channel budget (UTF-8, header row). Its jobs are also in the members' CSV: do not add both."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(BUDGET_CSV_COLUMNS)
    for pool in report.pools:
        cost = report.cost(pool)
        writer.writerow(
            (
                pool.channel_id,
                "" if channel_names is None else _csv_safe(channel_names(pool.channel_id)),
                "" if pool.videos is None else pool.videos,
                pool.period.value,
                pool.draws,
                pool.refunds,
                pool.net_used,
                pool.delivered,
                pool.seconds,
                "" if cost is None else f"{cost:.2f}",
                _csv_number(pool.credits),
            )
        )
    return buffer.getvalue().encode()


def _csv_safe(text: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas; a member's display name must never do that."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text

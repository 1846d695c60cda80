"""The moderators' usage report: who spent what in a period, and what it cost — as lines for an embed and a CSV.

Built only from the store's `UsageRow`s, which come from the ledger and the jobs table, so every number in the
report can be traced to ledger rows. The cost is an estimate: seconds of delivered video times the price per
second a moderator configured (`/videomod price`); without a price there is no cost column value.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.storage import Store, UsageRow

__all__ = ["UsageReport", "build_report", "report_csv", "summary_lines"]

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
)


@dataclass(frozen=True)
class UsageReport:
    """One guild's usage in [since, until)."""

    guild_id: int
    since: float
    until: float
    rows: tuple[UsageRow, ...]
    price_per_second: float | None

    def cost(self, row: UsageRow) -> float | None:
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
    config = await store.guilds.get(guild_id)
    return UsageReport(
        guild_id=guild_id, since=since, until=until, rows=tuple(rows), price_per_second=config.price_per_second
    )


def _money(value: float | None) -> str:
    return "—" if value is None else f"${value:,.2f}"


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
        ),
    ]
    if not report.rows:
        lines.append("Nobody started a video in this period.")
        return lines
    lines.append("")
    for row in report.rows[:top]:
        cost = report.cost(row)
        lines.append(
            f"{name_of(row.user_id)} — {row.started} started, {row.delivered} delivered ({row.seconds} s), "
            f"{row.failed} failed, {row.refunds} refunded" + (f", {_money(cost)}" if cost is not None else "")
        )
    if len(report.rows) > top:
        lines.append(f"…and {len(report.rows) - top} more in the CSV.")
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
            )
        )
    return buffer.getvalue().encode()


def _csv_safe(text: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas; a member's display name must never do that."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text

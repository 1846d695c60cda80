"""Quota settings and the quota ledger.

The ledger is the truth: `used` is computed from its `reserve` rows, never kept as a counter, so every number a
member or moderator sees can be explained row by row. Member, role and guild settings tables hold only the
current values; each change to them is also a ledger row with the actor and the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from bot.domain.clock import Clock
from bot.domain.jobs import ACTIVE
from bot.domain.quotas import QuotaStatus, next_free_at, resolve_limit
from bot.storage.database import Connection, Database
from bot.storage.ledger import append_ledger, ledger_entry
from bot.storage.models import LedgerEntry, LedgerKind, QuotaRequest, UsageRow
from bot.storage.teams import pool_status, team_channel

__all__ = ["ACTIVE_SQL", "QuotaRepository", "compute_status", "quota_snapshot", "refund_job"]

ACTIVE_SQL = ", ".join(f"'{s.value}'" for s in sorted(ACTIVE))
"""The ACTIVE statuses as an SQL list, for `status IN (...)`."""


async def compute_status(
    conn: Connection, guild_id: int, user_id: int, request: QuotaRequest, now: float
) -> QuotaStatus:
    """The member's quota at `now`, read inside the caller's transaction."""
    status, _ = await quota_snapshot(conn, guild_id, user_id, request, now)
    return status


def after_reservation(status: QuotaStatus, use_times: list[float], now: float, *, free: bool) -> QuotaStatus:
    """The quota once one more job started at `now` (charged unless `free`): what `compute_status` would read
    right after the insert, worked out without reading it all again."""
    if free:
        return replace(status, active=status.active + 1)
    if status.pool is not None:  # the channel's budget paid: the member's own quota is untouched
        return replace(status, active=status.active + 1, pool=replace(status.pool, used=status.pool.used + 1))
    uses = [*use_times, now]
    return replace(
        status,
        used=status.used + 1,
        active=status.active + 1,
        next_free_at=next_free_at(uses, status.own.total, status.window_seconds),
    )


async def quota_snapshot(
    conn: Connection, guild_id: int, user_id: int, request: QuotaRequest, now: float
) -> tuple[QuotaStatus, list[float]]:
    """The member's quota at `now` and the start times of the uses it counts, inside the caller's transaction.

    A use counts while `at + window > now`: exactly the comparison `next_free_at` makes (`at + window`), so a
    slot frees at the very instant the card promised, with no float rounding between the two.
    """
    member = await conn.fetch_one(
        "SELECT limit_override, blocked, block_reason, last_reset_id FROM member_quota"
        " WHERE guild_id = ? AND user_id = ?",
        (guild_id, user_id),
    )
    role_limits: list[int] = []
    if request.role_ids:
        marks = ", ".join("?" for _ in request.role_ids)
        rows = await conn.fetch_all(
            f"SELECT videos FROM role_quota WHERE guild_id = ? AND role_id IN ({marks})",
            (guild_id, *request.role_ids),
        )
        role_limits = [int(r["videos"]) for r in rows]
    guild = await conn.fetch_one("SELECT default_limit FROM guild_settings WHERE guild_id = ?", (guild_id,))
    limit = resolve_limit(
        member_override=member["limit_override"] if member else None,
        role_limits=role_limits,
        guild_default=guild["default_limit"] if guild else None,
        fallback=request.fallback_limit,
    )
    reset_id = int(member["last_reset_id"]) if member else 0
    window = request.window_seconds
    uses = await conn.fetch_all(
        "SELECT l.at FROM quota_ledger AS l"
        " WHERE l.guild_id = ? AND l.user_id = ? AND l.kind = 'reserve' AND l.pool_id IS NULL"
        " AND l.id > ? AND l.at + ? > ?"
        " AND NOT EXISTS (SELECT 1 FROM quota_ledger AS r WHERE r.kind = 'refund' AND r.job_id = l.job_id)",
        (guild_id, user_id, reset_id, window, now),
    )
    use_times = [float(r["at"]) for r in uses]
    granted_row = await conn.fetch_one(
        "SELECT COALESCE(SUM(amount), 0) AS granted FROM quota_ledger"
        " WHERE guild_id = ? AND user_id = ? AND kind = 'grant' AND id > ? AND at + ? > ?",
        (guild_id, user_id, reset_id, window, now),
    )
    granted = int(granted_row["granted"]) if granted_row else 0
    active_row = await conn.fetch_one(
        f"SELECT COUNT(*) AS n FROM jobs WHERE guild_id = ? AND user_id = ? AND status IN ({ACTIVE_SQL})",
        (guild_id, user_id),
    )
    status = QuotaStatus(
        used=len(use_times),
        limit=limit,
        window_seconds=window,
        active=int(active_row["n"]) if active_row else 0,
        max_active=request.max_active,
        blocked=bool(member["blocked"]) if member else False,
        block_reason=member["block_reason"] if member else None,
        granted=granted,
    )
    return replace(status, next_free_at=next_free_at(use_times, status.own.total, window)), use_times


async def refund_job(conn: Connection, job_id: int, *, reason: str, now: float, actor_id: int | None = None) -> bool:
    """Give back the unit a job was charged, inside the caller's transaction. False if there is nothing to give
    back: the job was free, never charged, or already refunded."""
    reserve = await conn.fetch_one(
        "SELECT guild_id, user_id, pool_id FROM quota_ledger WHERE job_id = ? AND kind = 'reserve'", (job_id,)
    )
    if reserve is None:
        return False
    # The partial unique index allows one refund row per job. ON CONFLICT turns a second one (another process
    # refunding the same job at the same moment) into "nothing inserted" instead of an error, which on
    # PostgreSQL would also abort the caller's whole transaction.
    row = await conn.fetch_one(
        "INSERT INTO quota_ledger (guild_id, user_id, kind, amount, job_id, actor_id, reason, at, pool_id)"
        " VALUES (?, ?, 'refund', 1, ?, ?, ?, ?, ?)"
        " ON CONFLICT (job_id) WHERE kind = 'refund' DO NOTHING RETURNING id",
        # Back to where the charge came from: the pool named on the reserve row, whatever became of it since.
        (reserve["guild_id"], reserve["user_id"], job_id, actor_id, reason, now, reserve["pool_id"]),
    )
    return row is not None


class QuotaRepository:
    """`store.quotas`: quota status, refunds, moderator settings and the audit ledger."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def status(
        self, guild_id: int, user_id: int, request: QuotaRequest, *, channel_id: int | None = None
    ) -> QuotaStatus:
        """The member's quota now; with `channel_id`, also that channel's budget when it has one (videos started
        there draw from the budget instead)."""
        async with self._db.read() as conn:
            now = self._clock()
            status = await compute_status(conn, guild_id, user_id, request, now)
            if channel_id is None:
                return status
            team = await team_channel(conn, guild_id, channel_id)
            if team.pool is None:
                return status
            return replace(status, pool=await pool_status(conn, team.pool, now))

    async def refund(self, job_id: int, reason: str, *, actor_id: int | None = None) -> bool:
        """Refund a job's unit now. True if refunded by this call; a second call returns False and writes nothing."""
        async with self._db.write() as conn:
            return await refund_job(conn, job_id, reason=reason, now=self._clock(), actor_id=actor_id)

    async def set_member_limit(
        self, guild_id: int, user_id: int, videos: int | None, *, actor_id: int, reason: str | None = None
    ) -> LedgerEntry:
        """Override the member's limit per window (None clears the override: roles and defaults apply again)."""
        _check_videos(videos)
        return await self._change_member(
            guild_id, user_id, LedgerKind.MEMBER_LIMIT, actor_id, reason, amount=videos, limit_override=videos
        )

    async def _change_member(
        self,
        guild_id: int,
        user_id: int,
        kind: LedgerKind,
        actor_id: int,
        reason: str | None,
        *,
        amount: int | None = None,
        **member_fields: Any,
    ) -> LedgerEntry:
        """Update the member's quota row and write the ledger row that explains it, in one transaction."""
        async with self._db.write() as conn:
            now = self._clock()
            await _upsert_member(conn, guild_id, user_id, now, **member_fields)
            return await append_ledger(
                conn,
                guild_id=guild_id,
                user_id=user_id,
                kind=kind,
                amount=amount,
                actor_id=actor_id,
                reason=reason,
                at=now,
            )

    async def set_role_limit(
        self, guild_id: int, role_id: int, videos: int | None, *, actor_id: int, reason: str | None = None
    ) -> LedgerEntry:
        """Give a role its own limit (None removes it). A member with several such roles gets the highest."""
        _check_videos(videos)
        async with self._db.write() as conn:
            now = self._clock()
            if videos is None:
                await conn.execute("DELETE FROM role_quota WHERE guild_id = ? AND role_id = ?", (guild_id, role_id))
            else:
                await conn.execute(
                    "INSERT INTO role_quota (guild_id, role_id, videos, updated_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (guild_id, role_id) DO UPDATE SET videos = excluded.videos,"
                    " updated_at = excluded.updated_at",
                    (guild_id, role_id, videos, now),
                )
            return await append_ledger(
                conn,
                guild_id=guild_id,
                role_id=role_id,
                kind=LedgerKind.ROLE_LIMIT,
                amount=videos,
                actor_id=actor_id,
                reason=reason,
                at=now,
            )

    async def role_limits(self, guild_id: int) -> dict[int, int]:
        """Every role with its own limit in this guild."""
        async with self._db.read() as conn:
            rows = await conn.fetch_all("SELECT role_id, videos FROM role_quota WHERE guild_id = ?", (guild_id,))
        return {int(r["role_id"]): int(r["videos"]) for r in rows}

    async def set_guild_default(
        self, guild_id: int, videos: int | None, *, actor_id: int, reason: str | None = None
    ) -> LedgerEntry:
        """The guild's default limit (None falls back to QUOTA_DEFAULT_LIMIT)."""
        _check_videos(videos)
        async with self._db.write() as conn:
            now = self._clock()
            await conn.execute(
                "INSERT INTO guild_settings (guild_id, default_limit, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (guild_id) DO UPDATE SET default_limit = excluded.default_limit,"
                " updated_at = excluded.updated_at",
                (guild_id, videos, now),
            )
            return await append_ledger(
                conn,
                guild_id=guild_id,
                kind=LedgerKind.GUILD_DEFAULT,
                amount=videos,
                actor_id=actor_id,
                reason=reason,
                at=now,
            )

    async def reset(self, guild_id: int, user_id: int, *, actor_id: int, reason: str | None = None) -> LedgerEntry:
        """Start the member's window afresh: every use and grant recorded before now stops counting."""
        async with self._db.write() as conn:
            now = self._clock()
            entry = await append_ledger(
                conn,
                guild_id=guild_id,
                user_id=user_id,
                kind=LedgerKind.RESET,
                actor_id=actor_id,
                reason=reason,
                at=now,
            )
            # The ledger id, not the time, marks the reset: a use in the same clock tick before it is still cleared.
            await _upsert_member(conn, guild_id, user_id, now, last_reset_id=entry.id)
            return entry

    async def block(self, guild_id: int, user_id: int, *, actor_id: int, reason: str | None = None) -> LedgerEntry:
        """The member can start no job until unblocked; `reason` is shown to them."""
        return await self._change_member(
            guild_id, user_id, LedgerKind.BLOCK, actor_id, reason, blocked=1, block_reason=reason
        )

    async def unblock(self, guild_id: int, user_id: int, *, actor_id: int, reason: str | None = None) -> LedgerEntry:
        return await self._change_member(
            guild_id, user_id, LedgerKind.UNBLOCK, actor_id, reason, blocked=0, block_reason=None
        )

    async def grant(
        self, guild_id: int, user_id: int, videos: int, *, actor_id: int, reason: str | None = None
    ) -> LedgerEntry:
        """Extra videos on top of the limit, valid for one window from now (and until the next reset)."""
        if videos <= 0:
            raise ValueError("a grant must be at least one video")
        async with self._db.write() as conn:
            return await append_ledger(
                conn,
                guild_id=guild_id,
                user_id=user_id,
                kind=LedgerKind.GRANT,
                amount=videos,
                actor_id=actor_id,
                reason=reason,
                at=self._clock(),
            )

    async def ledger(
        self,
        guild_id: int,
        *,
        user_id: int | None = None,
        since: float | None = None,
        until: float | None = None,
        kinds: Iterable[LedgerKind] | None = None,
        limit: int | None = None,
    ) -> list[LedgerEntry]:
        """The guild's ledger rows, oldest first; `since` inclusive, `until` exclusive. `limit` keeps the newest."""
        where = ["guild_id = ?"]
        params: list[Any] = [guild_id]
        if user_id is not None:
            where.append("user_id = ?")
            params.append(user_id)
        if since is not None:
            where.append("at >= ?")
            params.append(since)
        if until is not None:
            where.append("at < ?")
            params.append(until)
        if kinds is not None:
            kind_values = [LedgerKind(k).value for k in kinds]
            if not kind_values:
                return []
            where.append(f"kind IN ({', '.join('?' for _ in kind_values)})")
            params.extend(kind_values)
        sql = f"SELECT * FROM quota_ledger WHERE {' AND '.join(where)} ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        async with self._db.read() as conn:
            rows = await conn.fetch_all(sql, params)
        return [ledger_entry(r) for r in reversed(rows)]

    async def usage(self, guild_id: int, since: float, until: float) -> list[UsageRow]:
        """Per member activity in [since, until), busiest (most seconds delivered) first."""
        async with self._db.read() as conn:
            ledger_rows = await conn.fetch_all(
                "SELECT user_id,"
                " SUM(CASE WHEN kind IN ('reserve', 'free') THEN 1 ELSE 0 END) AS started,"
                " SUM(CASE WHEN kind = 'reserve' THEN 1 ELSE 0 END) AS charged,"
                " SUM(CASE WHEN kind = 'refund' THEN 1 ELSE 0 END) AS refunds"
                " FROM quota_ledger WHERE guild_id = ? AND at >= ? AND at < ? AND user_id IS NOT NULL"
                " AND kind IN ('reserve', 'free', 'refund') GROUP BY user_id",
                (guild_id, since, until),
            )
            job_rows = await conn.fetch_all(
                "SELECT user_id,"
                " SUM(CASE WHEN status IN ('delivered', 'removed') THEN 1 ELSE 0 END) AS delivered,"
                " SUM(CASE WHEN status IN ('failed', 'expired') THEN 1 ELSE 0 END) AS failed,"
                " SUM(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END) AS cancelled,"
                " SUM(CASE WHEN status IN ('delivered', 'removed') THEN duration ELSE 0 END) AS seconds,"
                " SUM(CASE WHEN status = 'removed' THEN 1 ELSE 0 END) AS removed,"
                " COALESCE(SUM(credits_used), 0) AS credits"
                " FROM jobs WHERE guild_id = ? AND finished_at >= ? AND finished_at < ? GROUP BY user_id",
                (guild_id, since, until),
            )
        counts: dict[int, dict[str, Any]] = {}
        for row in ledger_rows:
            counts.setdefault(row["user_id"], {}).update(
                started=int(row["started"]), charged=int(row["charged"]), refunds=int(row["refunds"])
            )
        for row in job_rows:
            counts.setdefault(row["user_id"], {}).update(
                delivered=int(row["delivered"]),
                failed=int(row["failed"]),
                cancelled=int(row["cancelled"]),
                seconds=int(row["seconds"]),
                removed=int(row["removed"]),
                credits=float(row["credits"]),
            )
        result = [UsageRow(user_id=uid, **{f: c.get(f, 0) for f in UsageRow.COUNTS}) for uid, c in counts.items()]
        result.sort(key=lambda r: (-r.seconds, -r.started, r.user_id))
        return result


def _check_videos(videos: int | None) -> None:
    if videos is not None and videos < 0:
        raise ValueError("a limit cannot be negative")


_MEMBER_COLUMNS = frozenset({"limit_override", "blocked", "block_reason", "last_reset_id"})


async def _upsert_member(conn: Connection, guild_id: int, user_id: int, now: float, **values: Any) -> None:
    """Create the member's settings row if needed and set the given columns, leaving the others as they are."""
    unknown = set(values) - _MEMBER_COLUMNS
    if unknown:
        raise ValueError(f"unknown member_quota columns: {sorted(unknown)}")
    columns = list(values)
    await conn.execute(
        f"INSERT INTO member_quota (guild_id, user_id, updated_at, {', '.join(columns)})"
        f" VALUES (?, ?, ?, {', '.join('?' for _ in columns)})"
        f" ON CONFLICT (guild_id, user_id) DO UPDATE SET updated_at = excluded.updated_at,"
        f" {', '.join(f'{c} = excluded.{c}' for c in columns)}",
        (guild_id, user_id, now, *values.values()),
    )

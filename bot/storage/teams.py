"""Team channels: a channel's shared budget (pool), its approvals switch, and the guild's blocked words.

A budget's use is computed from the ledger like a member's quota: draws are `reserve` rows naming the pool, in the
current calendar period, without a `refund` row for the same job. So changing the budget's size keeps what this
period already used, and a refund returns the unit to the pool the job was charged to even if the budget was
changed or removed since (the job and its ledger rows keep the pool's id; the pool's row is never deleted).
Every change moderators make here is a `guild_setting` ledger row with the moderator and what changed.
"""

from __future__ import annotations

from typing import Any

from bot.domain.clock import Clock
from bot.domain.pools import Period, PoolStatus, period_bounds
from bot.domain.words import MAX_PHRASE_CHARS, phrase_key
from bot.storage.database import Connection, Database, Row
from bot.storage.ledger import append_ledger
from bot.storage.models import BlockedWord, ChannelPool, LedgerKind, PoolUsageRow, TeamChannel

__all__ = ["TeamRepository", "pool_status", "team_channel"]


def _pool(row: Row) -> ChannelPool:
    return ChannelPool(
        pool_id=int(row["id"]),
        guild_id=int(row["guild_id"]),
        channel_id=int(row["channel_id"]),
        videos=int(row["videos"]),
        period=Period(row["period"]),
    )


async def team_channel(conn: Connection, guild_id: int, channel_id: int) -> TeamChannel:
    """What moderators set up for the channel, read inside the caller's transaction (one statement: every quota
    reservation reads it, and each trip to the database costs more than the reading)."""
    row = await conn.fetch_one(
        "SELECT p.id, p.videos, p.period, a.channel_id AS approvals FROM (SELECT 1 AS one) AS x"
        " LEFT JOIN channel_pools AS p ON p.guild_id = ? AND p.channel_id = ? AND p.videos IS NOT NULL"
        " LEFT JOIN channel_approvals AS a ON a.guild_id = ? AND a.channel_id = ?",
        (guild_id, channel_id, guild_id, channel_id),
    )
    assert row is not None  # the one-row table always yields a row
    pool = None
    if row["id"] is not None:
        pool = ChannelPool(int(row["id"]), guild_id, channel_id, int(row["videos"]), Period(row["period"]))
    return TeamChannel(guild_id=guild_id, channel_id=channel_id, pool=pool, approvals=row["approvals"] is not None)


async def pool_status(conn: Connection, pool: ChannelPool, now: float) -> PoolStatus:
    """The budget at `now`, inside the caller's transaction: draws of this calendar period not refunded."""
    start, end = period_bounds(pool.period, now)
    row = await conn.fetch_one(
        "SELECT COUNT(*) AS n FROM quota_ledger AS l"
        " WHERE l.pool_id = ? AND l.kind = 'reserve' AND l.at >= ? AND l.at < ?"
        " AND NOT EXISTS (SELECT 1 FROM quota_ledger AS r WHERE r.kind = 'refund' AND r.job_id = l.job_id)",
        (pool.pool_id, start, end),
    )
    return PoolStatus(
        pool_id=pool.pool_id,
        channel_id=pool.channel_id,
        videos=pool.videos,
        period=pool.period,
        used=int(row["n"]) if row is not None else 0,
        resets_at=end,
    )


class TeamRepository:
    """`store.teams`."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    # ------------------------------------------------------------------ channels

    async def channel(self, guild_id: int, channel_id: int) -> TeamChannel:
        async with self._db.read() as conn:
            return await team_channel(conn, guild_id, channel_id)

    async def pool_status(self, guild_id: int, channel_id: int) -> PoolStatus | None:
        """The channel's budget now, or None if it has none."""
        async with self._db.read() as conn:
            team = await team_channel(conn, guild_id, channel_id)
            return await pool_status(conn, team.pool, self._clock()) if team.pool is not None else None

    async def set_pool(
        self, guild_id: int, channel_id: int, videos: int | None, period: Period, *, actor_id: int
    ) -> PoolStatus | None:
        """Give the channel a budget of `videos` per `period` (None removes it). Setting it again changes its size
        and period; what this period already used still counts. Returns the budget as it stands now."""
        if videos is not None and videos < 0:
            raise ValueError("a budget cannot be negative")
        async with self._db.write() as conn:
            now = self._clock()
            row = await conn.fetch_one(
                "INSERT INTO channel_pools (guild_id, channel_id, videos, period, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (guild_id, channel_id) DO UPDATE SET videos = excluded.videos,"
                " period = excluded.period, updated_at = excluded.updated_at RETURNING *",
                (guild_id, channel_id, videos, Period(period).value, now),
            )
            assert row is not None
            detail: dict[str, Any] = {"channel_id": channel_id, "budget": videos, "period": Period(period).value}
            await self._audit(conn, guild_id, actor_id, detail, now, pool_id=int(row["id"]))
            if videos is None:
                return None
            return await pool_status(conn, _pool(row), now)

    async def set_approvals(self, guild_id: int, channel_id: int, enabled: bool, *, actor_id: int) -> None:
        """Whether new videos in the channel wait for a moderator's approval."""
        async with self._db.write() as conn:
            now = self._clock()
            if enabled:
                await conn.execute(
                    "INSERT INTO channel_approvals (guild_id, channel_id, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (guild_id, channel_id) DO UPDATE SET updated_at = excluded.updated_at",
                    (guild_id, channel_id, now),
                )
            else:
                await conn.execute(
                    "DELETE FROM channel_approvals WHERE guild_id = ? AND channel_id = ?", (guild_id, channel_id)
                )
            await self._audit(conn, guild_id, actor_id, {"channel_id": channel_id, "approvals": enabled}, now)

    # ------------------------------------------------------------------ blocked words

    async def words(self, guild_id: int) -> list[BlockedWord]:
        """The guild's blocked words and phrases, alphabetically."""
        async with self._db.read() as conn:
            rows = await conn.fetch_all("SELECT * FROM blocked_words WHERE guild_id = ? ORDER BY phrase", (guild_id,))
        return [_word(r) for r in rows]

    async def add_word(self, guild_id: int, text: str, *, actor_id: int) -> BlockedWord | None:
        """Block a word or phrase; None if it (in any spelling) is blocked already. ValueError if it has no letters
        or digits, or is longer than MAX_PHRASE_CHARS."""
        key = _key(text)
        async with self._db.write() as conn:
            now = self._clock()
            row = await conn.fetch_one(
                "INSERT INTO blocked_words (guild_id, phrase, text, added_by, added_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (guild_id, phrase) DO NOTHING RETURNING *",
                (guild_id, key, text.strip(), actor_id, now),
            )
            if row is None:
                return None
            await self._audit(conn, guild_id, actor_id, {"blocked_word_added": text.strip()}, now)
        return _word(row)

    async def remove_word(self, guild_id: int, text: str, *, actor_id: int) -> BlockedWord | None:
        """Unblock a word or phrase (in any spelling); None if it was not blocked."""
        key = _key(text)
        async with self._db.write() as conn:
            row = await conn.fetch_one(
                "DELETE FROM blocked_words WHERE guild_id = ? AND phrase = ? RETURNING *", (guild_id, key)
            )
            if row is None:
                return None
            await self._audit(conn, guild_id, actor_id, {"blocked_word_removed": row["text"]}, self._clock())
        return _word(row)

    # ------------------------------------------------------------------ the usage report

    async def pool_usage(self, guild_id: int, since: float, until: float) -> list[PoolUsageRow]:
        """Every budget of the guild that was drawn from, or whose jobs finished, in [since, until)."""
        async with self._db.read() as conn:
            ledger = await conn.fetch_all(
                "SELECT pool_id, SUM(CASE WHEN kind = 'reserve' THEN 1 ELSE 0 END) AS draws,"
                " SUM(CASE WHEN kind = 'refund' THEN 1 ELSE 0 END) AS refunds FROM quota_ledger"
                " WHERE guild_id = ? AND pool_id IS NOT NULL AND kind IN ('reserve', 'refund') AND at >= ? AND at < ?"
                " GROUP BY pool_id",
                (guild_id, since, until),
            )
            jobs = await conn.fetch_all(
                "SELECT pool_id,"
                " SUM(CASE WHEN status IN ('delivered', 'removed') THEN 1 ELSE 0 END) AS delivered,"
                " SUM(CASE WHEN status IN ('delivered', 'removed') THEN duration ELSE 0 END) AS seconds,"
                " COALESCE(SUM(credits_used), 0) AS credits"
                " FROM jobs WHERE guild_id = ? AND pool_id IS NOT NULL AND finished_at >= ? AND finished_at < ?"
                " GROUP BY pool_id",
                (guild_id, since, until),
            )
            pools = await conn.fetch_all("SELECT * FROM channel_pools WHERE guild_id = ?", (guild_id,))
        counts: dict[int, dict[str, Any]] = {}
        for row in ledger:
            counts.setdefault(int(row["pool_id"]), {}).update(draws=int(row["draws"]), refunds=int(row["refunds"]))
        for row in jobs:
            counts.setdefault(int(row["pool_id"]), {}).update(
                delivered=int(row["delivered"]), seconds=int(row["seconds"]), credits=float(row["credits"])
            )
        by_id = {int(p["id"]): p for p in pools}
        result = [
            PoolUsageRow(
                pool_id=pool_id,
                channel_id=int(by_id[pool_id]["channel_id"]),
                videos=by_id[pool_id]["videos"],
                period=Period(by_id[pool_id]["period"]),
                draws=c.get("draws", 0),
                refunds=c.get("refunds", 0),
                delivered=c.get("delivered", 0),
                seconds=c.get("seconds", 0),
                credits=c.get("credits", 0.0),
            )
            for pool_id, c in counts.items()
        ]
        result.sort(key=lambda r: (-r.draws, r.channel_id))
        return result

    async def _audit(
        self, conn: Connection, guild_id: int, actor_id: int, detail: dict[str, Any], now: float, **extra: Any
    ) -> None:
        await append_ledger(
            conn, guild_id=guild_id, kind=LedgerKind.GUILD_SETTING, actor_id=actor_id, detail=detail, at=now, **extra
        )


def _key(text: str) -> str:
    if len(text.strip()) > MAX_PHRASE_CHARS:
        raise ValueError(f"a blocked word or phrase has at most {MAX_PHRASE_CHARS} characters")
    key = phrase_key(text)
    if not key:
        raise ValueError("a blocked word or phrase needs at least one letter or digit")
    return key


def _word(row: Row) -> BlockedWord:
    return BlockedWord(
        phrase=str(row["phrase"]),
        text=str(row["text"]),
        added_by=int(row["added_by"]),
        added_at=float(row["added_at"]),
    )

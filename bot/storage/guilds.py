"""Per-guild settings chosen by moderators: default limit, pause, mod-log channel, moderator role, price, channels."""

from __future__ import annotations

from typing import Any

from bot.domain.clock import Clock
from bot.storage.database import Database
from bot.storage.ledger import append_ledger
from bot.storage.models import GuildConfig, LedgerKind

__all__ = ["GUILD_FIELDS", "GuildRepository"]

GUILD_FIELDS = frozenset({"default_limit", "paused", "mod_log_channel_id", "moderator_role_id", "price_per_second"})
"""What `store.guilds.update(**fields)` may change."""


class GuildRepository:
    """`store.guilds`. Every change is also a ledger row (kind guild_setting / channel_*) with actor and reason."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def get(self, guild_id: int) -> GuildConfig:
        async with self._db.read() as conn:
            row = await conn.fetch_one("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
            channels = await conn.fetch_all("SELECT channel_id FROM guild_channels WHERE guild_id = ?", (guild_id,))
        allowed = frozenset(int(c["channel_id"]) for c in channels)
        if row is None:
            return GuildConfig(guild_id=guild_id, allowed_channel_ids=allowed)
        return GuildConfig(
            guild_id=guild_id,
            default_limit=row["default_limit"],
            paused=bool(row["paused"]),
            mod_log_channel_id=row["mod_log_channel_id"],
            moderator_role_id=row["moderator_role_id"],
            price_per_second=row["price_per_second"],
            allowed_channel_ids=allowed,
        )

    async def update(self, guild_id: int, *, actor_id: int, reason: str | None = None, **fields: Any) -> GuildConfig:
        """Set some of GUILD_FIELDS (None clears an optional one) and record the change. Returns the new config."""
        unknown = set(fields) - GUILD_FIELDS
        if unknown:
            raise ValueError(f"unknown guild settings: {sorted(unknown)}")
        if not fields:
            raise ValueError("nothing to update")
        if fields.get("default_limit") is not None and fields["default_limit"] < 0:
            raise ValueError("a limit cannot be negative")
        if fields.get("price_per_second") is not None and fields["price_per_second"] < 0:
            raise ValueError("a price cannot be negative")
        if "paused" in fields:
            fields["paused"] = bool(fields["paused"])
        columns = list(fields)
        async with self._db.write() as conn:
            now = self._clock()
            await conn.execute(
                f"INSERT INTO guild_settings (guild_id, updated_at, {', '.join(columns)})"
                f" VALUES (?, ?, {', '.join('?' for _ in columns)})"
                f" ON CONFLICT (guild_id) DO UPDATE SET updated_at = excluded.updated_at,"
                f" {', '.join(f'{c} = excluded.{c}' for c in columns)}",
                (guild_id, now, *(int(v) if isinstance(v, bool) else v for v in fields.values())),
            )
            await append_ledger(
                conn,
                guild_id=guild_id,
                kind=LedgerKind.GUILD_SETTING,
                actor_id=actor_id,
                reason=reason,
                detail=fields,
                at=now,
            )
        return await self.get(guild_id)

    async def allow_channel(
        self, guild_id: int, channel_id: int, *, actor_id: int, reason: str | None = None
    ) -> GuildConfig:
        """Add a channel where `/video` works. Once any is set, `/video` works only in those."""
        sql = "INSERT INTO guild_channels (guild_id, channel_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
        return await self._change_channel(sql, LedgerKind.CHANNEL_ALLOW, guild_id, channel_id, actor_id, reason)

    async def disallow_channel(
        self, guild_id: int, channel_id: int, *, actor_id: int, reason: str | None = None
    ) -> GuildConfig:
        """Remove a channel from the allowed list (removing the last one allows every channel again)."""
        sql = "DELETE FROM guild_channels WHERE guild_id = ? AND channel_id = ?"
        return await self._change_channel(sql, LedgerKind.CHANNEL_DISALLOW, guild_id, channel_id, actor_id, reason)

    async def _change_channel(
        self, sql: str, kind: LedgerKind, guild_id: int, channel_id: int, actor_id: int, reason: str | None
    ) -> GuildConfig:
        async with self._db.write() as conn:
            await conn.execute(sql, (guild_id, channel_id))
            await append_ledger(
                conn,
                guild_id=guild_id,
                kind=kind,
                actor_id=actor_id,
                reason=reason,
                detail={"channel_id": channel_id},
                at=self._clock(),
            )
        return await self.get(guild_id)

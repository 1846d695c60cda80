"""A server's named styles and its channels' defaults for `/video`. Every change is a moderator's, so every
change is also a ledger row (kind `guild_setting`, with what changed in `detail`)."""

from __future__ import annotations

from typing import Any

from bot.domain.cast import name_key
from bot.domain.clock import Clock
from bot.domain.styles import MAX_STYLES, ChannelDefaults, Style
from bot.storage.database import Connection, Database, Row
from bot.storage.ledger import append_ledger
from bot.storage.models import LedgerKind

__all__ = ["StyleRepository", "TooManyStyles"]


class TooManyStyles(Exception):
    """The server already has `MAX_STYLES` styles; nothing was saved."""


def _style(row: Row) -> Style:
    return Style(
        guild_id=int(row["guild_id"]),
        name=str(row["name"]),
        text=str(row["text"]),
        updated_by=int(row["updated_by"]),
        updated_at=float(row["updated_at"]),
    )


class StyleRepository:
    """`store.styles`: styles (`set`, `remove`, `get`, `for_guild`) and channel defaults."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def set(self, guild_id: int, name: str, text: str, *, actor_id: int) -> tuple[Style, bool]:
        """Create the style or change its text (and the spelling of its name). Returns it and whether it is new.
        Raises TooManyStyles when it would be one more than `MAX_STYLES`."""
        key = name_key(name)
        async with self._db.write() as conn:
            now = self._clock()
            existing = await conn.fetch_one("SELECT 1 FROM styles WHERE guild_id = ? AND name_key = ?", (guild_id, key))
            if existing is None:
                row = await conn.fetch_one("SELECT COUNT(*) AS n FROM styles WHERE guild_id = ?", (guild_id,))
                if row is not None and int(row["n"]) >= MAX_STYLES:
                    raise TooManyStyles
            saved = await conn.fetch_one(
                "INSERT INTO styles (guild_id, name_key, name, text, updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (guild_id, name_key) DO UPDATE SET name = excluded.name, text = excluded.text,"
                " updated_by = excluded.updated_by, updated_at = excluded.updated_at RETURNING *",
                (guild_id, key, name, text, actor_id, now),
            )
            assert saved is not None  # an upsert with RETURNING always yields the row
            await self._record(conn, guild_id, actor_id, {"style": name, "text": text}, now)
        return _style(saved), existing is None

    async def remove(self, guild_id: int, name: str, *, actor_id: int) -> tuple[Style, list[int]] | None:
        """Remove the style, and from every channel that had it as its default. Returns it and those channels;
        None when there is no such style."""
        key = name_key(name)
        async with self._db.write() as conn:
            row = await conn.fetch_one(
                "DELETE FROM styles WHERE guild_id = ? AND name_key = ? RETURNING *", (guild_id, key)
            )
            if row is None:
                return None
            cleared = await conn.fetch_all(
                "UPDATE channel_defaults SET style_key = NULL WHERE guild_id = ? AND style_key = ?"
                " RETURNING channel_id",
                (guild_id, key),
            )
            # A channel whose only default was this style has no defaults left.
            await conn.execute(
                "DELETE FROM channel_defaults WHERE guild_id = ? AND style_key IS NULL AND duration IS NULL"
                " AND aspect_ratio IS NULL",
                (guild_id,),
            )
            style = _style(row)
            await self._record(conn, guild_id, actor_id, {"style": style.name, "removed": True}, self._clock())
        return style, sorted(int(r["channel_id"]) for r in cleared)

    async def get(self, guild_id: int, name: str) -> Style | None:
        async with self._db.read() as conn:
            row = await conn.fetch_one(
                "SELECT * FROM styles WHERE guild_id = ? AND name_key = ?", (guild_id, name_key(name))
            )
        return _style(row) if row is not None else None

    async def for_guild(self, guild_id: int) -> list[Style]:
        """The server's styles by name."""
        async with self._db.read() as conn:
            rows = await conn.fetch_all("SELECT * FROM styles WHERE guild_id = ? ORDER BY name_key", (guild_id,))
        return [_style(r) for r in rows]

    async def channel_defaults(self, guild_id: int, channel_id: int) -> ChannelDefaults:
        """The channel's defaults, with the style's name as now spelt (empty defaults when none are set)."""
        async with self._db.read() as conn:
            row = await conn.fetch_one(
                "SELECT s.name AS style, d.duration, d.aspect_ratio FROM channel_defaults d"
                " LEFT JOIN styles s ON s.guild_id = d.guild_id AND s.name_key = d.style_key"
                " WHERE d.guild_id = ? AND d.channel_id = ?",
                (guild_id, channel_id),
            )
        if row is None:
            return ChannelDefaults(guild_id, channel_id)
        return ChannelDefaults(guild_id, channel_id, row["style"], row["duration"], row["aspect_ratio"])

    async def set_channel_defaults(self, defaults: ChannelDefaults, *, actor_id: int) -> ChannelDefaults:
        """Replace the channel's defaults (all None clears them). The style must exist (the caller checks)."""
        guild_id, channel_id = defaults.guild_id, defaults.channel_id
        async with self._db.write() as conn:
            now = self._clock()
            if defaults.empty:
                await conn.execute(
                    "DELETE FROM channel_defaults WHERE guild_id = ? AND channel_id = ?", (guild_id, channel_id)
                )
            else:
                await conn.execute(
                    "INSERT INTO channel_defaults (guild_id, channel_id, style_key, duration, aspect_ratio, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, channel_id) DO UPDATE SET"
                    " style_key = excluded.style_key, duration = excluded.duration,"
                    " aspect_ratio = excluded.aspect_ratio, updated_at = excluded.updated_at",
                    (
                        guild_id,
                        channel_id,
                        name_key(defaults.style) if defaults.style else None,
                        defaults.duration,
                        defaults.aspect_ratio,
                        now,
                    ),
                )
            detail = {
                "channel_defaults": channel_id,
                "style": defaults.style,
                "duration": defaults.duration,
                "aspect_ratio": defaults.aspect_ratio,
            }
            await self._record(conn, guild_id, actor_id, detail, now)
        return await self.channel_defaults(guild_id, channel_id)

    @staticmethod
    async def _record(conn: Connection, guild_id: int, actor_id: int, detail: dict[str, Any], now: float) -> None:
        await append_ledger(
            conn, guild_id=guild_id, kind=LedgerKind.GUILD_SETTING, actor_id=actor_id, detail=detail, at=now
        )

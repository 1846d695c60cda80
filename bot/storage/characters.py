"""The characters table: saved characters, each a name and the ids of the sheet that holds its images."""

from __future__ import annotations

import json
from enum import StrEnum

from bot.domain.cast import Character, name_key
from bot.domain.clock import Clock
from bot.storage.database import Connection, Database, Row
from bot.storage.ledger import append_ledger
from bot.storage.models import LedgerKind

__all__ = ["CharacterRepository", "NotSaved"]

_SHARED_POOL = 0
"""The member id the shared characters' lock is keyed on: no Discord user has id 0."""


class NotSaved(StrEnum):
    """Why `create` saved nothing."""

    NAME_TAKEN = "name_taken"
    PERSONAL_LIMIT = "personal_limit"
    SHARED_LIMIT = "shared_limit"


def _character(row: Row) -> Character:
    return Character(
        id=int(row["id"]),
        guild_id=int(row["guild_id"]),
        owner_id=int(row["owner_id"]),
        name=str(row["name"]),
        shared=bool(row["shared"]),
        channel_id=int(row["channel_id"]),
        attachment_ids=tuple(int(a) for a in json.loads(row["attachment_ids"])),
        created_at=float(row["created_at"]),
    )


class CharacterRepository:
    """`store.characters`. Characters are per server: every read and write names the guild."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create(self, character: Character, *, personal_limit: int, shared_limit: int) -> Character | NotSaved:
        """Save `character` (its `created_at` is ignored: the store's clock stamps it) unless its name is taken
        where it would live (the owner's own characters, or the shared ones) or that place is full.

        The count and the insert are one transaction under the owner's lock (the shared pool's lock for a shared
        character), so two saves at once cannot pass the limit; a shared one is also a ledger row (a moderator's
        change to the server)."""
        shared = character.shared
        async with self._db.write() as conn:
            await self._db.lock_member(conn, character.guild_id, _SHARED_POOL if shared else character.owner_id)
            count = await self._count(conn, character.guild_id, None if shared else character.owner_id)
            if count >= (shared_limit if shared else personal_limit):
                return NotSaved.SHARED_LIMIT if shared else NotSaved.PERSONAL_LIMIT
            now = self._clock()
            row = await conn.fetch_one(
                "INSERT INTO characters (id, guild_id, owner_id, name, name_key, shared, channel_id, attachment_ids,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING *",
                (
                    character.id,
                    character.guild_id,
                    character.owner_id,
                    character.name,
                    name_key(character.name),
                    int(shared),
                    character.channel_id,
                    json.dumps(list(character.attachment_ids)),
                    now,
                ),
            )
            if row is None:
                return NotSaved.NAME_TAKEN
            if shared:
                await append_ledger(
                    conn,
                    guild_id=character.guild_id,
                    kind=LedgerKind.GUILD_SETTING,
                    actor_id=character.owner_id,
                    detail={"shared_character": character.name, "saved": True},
                    at=now,
                )
        return _character(row)

    async def _count(self, conn: Connection, guild_id: int, owner_id: int | None) -> int:
        if owner_id is None:
            row = await conn.fetch_one(
                "SELECT COUNT(*) AS n FROM characters WHERE guild_id = ? AND shared = 1", (guild_id,)
            )
        else:
            row = await conn.fetch_one(
                "SELECT COUNT(*) AS n FROM characters WHERE guild_id = ? AND owner_id = ? AND shared = 0",
                (guild_id, owner_id),
            )
        return int(row["n"]) if row is not None else 0

    async def counts(self, guild_id: int, owner_id: int) -> tuple[int, int]:
        """How many characters the member has of their own, and how many the server shares."""
        async with self._db.read() as conn:
            return await self._count(conn, guild_id, owner_id), await self._count(conn, guild_id, None)

    async def name_taken(self, guild_id: int, owner_id: int, name: str, *, shared: bool) -> bool:
        """Whether a character of that name (any case) already lives where this one would."""
        sql = "SELECT 1 FROM characters WHERE guild_id = ? AND name_key = ?"
        params: tuple[object, ...] = (guild_id, name_key(name))
        sql += " AND shared = 1" if shared else " AND shared = 0 AND owner_id = ?"
        params += () if shared else (owner_id,)
        async with self._db.read() as conn:
            return await conn.fetch_one(sql, params) is not None

    async def visible_to(self, guild_id: int, user_id: int) -> list[Character]:
        """The member's own characters on this server, then the server's shared ones, each by name."""
        async with self._db.read() as conn:
            rows = await conn.fetch_all(
                "SELECT * FROM characters WHERE guild_id = ? AND (shared = 1 OR owner_id = ?)"
                " ORDER BY shared, name_key",
                (guild_id, user_id),
            )
        return [_character(r) for r in rows]

    async def get(self, guild_id: int, character_id: int) -> Character | None:
        """The character, only if it is on this server."""
        async with self._db.read() as conn:
            row = await conn.fetch_one(
                "SELECT * FROM characters WHERE id = ? AND guild_id = ?", (character_id, guild_id)
            )
        return _character(row) if row is not None else None

    async def delete(self, guild_id: int, character_id: int, *, actor_id: int | None) -> Character | None:
        """Forget the character (None if it was not there). Removing a shared one is a ledger row; `actor_id` is
        None when the bot removes a character whose sheet Discord no longer has."""
        async with self._db.write() as conn:
            row = await conn.fetch_one(
                "DELETE FROM characters WHERE id = ? AND guild_id = ? RETURNING *", (character_id, guild_id)
            )
            if row is None:
                return None
            character = _character(row)
            if character.shared:
                await append_ledger(
                    conn,
                    guild_id=guild_id,
                    kind=LedgerKind.GUILD_SETTING,
                    actor_id=actor_id,
                    detail={"shared_character": character.name, "saved": False},
                    at=self._clock(),
                )
        return character

"""The audit ledger's rows: writing one inside a transaction, and reading one back.

Shared by every repository that changes an allowance or a setting (quotas, guilds, team channels, characters,
styles), each of which writes its ledger row in the same transaction as the change it explains.
"""

from __future__ import annotations

import json
from typing import Any

from bot.storage.database import Connection, Row
from bot.storage.models import LedgerEntry, LedgerKind

__all__ = ["append_ledger", "ledger_entry"]


async def append_ledger(
    conn: Connection,
    *,
    guild_id: int,
    kind: LedgerKind,
    at: float,
    user_id: int | None = None,
    role_id: int | None = None,
    amount: int | None = None,
    job_id: int | None = None,
    actor_id: int | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
    pool_id: int | None = None,
) -> LedgerEntry:
    """Insert one ledger row inside the caller's transaction and return it."""
    detail_text = json.dumps(detail, sort_keys=True) if detail is not None else None
    row = await conn.fetch_one(
        "INSERT INTO quota_ledger"
        " (guild_id, user_id, role_id, kind, amount, job_id, actor_id, reason, detail, at, pool_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        (guild_id, user_id, role_id, kind.value, amount, job_id, actor_id, reason, detail_text, at, pool_id),
    )
    assert row is not None  # INSERT ... RETURNING always yields the row
    return ledger_entry(row)


def ledger_entry(row: Row) -> LedgerEntry:
    return LedgerEntry(
        id=row["id"],
        guild_id=row["guild_id"],
        user_id=row["user_id"],
        role_id=row["role_id"],
        kind=LedgerKind(row["kind"]),
        amount=row["amount"],
        job_id=row["job_id"],
        actor_id=row["actor_id"],
        reason=row["reason"],
        at=float(row["at"]),
        detail=row["detail"],
        pool_id=row["pool_id"],
    )

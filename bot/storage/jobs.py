"""The jobs table: atomic check-and-reserve, compare-and-set status changes, and the poller's queries."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Collection, Mapping
from enum import Enum
from typing import Any

import aiosqlite

from bot.domain.clock import Clock
from bot.domain.jobs import (
    REFUNDED_ON,
    TERMINAL,
    FailureKind,
    Job,
    JobStatus,
    Reference,
    check_transition,
)
from bot.storage.database import Database, fetch_all, fetch_one
from bot.storage.models import JobNotFound, LedgerKind, NewJob, QuotaRequest, Refused, Reserved
from bot.storage.quotas import ACTIVE_SQL, after_reservation, append_ledger, quota_snapshot, refund_job

__all__ = ["UPDATABLE_FIELDS", "JobRepository", "job_from_row"]

_JOB_FIELDS = tuple(f.name for f in dataclasses.fields(Job))
UPDATABLE_FIELDS = frozenset(_JOB_FIELDS) - {
    "id",
    "guild_id",
    "user_id",
    "status",
    "created_at",
    "updated_at",
    "delivery_nonce",
}
"""What `transition(**fields)` and `update_fields(**fields)` may set. The rest identifies the job or is the
store's own bookkeeping (status moves only through `transition`)."""

_TIME_FIELDS = ("created_at", "updated_at", "submitted_at", "provider_finished_at", "finished_at", "next_poll_at")


def _column(name: str) -> str:
    # `references` is an SQL keyword; quoting every column name keeps the generated SQL uniform.
    return f'"{name}"'


def job_from_row(row: aiosqlite.Row) -> Job:
    values: dict[str, Any] = {name: row[name] for name in _JOB_FIELDS}
    values["references"] = tuple(Reference(**r) for r in json.loads(values["references"]))
    values["role_ids"] = tuple(int(r) for r in json.loads(values["role_ids"]))
    values["status"] = JobStatus(values["status"])
    # SQLite may hand back a whole-number REAL as an int (notably from RETURNING); times are floats everywhere.
    for name in _TIME_FIELDS:
        if values[name] is not None:
            values[name] = float(values[name])
    if values["failure_kind"] is not None:
        values["failure_kind"] = FailureKind(values["failure_kind"])
    return Job(**values)


def _references_json(references: Collection[Reference]) -> str:
    return json.dumps([dataclasses.asdict(r) for r in references])


def _to_sql(name: str, value: Any) -> Any:
    if name == "references":
        return _references_json(value)
    if name == "role_ids":
        return json.dumps(list(value))
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bool):
        return int(value)
    return value


def _assignments(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"these job fields cannot be set: {sorted(unknown)}")
    return {name: _to_sql(name, value) for name, value in fields.items()}


class JobRepository:
    """`store.jobs`."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create_reserved(self, new: NewJob, request: QuotaRequest) -> Reserved | Refused:
        """Check block, window limit (with grants) and active-job limit, then insert the job and charge it.

        One write transaction under the connection lock and `BEGIN IMMEDIATE`: no other coroutine or process
        can reserve between this call's check and its insert, so concurrent `/video` never exceed the limit.
        """
        async with self._db.write() as conn:
            now = self._clock()
            quota, use_times = await quota_snapshot(conn, new.guild_id, new.user_id, request, now)
            refusal = quota.refusal_for(charged=not new.free)
            if refusal is not None:
                return Refused(quota=quota, refusal=refusal)
            row = await fetch_one(
                conn,
                'INSERT INTO jobs (guild_id, channel_id, user_id, prompt, duration, aspect_ratio, model, "references",'
                " status, created_at, updated_at, delivery_nonce, next_poll_at, retry_of, free, role_ids)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (
                    new.guild_id,
                    new.channel_id,
                    new.user_id,
                    new.prompt,
                    new.duration,
                    new.aspect_ratio,
                    new.model,
                    _to_sql("references", new.references),
                    JobStatus.QUEUED.value,
                    now,
                    now,
                    # Discord accepts message nonces of at most 25 characters; 96 random bits are plenty unique.
                    uuid.uuid4().hex[:24],
                    now,
                    new.retry_of,
                    int(new.free),
                    _to_sql("role_ids", new.role_ids),
                ),
            )
            assert row is not None  # INSERT ... RETURNING always yields the row
            job = job_from_row(row)
            await append_ledger(
                conn,
                guild_id=job.guild_id,
                user_id=job.user_id,
                kind=LedgerKind.FREE if new.free else LedgerKind.RESERVE,
                amount=0 if new.free else 1,
                job_id=job.id,
                reason=f"free retry of job {new.retry_of}" if new.free else None,
                at=now,
            )
        return Reserved(job=job, quota=after_reservation(quota, use_times, now, free=new.free))

    async def get(self, job_id: int, *, guild_id: int | None = None) -> Job | None:
        """The job, or None. With `guild_id`, also None when the job belongs to another guild (a button's custom
        id is only a number: a moderator of one guild must not reach another guild's job by guessing it)."""
        rows = await self._db.statement("SELECT * FROM jobs WHERE id = ?", (job_id,))
        row = rows[0] if rows else None
        if row is None or (guild_id is not None and row["guild_id"] != guild_id):
            return None
        return job_from_row(row)

    async def is_free(self, job_id: int) -> bool:
        """Whether the job was a free Retry (not charged, so never refunded)."""
        async with self._db.read() as conn:
            row = await fetch_one(conn, "SELECT free FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            raise JobNotFound(job_id)
        return bool(row["free"])

    async def transition(
        self,
        job_id: int,
        expected: JobStatus | Collection[JobStatus],
        new: JobStatus,
        *,
        actor_id: int | None = None,
        **fields: Any,
    ) -> Job | None:
        """Move the job to `new` if it is in one of the `expected` states; None (and no change) otherwise.

        Raises InvalidTransition if any expected→new pair is not in the state machine, ValueError for fields
        that cannot be set. Sets updated_at, finished_at when `new` is terminal, and — when `new` gives the
        unit back — writes the refund in the same transaction, so a crash cannot leave a failed job charged.
        `actor_id` is the member or moderator who caused the change (a Cancel button); it goes on the refund row.
        """
        olds = [JobStatus(expected)] if isinstance(expected, str) else [JobStatus(s) for s in expected]
        if not olds:
            raise ValueError("expected must name at least one status")
        for old in olds:
            check_transition(old, new)
        values = _assignments(fields)
        now = self._clock()
        values = {"status": new.value, "updated_at": now, **values}
        if new in TERMINAL:
            values.setdefault("finished_at", now)
        sets = ", ".join(f"{_column(name)} = ?" for name in values)
        marks = ", ".join("?" for _ in olds)
        sql = f"UPDATE jobs SET {sets} WHERE id = ? AND status IN ({marks}) RETURNING *"
        params = (*values.values(), job_id, *(s.value for s in olds))
        if new not in REFUNDED_ON:
            rows = await self._db.statement(sql, params)  # no refund to write with it: one statement
            return job_from_row(rows[0]) if rows else None
        async with self._db.write() as conn:
            row = await fetch_one(conn, sql, params)
            if row is None:
                return None
            job = job_from_row(row)
            if not row["free"]:
                reason = f"job {new.value}" + (f": {job.failure_kind.value}" if job.failure_kind else "")
                await refund_job(conn, job_id, reason=reason, now=now, actor_id=actor_id)
        return job

    async def update_fields(self, job_id: int, **fields: Any) -> Job:
        """Change non-status columns (poll counters, next_poll_at, thread ids...). Raises JobNotFound."""
        values = _assignments(fields)
        values["updated_at"] = self._clock()
        sets = ", ".join(f"{_column(name)} = ?" for name in values)
        rows = await self._db.statement(f"UPDATE jobs SET {sets} WHERE id = ? RETURNING *", (*values.values(), job_id))
        if not rows:
            raise JobNotFound(job_id)
        return job_from_row(rows[0])

    async def reschedule(self, job_id: int, next_poll_at: float, **fields: Any) -> None:
        """Set when the job is next looked at (and other non-status columns, e.g. poll counters) without reading
        the row back: the poller's most frequent write, after every poll of a job that is not done yet."""
        values = _assignments({"next_poll_at": next_poll_at, **fields})
        values["updated_at"] = self._clock()
        sets = ", ".join(f"{_column(name)} = ?" for name in values)
        await self._db.statement(f"UPDATE jobs SET {sets} WHERE id = ?", (*values.values(), job_id))

    async def due(self, now: float, limit: int = 100) -> list[Job]:
        """Unfinished jobs whose next_poll_at has come, the most overdue first (ties: oldest job first)."""
        async with self._db.read() as conn:
            rows = await fetch_all(
                conn,
                f"SELECT * FROM jobs WHERE status IN ({ACTIVE_SQL}) AND next_poll_at <= ?"
                " ORDER BY next_poll_at, id LIMIT ?",
                (now, limit),
            )
        return [job_from_row(r) for r in rows]

    async def next_due_at(self) -> float | None:
        """The earliest next_poll_at of any unfinished job (None if there is none), so the poller can sleep."""
        rows = await self._db.statement(f"SELECT MIN(next_poll_at) AS at FROM jobs WHERE status IN ({ACTIVE_SQL})")
        return float(rows[0]["at"]) if rows and rows[0]["at"] is not None else None

    async def claim_due(self, now: float, *, lease: float, limit: int = 100) -> list[Job]:
        """Like `due`, but in the same statement push each returned job's next_poll_at to `now + lease`, so the next
        claim does not return it again while it is being handled (whoever handles it sets the real next time; if
        nobody does, it comes back after the lease). Oldest job first."""
        rows = await self._db.statement(
            f"UPDATE jobs SET next_poll_at = ? WHERE id IN (SELECT id FROM jobs WHERE status IN ({ACTIVE_SQL})"
            " AND next_poll_at <= ? ORDER BY next_poll_at, id LIMIT ?) RETURNING *",
            (now + lease, now, limit),
        )
        return sorted((job_from_row(r) for r in rows), key=lambda job: job.id)

    async def pending_threads(self, limit: int = 1000) -> list[tuple[int, int, int, str]]:
        """Unfinished jobs whose thread is still to be started: (job id, channel id, card message id, prompt)."""
        rows = await self._db.statement(
            "SELECT id, channel_id, status_message_id, prompt FROM jobs WHERE thread_id IS NULL"
            f" AND thread_refused IS NULL AND status_message_id IS NOT NULL AND status IN ({ACTIVE_SQL})"
            " ORDER BY id LIMIT ?",
            (limit,),
        )
        return [(int(r[0]), int(r[1]), int(r[2]), str(r[3])) for r in rows]

    async def record_thread(self, job_id: int, *, thread_id: int | None = None, refused: str | None = None) -> Job:
        """The job's thread step ended: its thread, or why Discord refused one. A job already waiting to be
        delivered becomes due now. Raises JobNotFound."""
        if (thread_id is None) == (refused is None):
            raise ValueError("give exactly one of thread_id and refused")
        now = self._clock()
        rows = await self._db.statement(
            "UPDATE jobs SET thread_id = ?, thread_refused = ?, updated_at = ?,"
            " next_poll_at = CASE WHEN status = 'delivering' THEN ? ELSE next_poll_at END"
            " WHERE id = ? RETURNING *",
            (thread_id, refused, now, now, job_id),
        )
        if not rows:
            raise JobNotFound(job_id)
        return job_from_row(rows[0])

    async def unfinished(self) -> list[Job]:
        """Every job not yet in a terminal state, oldest first (start-up recovery)."""
        async with self._db.read() as conn:
            rows = await fetch_all(conn, f"SELECT * FROM jobs WHERE status IN ({ACTIVE_SQL}) ORDER BY id")
        return [job_from_row(r) for r in rows]

    async def recent_durations(self, model: str, duration: int, limit: int = 20) -> list[float]:
        """How long the provider took (provider_finished_at - submitted_at) for the latest such jobs, newest first."""
        rows = await self._db.statement(
            "SELECT provider_finished_at - submitted_at AS took FROM jobs"
            " WHERE model = ? AND duration = ? AND provider_finished_at IS NOT NULL AND submitted_at IS NOT NULL"
            " ORDER BY provider_finished_at DESC LIMIT ?",
            (model, duration, limit),
        )
        return [float(r["took"]) for r in rows]

    async def queue_position(self, job_id: int) -> int | None:
        """1-based place among all QUEUED jobs (every guild: provider capacity is shared); None if not queued."""
        rows = await self._db.statement(
            "SELECT COUNT(*) AS n FROM jobs WHERE status = 'queued' AND id <= ?"
            " AND EXISTS (SELECT 1 FROM jobs WHERE id = ? AND status = 'queued')",
            (job_id, job_id),
        )
        n = int(rows[0]["n"]) if rows else 0
        return n or None

    async def retries_of(self, job_id: int) -> list[Job]:
        """Jobs started with the Retry button of `job_id` (retry_of), oldest first."""
        async with self._db.read() as conn:
            rows = await fetch_all(conn, "SELECT * FROM jobs WHERE retry_of = ? ORDER BY id", (job_id,))
        return [job_from_row(r) for r in rows]

    async def list_for_user(self, guild_id: int, user_id: int, limit: int = 10) -> list[Job]:
        """The member's latest jobs in this guild, newest first."""
        async with self._db.read() as conn:
            rows = await fetch_all(
                conn,
                "SELECT * FROM jobs WHERE guild_id = ? AND user_id = ? ORDER BY id DESC LIMIT ?",
                (guild_id, user_id, limit),
            )
        return [job_from_row(r) for r in rows]

    async def counts_by_status(self) -> dict[JobStatus, int]:
        """Jobs per status across every guild, every status present (metrics)."""
        async with self._db.read() as conn:
            rows = await fetch_all(conn, "SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
        counts = dict.fromkeys(JobStatus, 0)
        for row in rows:
            counts[JobStatus(row["status"])] = int(row["n"])
        return counts

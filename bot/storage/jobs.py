"""The jobs table: atomic check-and-reserve, compare-and-set status changes, and the poller's queries."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Collection, Mapping
from contextlib import AbstractAsyncContextManager
from enum import Enum
from typing import Any

from bot.domain.cast import CastMember
from bot.domain.clock import Clock
from bot.domain.jobs import (
    ACTIVE,
    REFUNDED_ON,
    TERMINAL,
    FailureKind,
    Job,
    JobStatus,
    Reference,
    check_transition,
)
from bot.storage.database import Database, JobSignal, Row
from bot.storage.ledger import append_ledger
from bot.storage.models import JobNotFound, Lease, LedgerKind, NewJob, QuotaRequest, Refused, Reserved
from bot.storage.quotas import ACTIVE_SQL, after_reservation, quota_snapshot, refund_job
from bot.storage.teams import pool_status, team_channel

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
    "free",
    "pool_id",
    "needs_approval",
}
"""What `transition(**fields)` and `update_fields(**fields)` may set. The rest identifies the job, is fixed when it
is charged, or is the store's own bookkeeping (status moves only through `transition`)."""

_WORKED_SQL = ", ".join(f"'{s.value}'" for s in sorted(ACTIVE - {JobStatus.AWAITING_APPROVAL}))
"""The states the poller carries a job through (a job waiting for approval is only due at its deadline)."""

_TIME_FIELDS = (
    "created_at",
    "updated_at",
    "submitted_at",
    "provider_finished_at",
    "finished_at",
    "next_poll_at",
    "reviewed_at",
    "removed_at",
)


def _column(name: str) -> str:
    # `references` is an SQL keyword; quoting every column name keeps the generated SQL uniform.
    return f'"{name}"'


def job_from_row(row: Row) -> Job:
    values: dict[str, Any] = {name: row[name] for name in _JOB_FIELDS}
    values["references"] = tuple(Reference(**r) for r in json.loads(values["references"]))
    values["role_ids"] = tuple(int(r) for r in json.loads(values["role_ids"]))
    values["characters"] = tuple(_cast_member(c) for c in json.loads(values["characters"]))
    values["status"] = JobStatus(values["status"])
    # SQLite may hand back a whole-number REAL as an int (notably from RETURNING); times are floats everywhere.
    for name in _TIME_FIELDS:
        if values[name] is not None:
            values[name] = float(values[name])
    if values["failure_kind"] is not None:
        values["failure_kind"] = FailureKind(values["failure_kind"])
    values["free"] = bool(values["free"])
    values["needs_approval"] = bool(values["needs_approval"])
    if values["credits_used"] is not None:
        values["credits_used"] = float(values["credits_used"])
    return Job(**values)


def _references_json(references: Collection[Reference]) -> str:
    return json.dumps([dataclasses.asdict(r) for r in references])


def _cast_member(data: dict[str, Any]) -> CastMember:
    # JSON has lists where the dataclass has tuples.
    return CastMember(
        **{**data, "attachment_ids": tuple(data["attachment_ids"]), "angle_urls": tuple(data["angle_urls"])}
    )


def _to_sql(name: str, value: Any) -> Any:
    if name == "references":
        return _references_json(value)
    if name == "role_ids":
        return json.dumps(list(value))
    if name == "characters":
        return json.dumps([dataclasses.asdict(c) for c in value])
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


def _held_by(holder: str | None) -> tuple[str, tuple[Any, ...]]:
    """The extra condition of a write that only the lease's holder may make."""
    return ("", ()) if holder is None else (" AND lease_owner = ?", (holder,))


# A job's thread step that `owner` (the first parameter) may claim at `now` (the second): still to be done, and held
# by nobody, by `owner` already, or by a claim that ran out.
_THREAD_CLAIMABLE = (
    "thread_id IS NULL AND thread_refused IS NULL AND (thread_owner IS NULL OR thread_owner = ? OR thread_until <= ?)"
)


class JobRepository:
    """`store.jobs`."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create_reserved(self, new: NewJob, request: QuotaRequest) -> Reserved | Refused:
        """Check block, allowance and active-job limit, then insert the job and charge it.

        The allowance is the channel's budget when it has one (the unit is drawn from the budget and the job
        remembers which), otherwise the member's window limit with grants. In a channel with approvals the job
        starts `awaiting_approval`, due only at its deadline (`request.approval_timeout` from now), when the
        poller expires it unless a moderator approved it first.

        One write transaction that first locks out every other reservation of this member, then every other draw
        from the channel's budget (the backend's `lock_member`, `lock_pool`): no other coroutine or process can
        reserve between this call's check and its insert, so concurrent `/video` never exceed either.
        """
        async with self._db.write() as conn:
            await self._db.lock_member(conn, new.guild_id, new.user_id)
            team = await team_channel(conn, new.guild_id, new.channel_id)
            if team.pool is not None:
                await self._db.lock_pool(conn, team.pool.pool_id)
            now = self._clock()  # read after the locks: a reservation that waited sees the time it really ran
            quota, use_times = await quota_snapshot(conn, new.guild_id, new.user_id, request, now)
            if team.pool is not None:
                quota = dataclasses.replace(quota, pool=await pool_status(conn, team.pool, now))
            refusal = quota.refusal_for(charged=not new.free)
            if refusal is not None:
                return Refused(quota=quota, refusal=refusal)
            pool_id = team.pool.pool_id if team.pool is not None and not new.free else None
            status = JobStatus.AWAITING_APPROVAL if team.approvals else JobStatus.QUEUED
            row = await conn.fetch_one(
                'INSERT INTO jobs (guild_id, channel_id, user_id, prompt, duration, aspect_ratio, model, "references",'
                " status, created_at, updated_at, delivery_nonce, next_poll_at, retry_of, free, role_ids, pool_id,"
                " needs_approval, characters, style_name, style_text)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (
                    new.guild_id,
                    new.channel_id,
                    new.user_id,
                    new.prompt,
                    new.duration,
                    new.aspect_ratio,
                    new.model,
                    _to_sql("references", new.references),
                    status.value,
                    now,
                    now,
                    # Discord accepts message nonces of at most 25 characters; 96 random bits are plenty unique.
                    uuid.uuid4().hex[:24],
                    now + request.approval_timeout if team.approvals else now,
                    new.retry_of,
                    int(new.free),
                    _to_sql("role_ids", new.role_ids),
                    pool_id,
                    int(team.approvals),
                    _to_sql("characters", new.characters),
                    new.style_name,
                    new.style_text,
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
                pool_id=pool_id,
            )
            await self._db.announce_job(conn, job.id)
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
            row = await conn.fetch_one("SELECT free FROM jobs WHERE id = ?", (job_id,))
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
        holder: str | None = None,
        **fields: Any,
    ) -> Job | None:
        """Move the job to `new` if it is in one of the `expected` states; None (and no change) otherwise.

        With `holder` (a worker's lease name), also only while `holder` holds the job's lease: a worker that was
        paused past its lease's end, while another process took the job over, changes nothing.

        Raises InvalidTransition if any expected→new pair is not in the state machine, ValueError for fields
        that cannot be set. Sets updated_at, finished_at when the job ends (a removal keeps the delivery's), and —
        when `new` gives the unit back — writes the refund in the same transaction, so a crash cannot leave a
        failed job charged; the refund goes to where the charge came from (the member's quota or a budget).
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
        if new in TERMINAL and not any(old in TERMINAL for old in olds):
            values.setdefault("finished_at", now)
        sets = ", ".join(f"{_column(name)} = ?" for name in values)
        marks = ", ".join("?" for _ in olds)
        held, held_params = _held_by(holder)
        sql = f"UPDATE jobs SET {sets} WHERE id = ? AND status IN ({marks}){held} RETURNING *"
        params = (*values.values(), job_id, *(s.value for s in olds), *held_params)
        if new not in REFUNDED_ON:
            rows = await self._db.statement(sql, params)  # no refund to write with it: one statement
            return job_from_row(rows[0]) if rows else None
        async with self._db.write() as conn:
            row = await conn.fetch_one(sql, params)
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

    async def reschedule(self, job_id: int, next_poll_at: float, *, holder: str | None = None, **fields: Any) -> None:
        """Set when the job is next looked at (and other non-status columns, e.g. poll counters) without reading
        the row back: the poller's most frequent write, after every poll of a job that is not done yet. With
        `holder`, only while `holder` holds the job's lease."""
        values = _assignments({"next_poll_at": next_poll_at, **fields})
        values["updated_at"] = self._clock()
        sets = ", ".join(f"{_column(name)} = ?" for name in values)
        held, held_params = _held_by(holder)
        await self._db.statement(f"UPDATE jobs SET {sets} WHERE id = ?{held}", (*values.values(), job_id, *held_params))

    async def due(self, now: float, limit: int = 100) -> list[Job]:
        """Unfinished jobs whose next_poll_at has come, the most overdue first (ties: oldest job first)."""
        async with self._db.read() as conn:
            rows = await conn.fetch_all(
                f"SELECT * FROM jobs WHERE status IN ({ACTIVE_SQL}) AND next_poll_at <= ?"
                " ORDER BY next_poll_at, id LIMIT ?",
                (now, limit),
            )
        return [job_from_row(r) for r in rows]

    async def next_due_at(self) -> float | None:
        """The earliest next_poll_at of any unfinished job (None if there is none), so the poller can sleep."""
        rows = await self._db.statement(f"SELECT MIN(next_poll_at) AS at FROM jobs WHERE status IN ({ACTIVE_SQL})")
        return float(rows[0]["at"]) if rows and rows[0]["at"] is not None else None

    async def claim_threads(self, owner: str, *, lease_seconds: float, limit: int = 1000) -> list[Job]:
        """Claim for `owner`, until now + `lease_seconds`, the thread steps still to be done of unfinished jobs that
        no other process holds (or renew `owner`'s own); returns those jobs, oldest first. One statement however
        many there are: every process looks for thread steps, and one claimed elsewhere is not even read."""
        now = self._clock()
        rows = await self._db.statement(
            "WITH picked AS ("
            f" SELECT id FROM jobs WHERE {_THREAD_CLAIMABLE} AND status_message_id IS NOT NULL"
            f" AND status IN ({ACTIVE_SQL}) ORDER BY id LIMIT ?{self._db.skip_locked})"
            " UPDATE jobs SET thread_owner = ?, thread_until = ? WHERE id IN (SELECT id FROM picked) RETURNING *",
            (owner, now, limit, owner, now + lease_seconds),
        )
        return sorted((job_from_row(r) for r in rows), key=lambda j: j.id)

    async def record_thread(self, job_id: int, *, thread_id: int | None = None, refused: str | None = None) -> Job:
        """The job's thread step ended: its thread, or why Discord refused one. A job already waiting to be
        delivered becomes due now. Raises JobNotFound."""
        if (thread_id is None) == (refused is None):
            raise ValueError("give exactly one of thread_id and refused")
        now = self._clock()
        rows = await self._db.statement(
            "UPDATE jobs SET thread_id = ?, thread_refused = ?, updated_at = ?,"
            " thread_owner = NULL, thread_until = NULL,"
            " next_poll_at = CASE WHEN status = 'delivering' THEN ? ELSE next_poll_at END"
            " WHERE id = ? RETURNING *",
            (thread_id, refused, now, now, job_id),
        )
        if not rows:
            raise JobNotFound(job_id)
        return job_from_row(rows[0])

    async def claim_thread(self, job_id: int, owner: str, *, lease_seconds: float) -> bool:
        """Take (or renew) the right to start the job's thread until now + `lease_seconds`: False while another
        process holds an unexpired claim, or when the thread step is over. Several processes scan for threads to
        start; this makes one of them ask Discord."""
        now = self._clock()
        rows = await self._db.statement(
            f"UPDATE jobs SET thread_owner = ?, thread_until = ? WHERE id = ? AND {_THREAD_CLAIMABLE} RETURNING id",
            (owner, now + lease_seconds, job_id, owner, now),
        )
        return bool(rows)

    async def wake_workers(self, job_id: int) -> None:
        """Something made the job workable from outside the workers (its card was recorded, a moderator approved
        it): wake the `listen_for_new` signals, on PostgreSQL those of every process."""
        async with self._db.write() as conn:
            await self._db.announce_job(conn, job_id)

    async def unfinished(self) -> list[Job]:
        """Every job the poller is carrying to an end, oldest first (start-up recovery). Jobs waiting for a
        moderator's approval are left out: nothing of theirs is in flight, and they keep their deadline."""
        async with self._db.read() as conn:
            rows = await conn.fetch_all(f"SELECT * FROM jobs WHERE status IN ({_WORKED_SQL}) ORDER BY id")
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
            rows = await conn.fetch_all("SELECT * FROM jobs WHERE retry_of = ? ORDER BY id", (job_id,))
        return [job_from_row(r) for r in rows]

    async def list_for_user(self, guild_id: int, user_id: int, limit: int = 10) -> list[Job]:
        """The member's latest jobs in this guild, newest first."""
        async with self._db.read() as conn:
            rows = await conn.fetch_all(
                "SELECT * FROM jobs WHERE guild_id = ? AND user_id = ? ORDER BY id DESC LIMIT ?",
                (guild_id, user_id, limit),
            )
        return [job_from_row(r) for r in rows]

    async def counts_by_status(self) -> dict[JobStatus, int]:
        """Jobs per status across every guild, every status present (metrics)."""
        async with self._db.read() as conn:
            rows = await conn.fetch_all("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
        counts = dict.fromkeys(JobStatus, 0)
        for row in rows:
            counts[JobStatus(row["status"])] = int(row["n"])
        return counts

    # --- leases: which process works on a job -------------------------------------------------------------------
    #
    # A lease is (lease_owner, lease_until) on the job row, beside the job's status: claiming changes who works on
    # a job, never what state it is in. How procrastinate and pgqueuer claim work shaped the query below: both pick
    # rows with `FOR UPDATE SKIP LOCKED` and mark them taken in the same statement, so two workers never block on
    # or receive the same row. procrastinate moves a job to 'doing' and finds stalled jobs later, in a separate
    # step, through a table of worker heartbeats; pgqueuer keeps a heartbeat per job and takes over stale jobs in
    # the claim itself. We follow pgqueuer: a job whose lease ran out is simply claimable again, so there is no
    # separate recovery pass that could race with the claim. We store the lease's end rather than a heartbeat, so
    # readers need not know how long a heartbeat stays fresh, and every time comes from the store's clock like
    # all other job times (processes' clocks must agree to well within JOB_LEASE_SECONDS).

    async def claim_due(self, owner: str, *, lease_seconds: float, limit: int = 100) -> list[Job]:
        """Put up to `limit` due, unfinished jobs that nobody holds (no lease, or one that ran out) under a lease for
        `owner` until now + `lease_seconds`; most overdue first. Concurrent claimers never get the same job."""
        if lease_seconds <= 0:
            raise ValueError("a lease must last longer than zero seconds")
        now = self._clock()
        # One statement, so its own transaction: the poller claims every round, and it is as safe as in `write()`.
        rows = await self._db.statement(
            "WITH picked AS ("
            f" SELECT id FROM jobs WHERE status IN ({ACTIVE_SQL}) AND next_poll_at <= ?"
            " AND (lease_until IS NULL OR lease_until <= ?)"
            f" ORDER BY next_poll_at, id LIMIT ?{self._db.skip_locked})"
            " UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id IN (SELECT id FROM picked) RETURNING *",
            (now, now, limit, owner, now + lease_seconds),
        )
        jobs = [job_from_row(r) for r in rows]
        jobs.sort(key=lambda j: (j.next_poll_at or 0.0, j.id))  # RETURNING follows no particular order
        return jobs

    async def renew_lease(self, job_id: int, owner: str, *, lease_seconds: float) -> bool:
        """Extend `owner`'s lease to now + `lease_seconds`. False if the job is finished or `owner` no longer holds
        it (another process took it over after the lease ran out): then stop working on it."""
        if lease_seconds <= 0:
            raise ValueError("a lease must last longer than zero seconds")
        async with self._db.write() as conn:
            row = await conn.fetch_one(
                f"UPDATE jobs SET lease_until = ? WHERE id = ? AND lease_owner = ? AND status IN ({ACTIVE_SQL})"
                " RETURNING id",
                (self._clock() + lease_seconds, job_id, owner),
            )
        return row is not None

    async def release_lease(self, job_id: int, owner: str) -> bool:
        """Give the job back (it is claimable at its next_poll_at). False if `owner` did not hold it."""
        rows = await self._db.statement(
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ? RETURNING id",
            (job_id, owner),
        )
        return bool(rows)

    async def release_all_leases(self) -> int:
        """Give back every unfinished job's lease (and claim on its thread step), whoever holds it; returns how
        many. For the start-up of a bot
        that is the store's only worker: whoever held them is gone, and its jobs need not wait for their leases to
        run out. (Where several processes share the store, a starting one must leave the others' leases alone.)"""
        rows = await self._db.statement(
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL, thread_owner = NULL, thread_until = NULL"
            f" WHERE (lease_owner IS NOT NULL OR thread_owner IS NOT NULL) AND status IN ({ACTIVE_SQL}) RETURNING id"
        )
        return len(rows)

    async def lease(self, job_id: int) -> Lease | None:
        """Who holds the job and until when; None if nobody does (or there is no such job)."""
        async with self._db.read() as conn:
            row = await conn.fetch_one("SELECT lease_owner, lease_until FROM jobs WHERE id = ?", (job_id,))
        if row is None or row["lease_owner"] is None:
            return None
        return Lease(job_id=job_id, owner=str(row["lease_owner"]), until=float(row["lease_until"]))

    async def expired_leases(self) -> list[Job]:
        """Unfinished jobs whose holder let the lease run out (it died or hung), oldest first."""
        async with self._db.read() as conn:
            rows = await conn.fetch_all(
                f"SELECT * FROM jobs WHERE status IN ({ACTIVE_SQL}) AND lease_owner IS NOT NULL AND lease_until <= ?"
                " ORDER BY id",
                (self._clock(),),
            )
        return [job_from_row(r) for r in rows]

    def listen_for_new(self) -> AbstractAsyncContextManager[JobSignal]:
        """`async with store.jobs.listen_for_new() as created: await created.wait()` wakes a worker when a
        job is created, instead of polling the table fast. On PostgreSQL it hears every process (LISTEN/NOTIFY);
        on SQLite only this process, so other processes on the same file still find new jobs by polling."""
        return self._db.job_signal()

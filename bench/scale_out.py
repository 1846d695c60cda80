"""Scale-out: the same crowd served by one all-in-one process on SQLite and by gateway and worker processes on
PostgreSQL (`bench/deployment.py`), real processes at the default settings.

`workers`: jobs per second and bot CPU seconds per job with 1, 2 and 4 `python -m bot worker` processes behind one
`python -m bot gateway` (the jobs come in as /video commands the gateway answers), against one `python -m bot` on
SQLite. `takeover`: two gateway shards and two workers deliver 120 videos over four servers while one worker is
killed with SIGKILL; every video must be in its thread once, no generation polled by two processes at once, and
the killed worker's jobs must be taken over within the lease plus one poll interval.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bench.deployment import Deployment, Shape, deployment, job_rows, postgres_cpu_seconds
from bench.report import Result
from bot.devtools.pgcluster import PostgresCluster
from bot.domain.jobs import ACTIVE, TERMINAL, JobStatus
from bot.settings import Settings

__all__ = ["TAKEOVER", "WORKERS", "takeover", "workers"]

WORKERS = Shape(members=60, channels=10, durations=(2.0, 6.0))  # 240 jobs, 6 per channel
TAKEOVER = Shape(members=30, channels=6, durations=(5.0, 15.0), shards=2)  # 120 jobs over four servers
PER_SECOND = 50.0  # how fast the members' commands arrive
PATIENCE = 600.0
_DEFAULTS = Settings.model_fields
LEASE = float(_DEFAULTS["job_lease_seconds"].default)
POLL = float(_DEFAULTS["poll_interval_seconds"].default)
DISCORD_BUDGET = float(_DEFAULTS["discord_requests_per_second"].default)
# Requests Discord leaves out of the bot token's global budget: interaction answers and their webhook edits, and
# the CDN's attachment downloads.
_OUT_OF_BUDGET = ("/interactions/", "/webhooks/", "/attachments/")


@dataclass
class Run:
    """What one deployment did with one crowd, from the first /video to the last video."""

    label: str
    jobs: int
    answered: int
    posted: list[float]  # when each video in a thread was posted (epoch seconds), sorted
    outside: int  # videos posted in a channel itself
    first: float  # when the first /video was created
    cpu: dict[str, float]  # bot CPU seconds per process
    simulators_cpu: float  # this process: both simulators and the crowd
    postgres_cpu: float | None
    limited: int  # Discord 429s
    budgeted: int  # Discord requests counted in the bot token's global budget
    provider_requests: int
    polls: dict[str, list[tuple[float, float, str]]]  # generation -> (arrived, answered, process) per poll
    submits: int
    rows: list[dict[str, Any]]
    files: dict[int, list[int]] = field(default_factory=dict)  # thread -> message ids with a video

    @property
    def delivered(self) -> int:
        return len(self.posted)

    @property
    def rate(self) -> float:
        """Jobs per second, from the first /video to the last video."""
        return self.delivered / (self.posted[-1] - self.first) if self.posted else 0.0

    @property
    def steady_rate(self) -> float:
        """Jobs per second between the 10th and the 90th percentile video: the pace once work is flowing,
        without the first generation's wait and the last stragglers."""
        n = len(self.posted)
        lo, hi = n // 10, n - 1 - n // 10
        return (hi - lo) / (self.posted[hi] - self.posted[lo]) if hi > lo else 0.0

    def cpu_per_job(self, role: str = "") -> float:
        return sum(v for k, v in self.cpu.items() if k.startswith(role)) / max(self.delivered, 1)

    def ceilings(self) -> tuple[float, float, float]:
        """Jobs per second that each of three things would allow if it were the only limit: one worker process
        on a core of its own (one event loop uses one core), the whole machine (its cores over everything's CPU
        per job: bot processes, PostgreSQL, simulators), and the bot token's Discord budget (its requests per
        second over the budgeted requests per job)."""
        jobs = max(self.delivered, 1)
        per_worker = self.cpu_per_job("worker") * jobs / max(sum(k.startswith("worker") for k in self.cpu), 1)
        everything = self.cpu_per_job() + (self.postgres_cpu or 0.0) / jobs + self.simulators_cpu / jobs
        return (
            jobs / per_worker if per_worker else float("inf"),
            (os.cpu_count() or 1) / everything,
            DISCORD_BUDGET * jobs / max(self.budgeted, 1),
        )

    def misplaced(self) -> int:
        """Delivered jobs whose thread does not hold exactly their one video."""
        bad = 0
        for row in self.rows:
            if row["status"] == JobStatus.DELIVERED.value:
                found = self.files.get(int(row["thread_id"] or 0), [])
                bad += found != [int(row["delivered_message_id"] or 0)]
        return bad

    def polled_at_once(self) -> int:
        """Generations with a poll that arrived before the previous poll was answered."""
        return sum(
            any(arrived < answered for (_, answered, _), (arrived, _, _) in itertools.pairwise(p))
            for p in self.polls.values()
        )


async def _measure(
    dep: Deployment, label: str, data_dir: Path | None, during: Callable[[], Coroutine[Any, Any, Any]] | None = None
) -> tuple[Run, Any]:
    """Wait for the processes, run the crowd to its last video (with `during` running beside it) and record."""
    await dep.ready()
    before = len(dep.discord.requests)
    cpu0, sims0 = dep.cpu(), time.process_time()
    pg0 = postgres_cpu_seconds(data_dir) if data_dir else 0.0
    side: asyncio.Task[Any] | None = asyncio.create_task(during()) if during else None
    handles = await dep.ask(PER_SECOND)
    answered = sum(1 for h in handles if h.acknowledged_at is not None and not h.ephemeral)
    await dep.until_videos(answered, PATIENCE)
    cpu1, sims1 = dep.cpu(), time.process_time()
    pg1 = postgres_cpu_seconds(data_dir) if data_dir else None
    outcome = await side if side else None
    posted, outside = dep.videos()
    polls: dict[str, list[tuple[float, float, str]]] = {}
    for r in dep.aiml.requests:
        if r.method == "GET" and "generation_id" in r.query:
            polls.setdefault(r.query["generation_id"], []).append((r.started, r.at, r.agent))
    files = {
        c.id: [m.id for m in dep.discord.messages(c.id) if m.attachments]
        for c in list(dep.discord.channels.values())
        if c.is_thread
    }
    run = Run(
        label=label,
        jobs=len(handles),
        answered=answered,
        posted=sorted(posted),
        outside=outside,
        first=min(h.created_at for h in handles),
        cpu={k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1},
        simulators_cpu=sims1 - sims0,
        postgres_cpu=None if pg1 is None else pg1 - pg0,
        limited=sum(1 for r in dep.discord.requests[before:] if r.status == 429),
        budgeted=sum(1 for r in dep.discord.requests[before:] if not r.path.startswith(_OUT_OF_BUDGET)),
        provider_requests=sum(1 for r in dep.aiml.requests if r.path.startswith("/v2/")),
        polls={g: sorted(p) for g, p in polls.items()},
        submits=sum(1 for r in dep.aiml.requests if r.method == "POST"),
        rows=await job_rows(dep.url),
        files=files,
    )
    return run, outcome


async def _cluster() -> PostgresCluster:
    # The server's default durability, as a deployment runs it (the tests' cluster skips flushes).
    return await asyncio.to_thread(lambda: PostgresCluster.start(durable=True))


def _add_run(result: Result, run: Run) -> None:
    n, label = run.jobs, run.label
    result.add(f"{label}: videos in their thread", f"{run.delivered} of {n}", f"{n}", run.delivered == n)
    result.add(f"{label}: jobs/s (steady)", f"{run.rate:.1f} ({run.steady_rate:.1f})")
    split = ", ".join(
        f"{role} {run.cpu_per_job(role) * 1000:.0f}" for role in ("gateway", "worker") if run.cpu_per_job(role)
    )
    result.add(f"{label}: bot CPU per job", f"{run.cpu_per_job() * 1000:.1f} ms" + (f" ({split})" if split else ""))
    if run.postgres_cpu is not None:
        result.add(
            f"{label}: PostgreSQL server CPU per job", f"{run.postgres_cpu / max(run.delivered, 1) * 1000:.1f} ms"
        )
    result.add(f"{label}: simulators' CPU per job", f"{run.simulators_cpu / max(run.delivered, 1) * 1000:.1f} ms")
    result.add(f"{label}: Discord 429s", str(run.limited), "0", run.limited == 0)
    if "worker" in "".join(run.cpu):
        worker, machine, discord = run.ceilings()
        result.add(
            f"{label}: jobs/s one worker on its own core / the machine / Discord's budget would allow",
            f"{worker:.0f} / {machine:.0f} / {discord:.0f}",
        )


async def workers(shape: Shape = WORKERS, counts: tuple[int, ...] = (1, 2, 4)) -> Result:
    result = Result(
        "scale-out, workers",
        f"{shape.jobs} members over four servers ({shape.channels} channels each) run /video at "
        f"{PER_SECOND:g} per second, generations of {shape.durations[0]:g}–{shape.durations[1]:g} s, to the last "
        "video; one process on SQLite, then one gateway and 1, 2, 4 workers on PostgreSQL; default settings",
    )
    runs: dict[str, Run] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with deployment(Path(tmp) / "sqlite", shape) as dep:
            await dep.start("bot")
            runs["sqlite"], _ = await _measure(dep, "SQLite, one process", None)
        cluster = await _cluster()
        try:
            for count in counts:
                url = await asyncio.to_thread(cluster.new_database)
                async with deployment(Path(tmp) / f"workers-{count}", shape, url) as dep:
                    await dep.start("gateway", "gateway")
                    for i in range(count):
                        await dep.start(f"worker-{i + 1}", "worker")
                    label = f"PostgreSQL, {count} worker{'s' if count > 1 else ''}"
                    runs[str(count)], _ = await _measure(dep, label, cluster.folder / "data")
        finally:
            await asyncio.to_thread(cluster.stop)
    for run in runs.values():
        _add_run(result, run)
    sqlite = runs["sqlite"]
    for a, b in itertools.pairwise(counts):
        if str(a) in runs and str(b) in runs:
            ratio = runs[str(b)].steady_rate / runs[str(a)].steady_rate
            grows = (a, b) == (1, 2)
            result.add(
                f"steady jobs/s, {b} workers / {a}",
                f"{ratio:.2f}",
                "> 1" if grows else "",
                ratio > 1 if grows else None,
            )
    for count in counts:
        ratio = runs[str(count)].cpu_per_job() / sqlite.cpu_per_job()
        result.add(f"bot CPU per job, PostgreSQL {count} / SQLite", f"{ratio:.2f}", "<= 1.5", ratio <= 1.5)
    result.notes.append(
        "Bot CPU is the bot processes' own (gateway and workers, or the one process), read from /proc from the "
        "first /video to the last video; the PostgreSQL server and the simulators (this benchmark's process) are "
        'shown apart. Everything shares the machine\'s 2 cores. "Steady" counts the videos between the 10th and '
        "90th percentile, without the first generation's wait and the stragglers."
    )
    if "1" in runs:
        worker, machine, discord = runs["1"].ceilings()
        limits = {"one worker's own core": worker, "the machine's cores": machine, "Discord's budget": discord}
        first = min(limits, key=lambda k: limits[k])
        result.notes.append(
            f"Where it stops, from the one-worker run: one worker on a core of its own would allow {worker:.0f} "
            f"jobs/s, the machine's {os.cpu_count()} cores (everything's CPU per job) {machine:.0f} jobs/s, and the "
            f"bot token's Discord budget ({DISCORD_BUDGET:g} requests/s) {discord:.0f} jobs/s. The lowest, "
            f"{first}, is the limit. A second worker adds jobs per second only where one worker's own core is the "
            "lowest of the three, that is where the worker's share of the CPU per job is more than the machine's "
            "cores can give it; otherwise steady rates with 1, 2 and 4 workers differ by noise (10–20 % between two "
            "runs of the same configuration)."
        )
    return result


@dataclass
class Takeover:
    killed_at: float
    held: list[int]  # jobs the killed worker held (a job lease or a thread claim) when it died
    taken: dict[int, float] = field(default_factory=dict)  # job -> seconds after the kill another process had it
    ended: dict[int, float] = field(default_factory=dict)  # job -> seconds after the kill it ended


# A worker's leases name it as "<PROCESS_NAME>:<random suffix of its run>".
_HELD = (
    "SELECT id FROM jobs WHERE status = ANY($2::text[]) AND (lease_owner LIKE $1"
    " OR (thread_owner LIKE $1 AND thread_id IS NULL AND thread_refused IS NULL))"
)


async def _until(condition: Callable[[], bool], seconds: float) -> None:
    """Until `condition()` holds or `seconds` have passed, looking every 50 ms."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # noqa: ASYNC110 - no event tells of these changes
        await asyncio.sleep(0.05)


async def _kill_and_watch(dep: Deployment, name: str) -> Takeover:
    """Once `name` has polled a generation (mid-run), hold its next polls at the provider until it has two in
    the air, SIGKILL it, and watch the jobs it held until another process has them. Without the hold a worker
    holds a lease only for the milliseconds of a step, and a kill would rarely catch one."""
    active = [s.value for s in ACTIVE]
    agent, owner = f"Reelbot ({name})", f"{name}:%"
    await _until(lambda: any(r.agent == agent and "generation_id" in r.query for r in dep.aiml.requests), 120)
    dep.aiml.hold(agent)
    await _until(lambda: len(dep.aiml.held) >= 2, 30)
    conn = await asyncpg.connect(dep.url)
    try:
        killed_at = await dep.kill(name)
        dep.aiml.release()
        watch = Takeover(killed_at, [r["id"] for r in await conn.fetch(_HELD, owner, active)])
        while len(watch.ended) < len(watch.held) and time.time() - killed_at < PATIENCE:
            rows = await conn.fetch(
                "SELECT id, status, lease_owner, thread_owner, thread_id FROM jobs WHERE id = ANY($1::bigint[])",
                watch.held,
            )
            now = time.time() - killed_at
            for r in rows:
                done = r["status"] in {s.value for s in TERMINAL}
                mine = [str(r["lease_owner"]), "" if r["thread_id"] else str(r["thread_owner"])]
                moved = not any(holder.startswith(f"{name}:") for holder in mine)
                if (done or moved) and r["id"] not in watch.taken:
                    watch.taken[r["id"]] = now
                if done and r["id"] not in watch.ended:
                    watch.ended[r["id"]] = now
            await asyncio.sleep(0.1)
        return watch
    finally:
        await conn.close()


async def takeover(shape: Shape = TAKEOVER) -> Result:
    result = Result(
        "scale-out, two shards and two workers",
        f"{shape.jobs} members over four servers (two per shard) run /video at {PER_SECOND:g} per second, "
        f"generations of {shape.durations[0]:g}–{shape.durations[1]:g} s; two gateway shards and two workers on "
        "PostgreSQL, one worker killed with SIGKILL mid-run; against one process on SQLite; default settings",
    )
    with tempfile.TemporaryDirectory() as tmp:
        async with deployment(Path(tmp) / "one", shape) as dep:
            await dep.start("bot")
            one, _ = await _measure(dep, "one process", None)
        cluster = await _cluster()
        try:
            url = await asyncio.to_thread(cluster.new_database)
            async with deployment(Path(tmp) / "pg", shape, url) as dep:
                for shard in range(2):
                    await dep.start(f"gateway-{shard}", "gateway", SHARD_COUNT="2", SHARD_IDS=str(shard))
                for i in (1, 2):
                    await dep.start(f"worker-{i}", "worker")
                run, watch = await _measure(
                    dep, "shards and workers", cluster.folder / "data", lambda: _kill_and_watch(dep, "worker-1")
                )
        finally:
            await asyncio.to_thread(cluster.stop)
    n = run.jobs
    unsettled = sum(1 for r in run.rows if r["status"] not in {s.value for s in TERMINAL})
    failed = sum(1 for r in run.rows if r["status"] == JobStatus.FAILED.value)
    result.add("videos in their thread", f"{run.delivered} of {n}", f"{n}", run.delivered == n)
    result.add("threads without exactly their one video", str(run.misplaced()), "0", run.misplaced() == 0)
    result.add("videos outside a thread", str(run.outside), "0", run.outside == 0)
    result.add(
        "jobs not ended / ended without a video (refunded)", f"{unsettled} / {failed}", "0 / 0", unsettled + failed == 0
    )
    result.add("Discord 429s", str(run.limited), "0", run.limited == 0)
    twice = run.submits - len({r["generation_id"] for r in run.rows if r["generation_id"]})
    result.add("submits sent twice", str(twice), "0", twice == 0)
    result.add("generations polled by two processes at once", str(run.polled_at_once()), "0", run.polled_at_once() == 0)
    both = sum(1 for p in run.polls.values() if len({agent for *_, agent in p}) > 1)
    result.add("generations polled by both workers (one after the other)", f"{both} of {len(run.polls)}")
    per_job, per_job_one = run.provider_requests / n, one.provider_requests / one.jobs
    ratio = per_job / per_job_one
    result.add("provider requests per job, one process", f"{per_job_one:.2f}")
    result.add("provider requests per job, shards and workers", f"{per_job:.2f}")
    result.add("ratio", f"{ratio:.2f}", "<= 1.25", abs(ratio - 1) <= 0.25)
    result.add("jobs the killed worker held when it died", str(len(watch.held)))
    if watch.taken:
        worst = max(watch.taken.values())
        result.add(
            "taken over by the other worker after (most)",
            f"{worst:.1f} s",
            f"<= {LEASE + POLL:g} s",
            worst <= LEASE + POLL,
        )
    if watch.ended:
        result.add("those jobs ended after (most)", f"{max(watch.ended.values()):.1f} s")
    result.add(
        "jobs/s (steady), one process / shards and workers",
        f"{one.rate:.1f} ({one.steady_rate:.1f}) / {run.rate:.1f} ({run.steady_rate:.1f})",
    )
    result.add(
        "bot CPU per job, one process / shards and workers",
        f"{one.cpu_per_job() * 1000:.1f} / {run.cpu_per_job() * 1000:.1f} ms",
    )
    cpu_ratio = run.cpu_per_job() / one.cpu_per_job()
    result.add("bot CPU per job, shards and workers / one process", f"{cpu_ratio:.2f}", "<= 1.5", cpu_ratio <= 1.5)
    result.notes.append(
        f"The lease is JOB_LEASE_SECONDS = {LEASE:g} s and the poll interval {POLL:g} s (the defaults): a job the "
        "killed worker held stays its own until the lease runs out, then the other worker claims it on its next "
        'look. "Taken over" is when the job\'s row first names another holder (or the job ended); "ended" '
        "includes the rest of its generation. Polls per generation come from the AI/ML API simulator's record "
        "(arrival, answer and User-Agent of each request)."
    )
    return result

"""Many jobs through the real poller, store, provider client and downloader, with time compressed to nothing.

The AI/ML API simulator runs in its own process (so CPU time and memory measured here are the bot's alone) and
reads the same clock as the bot: a float in shared memory that this process moves forward. The loop is a
discrete-event simulation of the poller's own `run()`: handle every job due now (`run_once`), then jump the clock
to the next `next_poll_at` instead of sleeping. Every request, state change and file is real; only waiting is
skipped, so provider requests per job and delivery lag (in simulated seconds) are exactly what a live bot would
see, and CPU seconds measure the work itself.

Provider durations: each job's total provider time (queued + generating) is drawn per clip length, because
Kling takes longer for 10-second clips and the poller's history is kept per (model, clip length).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import random
import resource
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from bot.domain.jobs import TERMINAL, Job, JobStatus, Reference
from bot.provider.client import AimlClient
from bot.provider.download import MediaDownloader
from bot.services.poller import ROUND_GAP, Poller, PollerConfig
from bot.services.presenter import Card, Controls
from bot.services.schedule import FOLLOW_UP_FACTOR
from bot.sim.aimlapi import AimlSimulator, JobScript, SimGeneration
from bot.storage import NewJob, QuotaRequest, Reserved, Store

__all__ = ["FleetConfig", "FleetReport", "run_fleet"]

KEY = "bench-key-0123456789"
MODEL = "klingai/video-o1-reference-to-video"
START = 1_900_000_000.0
REFS = (Reference("https://cdn.example/ref.png", "ref.png", "image/png", 50_000, 1024, 768),)

Durations = dict[int, tuple[float, float]]  # clip seconds -> (min, max) provider seconds
INFORMATIVE: Durations = {5: (60.0, 180.0), 10: (180.0, 300.0)}
UNINFORMATIVE: Durations = {5: (60.0, 300.0), 10: (60.0, 300.0)}


@dataclass
class FleetConfig:
    jobs: int
    durations: Durations = field(default_factory=lambda: dict(INFORMATIVE))
    warmup: int = 40  # jobs run first (not measured) so the adaptive schedule has history, as a live bot would
    fixed_interval: float | None = None  # the "polling peer": first poll and every poll at this interval, no history
    poll_interval: float = 10.0
    batch_size: int = 100
    max_concurrency: int = 8
    video_size: int | None = None
    seed: int = 6


@dataclass
class FleetReport:
    jobs: int
    requests: int
    lags: list[float]
    cpu_seconds: float
    peak_rss_mib: float
    baseline_rss_mib: float
    peak_in_flight: int
    simulated_seconds: float
    wall_seconds: float
    statuses: dict[str, int]

    @property
    def requests_per_job(self) -> float:
        return self.requests / self.jobs


# ---------------------------------------------------------------- the simulator process


class _SizedSimulator(AimlSimulator):
    """Gives each generation a provider duration drawn for its clip length (known from the submit body)."""

    def __init__(self, *args: Any, durations: Durations, seed: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._durations = durations
        self._rng = random.Random(seed)
        self.finish: dict[str, float] = {}

    def _phase(self, gen: SimGeneration, now: float) -> tuple[str, float]:
        if gen.id not in self.finish:
            low, high = self._durations[int(str(gen.body.get("duration", 5)))]
            total = self._rng.uniform(low, high)
            queued = min(total * 0.2, 20.0)
            gen.script = replace(gen.script, queued_s=queued, generating_s=total - queued)
            self.finish[gen.id] = gen.created + total
        return super()._phase(gen, now)


def _simulator_main(
    clock: Synchronized[float], durations: Durations, seed: int, video_size: int | None, conn: Any
) -> None:
    async def main() -> None:
        sim = _SizedSimulator(
            KEY,
            clock=lambda: clock.value,
            fetch_images=False,
            default_script=JobScript(video_size=video_size, credits_used=None),
            durations=durations,
            seed=seed,
        )
        await sim.start()
        conn.send(sim.base_url)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # "stop"
        submits = sum(1 for r in sim.requests if r.method == "POST")
        polls = {gen.id: gen.polls for gen in sim.generations.values()}
        conn.send({"finish": sim.finish, "polls": polls, "submits": submits})
        await sim.stop()

    asyncio.run(main())


# ---------------------------------------------------------------- the bot side


class _NullChat:
    """Discord stand-in that records when each job's video was posted (on the shared clock)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._ids = 10**17
        self.posted_at: dict[int, float] = {}  # thread id (= job id here) -> clock

    async def upload_limit(self, guild_id: int) -> int:
        return 100 * 1024 * 1024

    def _next(self) -> int:
        self._ids += 1
        return self._ids

    async def post_file(
        self,
        thread_id: int,
        content: str,
        path: Path,
        filename: str,
        *,
        nonce: str,
        mention_user_id: int,
        controls: Controls | None = None,
    ) -> int:
        self.posted_at[thread_id] = self._clock()
        return self._next()

    async def post_text(
        self,
        thread_id: int,
        content: str,
        *,
        nonce: str | None,
        mention_user_id: int,
        controls: Controls | None = None,
    ) -> int:
        self.posted_at.setdefault(thread_id, self._clock())
        return self._next()

    async def delete_message(self, channel_id: int, message_id: int) -> bool:
        return True

    async def find_message(self, thread_id: int, contains: str) -> int | None:
        return None

    async def start_thread(self, channel_id: int, message_id: int, name: str) -> int:
        return message_id

    async def update_card(self, channel_id: int, message_id: int, render: Callable[[], Awaitable[Card]]) -> None:
        return None


class _NoHistoryJobs:
    """The store's job repository without history: what a bot polling at a fixed interval knows."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def recent_durations(self, model: str, duration: int, limit: int = 20) -> list[float]:
        return []


class _NoHistoryStore:
    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.jobs = _NoHistoryJobs(inner.jobs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _drain(poller: Poller, store: Store, clock: Synchronized[float]) -> int:
    """Run rounds, jumping the clock to the next due time, until no job is left unfinished. Returns the most
    jobs in flight seen at once. Like `Poller.run()`, rounds are at least `ROUND_GAP` apart (simulated time), so
    jobs coming due one by one are taken in batches as they would be live."""
    peak = 0
    rounds = 0
    last = clock.value
    while True:
        if rounds % 20 == 0:
            counts = await store.jobs.counts_by_status()
            peak = max(peak, sum(n for s, n in counts.items() if s not in TERMINAL))
        rounds += 1
        last = clock.value
        if await poller.run_once():
            clock.value = max(clock.value, last + ROUND_GAP)
            continue
        next_due = await store.jobs.next_due_at()
        if next_due is None:
            return peak
        clock.value = max(clock.value, next_due, last + ROUND_GAP)


async def _run(config: FleetConfig, base_url: str, clock: Synchronized[float], tmp: Path) -> tuple[FleetReport, Any]:
    store = await Store.open(tmp / "fleet.db", clock=lambda: clock.value)
    session = aiohttp.ClientSession(
        trust_env=False, connector=aiohttp.TCPConnector(limit=32), cookie_jar=aiohttp.DummyCookieJar()
    )
    downloader = MediaDownloader(allow_private_networks=True, timeout=30.0)
    chat = _NullChat(lambda: clock.value)
    rng = random.Random(config.seed)
    try:
        client = AimlClient(session, base_url, SecretStr(KEY), timeout=30.0)
        fixed = config.fixed_interval
        poller = Poller(
            store=_NoHistoryStore(store) if fixed else store,  # type: ignore[arg-type]
            provider=client,
            downloader=downloader,
            chat=chat,
            config=PollerConfig(
                # The peer polls every `fixed` seconds exactly: undo the adaptive schedule's follow-up factor.
                poll_interval=fixed / FOLLOW_UP_FACTOR if fixed else config.poll_interval,
                job_timeout=3600.0,
                media_dir=tmp / "media",
                max_concurrency=config.max_concurrency,
                first_poll_default=fixed,
                batch_size=config.batch_size,
            ),
            clock=lambda: clock.value,
            rand=(lambda: 0.5) if fixed else rng.random,
        )
        quota = QuotaRequest(window_seconds=86_400, fallback_limit=10**9, max_active=10**9)

        async def add_jobs(n: int, first_user: int) -> list[Job]:
            jobs = []
            for i in range(n):
                new = NewJob(1, 2, first_user + i, f"job {i}", rng.choice((5, 10)), "16:9", MODEL, REFS)
                made = await store.jobs.create_reserved(new, quota)
                assert isinstance(made, Reserved)
                job = await store.jobs.update_fields(made.job.id, thread_id=made.job.id)
                jobs.append(job)
            return jobs

        if config.warmup and not fixed:
            await add_jobs(config.warmup, 10_000_000)
            await _drain(poller, store, clock)
            clock.value += 600.0

        jobs = await add_jobs(config.jobs, 1)
        baseline = _rss_mib()
        cpu0 = time.process_time()
        wall0 = time.perf_counter()
        sim_start = clock.value
        peak = await _drain(poller, store, clock)
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        statuses: dict[str, int] = {}
        finals = []
        for job in jobs:
            final = await store.jobs.get(job.id)
            assert final is not None
            finals.append(final)
            statuses[final.status.value] = statuses.get(final.status.value, 0) + 1
        report = FleetReport(
            jobs=config.jobs,
            requests=0,
            lags=[],
            cpu_seconds=cpu,
            peak_rss_mib=_peak_rss_mib(),
            baseline_rss_mib=baseline,
            peak_in_flight=peak,
            simulated_seconds=clock.value - sim_start,
            wall_seconds=wall,
            statuses=statuses,
        )
        return report, (finals, chat.posted_at)
    finally:
        await downloader.close()
        await session.close()
        await store.close()


def run_fleet(config: FleetConfig) -> FleetReport:
    """Run one fleet in a fresh event loop; the simulator lives in a forked child process."""
    ctx = mp.get_context("fork")
    clock: Synchronized[float] = ctx.Value("d", START, lock=False)
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=_simulator_main, args=(clock, config.durations, config.seed, config.video_size, child), daemon=True
    )
    proc.start()
    try:
        base_url = parent.recv()
        with tempfile.TemporaryDirectory() as tmp:
            report, (finals, posted_at) = asyncio.run(_run(config, base_url, clock, Path(tmp)))
        parent.send("stop")
        stats = parent.recv()
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    if report.statuses.get(JobStatus.DELIVERED.value, 0) != len(finals):
        # No faults are injected here: anything but a delivery means the bench no longer drives the bot right.
        raise RuntimeError(f"the fleet did not deliver every job: {report.statuses}")
    finish: dict[str, float] = stats["finish"]
    measured = [f for f in finals if f.generation_id]
    lags = [
        posted_at[f.id] - finish[f.generation_id]
        for f in measured
        if f.status is JobStatus.DELIVERED and f.generation_id in finish
    ]
    # One submit per measured job (the simulator injects no faults here) plus every poll of its generation.
    report.requests = len(measured) + sum(stats["polls"].get(f.generation_id, 0) for f in measured)
    report.lags = lags
    return report

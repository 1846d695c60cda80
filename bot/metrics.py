"""The bot's metrics, kept by prometheus-client in a registry of their own, and served at `/metrics`.

Record with prometheus-client's own API: `metrics.deliveries.inc()`,
`metrics.submit_requests.labels(outcome="ok").inc()`, `metrics.delivery_lag.observe(seconds)`. The registry is
the bot's, not the library's global one, so tests (and several bots in one process) never share numbers.

`Metrics(labels={"process": "worker-1", "shard": "3"})` adds those labels to every series it exports, so when
several processes serve `/metrics` (gateway shards, workers) each scrape says where it came from; with no labels
the export is exactly what one process always exported. `_created` series (a start time per counter) are not
exported: nothing reads them, and they would double the series count.

`Metrics` is also the no-op default of the services: a `Metrics()` nobody scrapes costs a dict update per event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from bot.domain.jobs import REFUNDED_ON, Job, JobStatus
from bot.provider.models import Generation, GenerationRequest
from bot.services.ports import ProviderPort

__all__ = ["MeteredProvider", "Metrics", "job_observer"]

prometheus_client.disable_created_metrics()


class _WithLabels(Collector):
    """Every sample of `inner`, with the constant `labels` added (they never override a metric's own)."""

    def __init__(self, inner: Collector, labels: Mapping[str, str]) -> None:
        self._inner = inner
        self._labels = dict(labels)

    def collect(self) -> Iterable[Metric]:
        for family in self._inner.collect():  # fresh objects on every collect: safe to change
            family.samples = [s._replace(labels={**self._labels, **s.labels}) for s in family.samples]
            yield family


# Initial responses must beat Discord's 3 s deadline; the interesting range is 10 ms to a few seconds.
RESPONSE_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
# Delivery takes a download and an upload of up to 100 MiB: seconds to minutes.
LAG_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0)


class Metrics:
    """The bot's metrics. Every name starts with `reelbot_`; see docs/operations.md for what each means."""

    def __init__(self, labels: Mapping[str, str] | None = None) -> None:
        r = self.registry = CollectorRegistry()
        self.exported: Collector = _WithLabels(r, labels) if labels else r
        """What `/metrics` serves: the registry, with the constant labels if any."""
        self.jobs = Gauge("reelbot_jobs", "Jobs in the database by state (read at scrape time).", ["state"], registry=r)
        self.submissions = Counter(
            "reelbot_submissions_total", "Jobs the AI/ML API accepted (paid generations).", registry=r
        )
        self.submit_requests = Counter(
            "reelbot_submit_requests_total",
            "Submit requests sent to the AI/ML API, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.poll_requests = Counter(
            "reelbot_poll_requests_total", "Status polls sent to the AI/ML API, by outcome.", ["outcome"], registry=r
        )
        self.failures = Counter(
            "reelbot_job_failures_total", "Jobs that ended without a video, by kind of failure.", ["kind"], registry=r
        )
        self.refunds = Counter(
            "reelbot_refunds_total", "Quota units given back because a job ended without a video.", registry=r
        )
        self.deliveries = Counter(
            "reelbot_deliveries_total", "Finished videos posted in their thread (file or link).", registry=r
        )
        self.internal_errors = Counter(
            "reelbot_internal_errors_total",
            "Unexpected errors while handling jobs (bugs, database trouble).",
            registry=r,
        )
        self.initial_response = Histogram(
            "reelbot_initial_response_seconds",
            "From the interaction's creation to the bot's first answer to /video.",
            buckets=RESPONSE_BUCKETS,
            registry=r,
        )
        self.delivery_lag = Histogram(
            "reelbot_delivery_lag_seconds",
            "From the poll that saw the provider finish to the video posted in the thread.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.health = Gauge(
            "reelbot_health_check",
            "1 when the /healthz check passes, else 0 (read at scrape time).",
            ["check"],
            registry=r,
        )
        # Traffic control (bot.traffic): what Discord and the provider let through.
        self.discord_rate_limited = Counter(
            "reelbot_discord_rate_limited_total",
            "429 answers from Discord, by scope (user, shared, global).",
            ["scope"],
            registry=r,
        )
        self.discord_waiting = Gauge(
            "reelbot_discord_waiting_requests",
            "Discord requests waiting for their turn (read at scrape time).",
            registry=r,
        )
        self.provider_pace = Gauge(
            "reelbot_provider_pace",
            "Requests per second the provider pacer allows now (read at scrape time).",
            registry=r,
        )
        self.provider_waiting = Gauge(
            "reelbot_provider_waiting_requests",
            "Provider requests waiting for their turn (read at scrape time).",
            registry=r,
        )

    def set_job_counts(self, counts: Mapping[Any, int]) -> None:
        """Replace the jobs-by-state gauge with fresh counts from the store."""
        for state, n in counts.items():
            self.jobs.labels(state=str(state)).set(n)


class MeteredProvider:
    """Wraps the provider client (same interface) and counts every submit and poll by outcome.

    Outcome is `ok` or the exception class name (`RateLimited`, `ProviderUnavailable`, ...), so a dashboard
    shows at once whether the provider is throttling, down, or refusing the key.
    """

    def __init__(self, inner: ProviderPort, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def submit(self, request: GenerationRequest) -> Generation:
        try:
            generation = await self._inner.submit(request)
        except Exception as exc:
            self._metrics.submit_requests.labels(outcome=type(exc).__name__).inc()
            raise
        self._metrics.submit_requests.labels(outcome="ok").inc()
        self._metrics.submissions.inc()
        return generation

    async def poll(self, generation_id: str) -> Generation:
        try:
            generation = await self._inner.poll(generation_id)
        except Exception as exc:
            self._metrics.poll_requests.labels(outcome=type(exc).__name__).inc()
            raise
        self._metrics.poll_requests.labels(outcome="ok").inc()
        return generation


def job_observer(metrics: Metrics, is_free: Callable[[int], Awaitable[bool]]) -> Callable[[Job], Awaitable[None]]:
    """A poller `on_change` hook that counts endings: failures by kind, refunds, deliveries and their lag.

    `is_free(job_id)` tells a free Retry (never charged, so never refunded) from a charged job.
    """

    async def observe(job: Job) -> None:
        if job.status is JobStatus.DELIVERED:
            metrics.deliveries.inc()
            if job.provider_finished_at is not None and job.finished_at is not None:
                metrics.delivery_lag.observe(max(0.0, job.finished_at - job.provider_finished_at))
        elif job.status in REFUNDED_ON:
            kind = job.failure_kind.value if job.failure_kind is not None else job.status.value
            metrics.failures.labels(kind=kind).inc()
            if not await is_free(job.id):
                metrics.refunds.inc()

    return observe

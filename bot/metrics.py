"""A tiny Prometheus registry (counters, gauges, histograms) and the bot's own metrics.

Written here rather than taken from `prometheus_client` so the image gains no dependency for ~150 lines. It
renders the text exposition format 0.0.4, which every Prometheus-compatible scraper reads. Everything runs on
the event loop thread, so no locks: an `inc()` is a dict update.

`Metrics` is the set the bot exports; a `Metrics()` nobody scrapes is the no-op default of the services, which
keeps `metrics.x.inc()` calls free of `if metrics is not None` checks.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from bot.domain.jobs import REFUNDED_ON, Job, JobStatus
from bot.provider.models import Generation, GenerationRequest
from bot.services.ports import ProviderPort

__all__ = [
    "CONTENT_TYPE",
    "Counter",
    "Gauge",
    "Histogram",
    "MeteredProvider",
    "Metrics",
    "Registry",
    "job_observer",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LabelValues = tuple[str, ...]


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _labels(names: Sequence[str], values: Sequence[str], extra: tuple[str, str] | None = None) -> str:
    pairs = [f'{n}="{_escape_label(v)}"' for n, v in zip(names, values, strict=True)]
    if extra is not None:
        pairs.append(f'{extra[0]}="{_escape_label(extra[1])}"')
    return "{" + ",".join(pairs) + "}" if pairs else ""


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)

    def _key(self, labels: Mapping[str, object]) -> LabelValues:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {tuple(labels)}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        raise NotImplementedError


class _Scalar(_Metric):
    """One number per label set: what counters and gauges have in common."""

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self._values: dict[LabelValues, float] = {}
        if not self.labelnames:
            self._values[()] = 0.0  # an unlabelled metric is exported as 0 before its first event

    def _add(self, amount: float, labels: Mapping[str, object]) -> None:
        key = self._key(labels)
        self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: object) -> float:
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> list[str]:
        return [f"{self.name}{_labels(self.labelnames, k)} {_number(v)}" for k, v in sorted(self._values.items())]


class Counter(_Scalar):
    """A number that only goes up (restarts at 0 with the process; Prometheus' `rate()` copes with that)."""

    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        if amount < 0:
            raise ValueError("a counter cannot go down")
        self._add(amount, labels)


class Gauge(_Scalar):
    """A number that goes up and down (jobs in a state, connections)."""

    kind = "gauge"

    def set(self, value: float, **labels: object) -> None:
        self._values[self._key(labels)] = float(value)

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        self._add(amount, labels)

    def dec(self, amount: float = 1.0, **labels: object) -> None:
        self._add(-amount, labels)


class Histogram(_Metric):
    """Observations counted into cumulative buckets (`le` = less than or equal), plus their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Iterable[float], labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        bounds = sorted(float(b) for b in buckets if not math.isinf(b))
        if not bounds:
            raise ValueError("a histogram needs at least one finite bucket")
        self.buckets = (*bounds, math.inf)
        # Per label set: per-bucket (non-cumulative) counts, sum, count.
        self._counts: dict[LabelValues, list[int]] = {}
        self._sums: dict[LabelValues, float] = {}
        if not self.labelnames:
            self._counts[()] = [0] * len(self.buckets)
            self._sums[()] = 0.0

    def observe(self, value: float, **labels: object) -> None:
        if math.isnan(value):
            return  # a NaN would poison the sum for ever
        key = self._key(labels)
        counts = self._counts.setdefault(key, [0] * len(self.buckets))
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                counts[index] += 1
                break
        self._sums[key] = self._sums.get(key, 0.0) + value

    def count(self, **labels: object) -> int:
        return sum(self._counts.get(self._key(labels), ()))

    def sum(self, **labels: object) -> float:
        return self._sums.get(self._key(labels), 0.0)

    def samples(self) -> list[str]:
        lines = []
        for key in sorted(self._counts):
            cumulative = 0
            for bound, n in zip(self.buckets, self._counts[key], strict=True):
                cumulative += n
                le = _labels(self.labelnames, key, ("le", _number(bound)))
                lines.append(f"{self.name}_bucket{le} {cumulative}")
            lines.append(f"{self.name}_sum{_labels(self.labelnames, key)} {_number(self._sums[key])}")
            lines.append(f"{self.name}_count{_labels(self.labelnames, key)} {cumulative}")
        return lines


class Registry:
    """Metrics by name, rendered in registration order."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def _add(self, metric: _Metric) -> None:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} is already registered")
        self._metrics[metric.name] = metric

    def counter(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> Counter:
        metric = Counter(name, help_text, labelnames)
        self._add(metric)
        return metric

    def gauge(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> Gauge:
        metric = Gauge(name, help_text, labelnames)
        self._add(metric)
        return metric

    def histogram(
        self, name: str, help_text: str, buckets: Iterable[float], labelnames: Sequence[str] = ()
    ) -> Histogram:
        metric = Histogram(name, help_text, buckets, labelnames)
        self._add(metric)
        return metric

    def render(self) -> str:
        """The whole registry in the Prometheus text format (ends with a newline, as the format requires)."""
        lines: list[str] = []
        for metric in self._metrics.values():
            lines.extend(metric.header())
            lines.extend(metric.samples())
        return "\n".join(lines) + "\n"


# Initial responses must beat Discord's 3 s deadline; the interesting range is 10 ms to a few seconds.
RESPONSE_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
# Delivery takes a download and an upload of up to 100 MiB: seconds to minutes.
LAG_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0)


class Metrics:
    """The bot's metrics. Every name starts with `reelbot_`; see README "Monitoring" for what each means."""

    def __init__(self) -> None:
        r = self.registry = Registry()
        self.jobs = r.gauge("reelbot_jobs", "Jobs in the database by state (read at scrape time).", ("state",))
        self.submissions = r.counter("reelbot_submissions_total", "Jobs the AI/ML API accepted (paid generations).")
        self.submit_requests = r.counter(
            "reelbot_submit_requests_total", "Submit requests sent to the AI/ML API, by outcome.", ("outcome",)
        )
        self.poll_requests = r.counter(
            "reelbot_poll_requests_total", "Status polls sent to the AI/ML API, by outcome.", ("outcome",)
        )
        self.failures = r.counter(
            "reelbot_job_failures_total", "Jobs that ended without a video, by kind of failure.", ("kind",)
        )
        self.refunds = r.counter("reelbot_refunds_total", "Quota units given back because a job ended without a video.")
        self.deliveries = r.counter(
            "reelbot_deliveries_total", "Finished videos posted in their thread (file or link)."
        )
        self.internal_errors = r.counter(
            "reelbot_internal_errors_total", "Unexpected errors while handling jobs (bugs, database trouble)."
        )
        self.initial_response = r.histogram(
            "reelbot_initial_response_seconds",
            "From the interaction's creation to the bot's first answer to /video.",
            RESPONSE_BUCKETS,
        )
        self.delivery_lag = r.histogram(
            "reelbot_delivery_lag_seconds",
            "From the poll that saw the provider finish to the video posted in the thread.",
            LAG_BUCKETS,
        )
        self.health = r.gauge(
            "reelbot_health_check", "1 when the /healthz check passes, else 0 (read at scrape time).", ("check",)
        )
        # Traffic control (bot.traffic): what Discord and the provider let through.
        self.discord_rate_limited = r.counter(
            "reelbot_discord_rate_limited_total",
            "429 answers from Discord, by scope (user, shared, global).",
            ("scope",),
        )
        self.discord_waiting = r.gauge(
            "reelbot_discord_waiting_requests", "Discord requests waiting for their turn (read at scrape time)."
        )
        self.provider_pace = r.gauge(
            "reelbot_provider_pace", "Requests per second the provider pacer allows now (read at scrape time)."
        )
        self.provider_waiting = r.gauge(
            "reelbot_provider_waiting_requests", "Provider requests waiting for their turn (read at scrape time)."
        )

    def set_job_counts(self, counts: Mapping[Any, int]) -> None:
        """Replace the jobs-by-state gauge with fresh counts from the store."""
        for state, n in counts.items():
            self.jobs.set(n, state=str(state))

    def render(self) -> str:
        return self.registry.render()


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
            self._metrics.submit_requests.inc(outcome=type(exc).__name__)
            raise
        self._metrics.submit_requests.inc(outcome="ok")
        self._metrics.submissions.inc()
        return generation

    async def poll(self, generation_id: str) -> Generation:
        try:
            generation = await self._inner.poll(generation_id)
        except Exception as exc:
            self._metrics.poll_requests.inc(outcome=type(exc).__name__)
            raise
        self._metrics.poll_requests.inc(outcome="ok")
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
            metrics.failures.inc(kind=kind)
            if not await is_free(job.id):
                metrics.refunds.inc()

    return observe

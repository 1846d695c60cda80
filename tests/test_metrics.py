"""Observability: the Prometheus text the operator scrapes, the counts the poller feeds it, and `/healthz`."""

from __future__ import annotations

import math
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bot.domain.jobs import FailureKind, JobStatus
from bot.health import CheckResult, HealthServer, database_check, gateway_check, poller_check
from bot.metrics import MeteredProvider, Metrics, job_observer
from bot.runner import _health_server
from bot.services.poller import Poller
from bot.sim.aimlapi import JobScript
from bot.storage import Store
from tests import e2e_world
from tests.e2e_world import World
from tests.fakes import Env, make_env

world = e2e_world.world  # the end-to-end fixture: both simulators and a real bot

# ---------------------------------------------------------------- what the operator scrapes

# Every series `/metrics` had before prometheus-client served it (recorded from the hand-written exporter it
# replaced): dashboards and alerts are written against these names, label names, types and buckets.
SERIES_BEFORE = {
    ("reelbot_deliveries_total", ()),
    ("reelbot_delivery_lag_seconds_bucket", ("le",)),
    ("reelbot_delivery_lag_seconds_count", ()),
    ("reelbot_delivery_lag_seconds_sum", ()),
    ("reelbot_health_check", ("check",)),
    ("reelbot_initial_response_seconds_bucket", ("le",)),
    ("reelbot_initial_response_seconds_count", ()),
    ("reelbot_initial_response_seconds_sum", ()),
    ("reelbot_internal_errors_total", ()),
    ("reelbot_job_failures_total", ("kind",)),
    ("reelbot_jobs", ("state",)),
    ("reelbot_poll_requests_total", ("outcome",)),
    ("reelbot_refunds_total", ()),
    ("reelbot_submissions_total", ()),
    ("reelbot_submit_requests_total", ("outcome",)),
}
TYPES_BEFORE = {
    "reelbot_deliveries": "counter",
    "reelbot_delivery_lag_seconds": "histogram",
    "reelbot_health_check": "gauge",
    "reelbot_initial_response_seconds": "histogram",
    "reelbot_internal_errors": "counter",
    "reelbot_job_failures": "counter",
    "reelbot_jobs": "gauge",
    "reelbot_poll_requests": "counter",
    "reelbot_refunds": "counter",
    "reelbot_submissions": "counter",
    "reelbot_submit_requests": "counter",
}
# Added since, with traffic control (docs/traffic-control.md).
SERIES_ADDED = {
    ("reelbot_discord_rate_limited_total", ("scope",)),
    ("reelbot_discord_waiting_requests", ()),
    ("reelbot_provider_pace", ()),
    ("reelbot_provider_waiting_requests", ()),
}
TYPES_ADDED = {
    "reelbot_discord_rate_limited": "counter",
    "reelbot_discord_waiting_requests": "gauge",
    "reelbot_provider_pace": "gauge",
    "reelbot_provider_waiting_requests": "gauge",
}
SERIES = SERIES_BEFORE | SERIES_ADDED
TYPES = TYPES_BEFORE | TYPES_ADDED
BUCKETS_BEFORE = {
    "reelbot_initial_response_seconds": [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, math.inf],
    "reelbot_delivery_lag_seconds": [0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 900, math.inf],
}


def value(metrics: Metrics, name: str, **labels: str) -> float:
    """One series' current value, as a scrape would read it (0 when it has no sample yet)."""
    return metrics.registry.get_sample_value(name, labels) or 0.0


def every_series_used_once(metrics: Metrics) -> None:
    metrics.jobs.labels(state="queued").set(1)
    metrics.submit_requests.labels(outcome="ok").inc()
    metrics.poll_requests.labels(outcome="ok").inc()
    metrics.failures.labels(kind="timeout").inc()
    metrics.health.labels(check="database").set(1)
    metrics.discord_rate_limited.labels(scope="global").inc()


def test_names_labels_types_and_buckets_are_what_they_were_plus_those_added_since() -> None:
    metrics = Metrics()
    every_series_used_once(metrics)
    families = list(text_string_to_metric_families(generate_latest(metrics.exported).decode()))

    assert {(s.name, tuple(sorted(s.labels))) for f in families for s in f.samples} == SERIES
    assert {f.name: f.type for f in families} == TYPES
    for family in families:
        if family.type == "histogram":
            bounds = [float(s.labels["le"]) for s in family.samples if s.name.endswith("_bucket")]
            assert bounds == BUCKETS_BEFORE[family.name]


def test_every_metric_the_operator_needs_is_exported_from_the_start() -> None:
    text = generate_latest(Metrics().exported).decode()
    for family in TYPES:
        assert f"# TYPE {family}" in text, family
    assert "reelbot_submissions_total 0.0" in text  # a zero, not a missing series, before the first job
    assert "_created" not in text


def test_constant_labels_say_which_process_every_series_comes_from() -> None:
    metrics = Metrics(labels={"process": "worker", "shard": "3"})
    every_series_used_once(metrics)
    metrics.initial_response.observe(0.2)
    samples = [s for f in text_string_to_metric_families(generate_latest(metrics.exported).decode()) for s in f.samples]
    assert samples
    assert all(s.labels["process"] == "worker" and s.labels["shard"] == "3" for s in samples)
    assert {(s.name, tuple(sorted(set(s.labels) - {"process", "shard"}))) for s in samples} == SERIES
    assert value(metrics, "reelbot_submit_requests_total", outcome="ok") == 1  # recorded without them


# ---------------------------------------------------------------- the poller feeds the counts


def metered_poller(env: Env, metrics: Metrics) -> Poller:
    poller = Poller(
        store=env.store,
        provider=MeteredProvider(env.client, metrics),
        downloader=env.downloader,
        chat=env.chat,
        config=env.config,
        clock=env.clock,
        on_change=job_observer(metrics, env.store.jobs.is_free),
        rand=lambda: 0.5,
    )
    env.pollers.append(poller)
    return poller


async def test_a_delivered_job_counts_one_submission_its_polls_and_its_delivery_lag(tmp_path: Path) -> None:
    metrics = Metrics()
    async with make_env(tmp_path, script=JobScript(queued_s=5, generating_s=20)) as env:
        poller = metered_poller(env, metrics)
        job = await env.new_job()
        done = await env.drive(poller, job.id, step=5.0)

        assert done.status is JobStatus.DELIVERED
        polls = sum(1 for r in env.sim.requests if r.method == "GET" and "generations" in r.path)
    assert value(metrics, "reelbot_submissions_total") == 1
    assert value(metrics, "reelbot_submit_requests_total", outcome="ok") == 1
    assert value(metrics, "reelbot_poll_requests_total", outcome="ok") == polls
    assert value(metrics, "reelbot_deliveries_total") == 1
    assert value(metrics, "reelbot_delivery_lag_seconds_count") == 1
    assert value(metrics, "reelbot_refunds_total") == 0
    text = generate_latest(metrics.exported).decode()
    assert f'reelbot_poll_requests_total{{outcome="ok"}} {polls}.0' in text


async def test_failures_are_counted_by_kind_with_their_refund(tmp_path: Path) -> None:
    metrics = Metrics()
    async with make_env(tmp_path) as env:
        env.sim.script_next(JobScript(queued_s=1, generating_s=2, outcome="error", error_message="nope"))
        env.sim.script_next(JobScript(submit_status=503), JobScript(submit_status=503), JobScript(submit_status=503))
        poller = metered_poller(env, metrics)
        rejected = await env.new_job("first")
        unavailable = await env.new_job("second", user_id=77)
        assert (await env.drive(poller, rejected.id)).failure_kind is FailureKind.REJECTED_CONTENT
        assert (await env.drive(poller, unavailable.id)).failure_kind is FailureKind.PROVIDER_UNAVAILABLE

    assert value(metrics, "reelbot_job_failures_total", kind="rejected_content") == 1
    assert value(metrics, "reelbot_job_failures_total", kind="provider_unavailable") == 1
    assert value(metrics, "reelbot_refunds_total") == 2
    assert value(metrics, "reelbot_submit_requests_total", outcome="ProviderUnavailable") == 3
    assert value(metrics, "reelbot_submissions_total") == 1


# ---------------------------------------------------------------- /healthz and /metrics over HTTP


@dataclass
class FakeGateway:
    ready: bool = True
    closed: bool = False
    latency: float = 0.042

    def is_ready(self) -> bool:
        return self.ready

    def is_closed(self) -> bool:
        return self.closed


@dataclass
class FakePollerState:
    running: bool = True
    last_beat: float | None = 100.0


@dataclass
class Served:
    url: str
    store: Store
    gateway: FakeGateway
    poller: FakePollerState
    metrics: Metrics
    now: list[float]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    store = await Store.open(tmp_path / "bot.db")
    gateway, poller, metrics, now = FakeGateway(), FakePollerState(), Metrics(), [101.0]

    async def refresh() -> None:
        metrics.set_job_counts(await store.jobs.counts_by_status())

    server = HealthServer(
        metrics,
        {
            "database": database_check(store),
            "gateway": gateway_check(gateway),
            "poller": poller_check(poller, stale_after=60, monotonic=lambda: now[0]),
        },
        port=0,
        host="127.0.0.1",
        before_scrape=refresh,
    )
    await server.start()
    try:
        yield Served(f"http://127.0.0.1:{server.port}", store, gateway, poller, metrics, now)
    finally:
        await server.stop()
        await store.close()


async def get(url: str) -> tuple[int, str, dict[str, object] | None, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        text = await resp.text()
        body = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, resp.headers["Content-Type"], body, text


async def test_healthz_is_ok_when_database_gateway_and_poller_are(served: Served) -> None:
    status, _, body, _ = await get(served.url + "/healthz")
    assert status == 200
    assert body is not None
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "gateway", "poller"}  # type: ignore[call-overload]


@pytest.mark.parametrize("broken", ["gateway-down", "gateway-connecting", "poller-stopped", "poller-stuck", "db"])
async def test_healthz_is_503_and_names_the_failing_check(served: Served, broken: str) -> None:
    failing = broken.split("-")[0] if broken != "db" else "database"
    if broken == "gateway-down":
        served.gateway.closed = True
    elif broken == "gateway-connecting":
        served.gateway.ready = False
    elif broken == "poller-stopped":
        served.poller.running = False
    elif broken == "poller-stuck":
        served.now[0] = 1000.0
    else:
        await served.store.close()

    status, _, body, _ = await get(served.url + "/healthz")

    assert status == 503
    assert body is not None
    assert body["status"] == "unhealthy"
    checks: dict[str, dict[str, object]] = body["checks"]  # type: ignore[assignment]
    assert [name for name, c in checks.items() if not c["ok"]] == [failing]


async def test_metrics_page_serves_jobs_by_state_and_health_in_prometheus_text(served: Served) -> None:
    served.metrics.initial_response.observe(0.12)
    status, content_type, _, text = await get(served.url + "/metrics")
    assert status == 200
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"  # what a scraper without Accept gets
    assert 'reelbot_jobs{state="queued"} 0' in text
    assert 'reelbot_jobs{state="delivered"} 0' in text
    assert 'reelbot_health_check{check="database"} 1' in text
    assert 'reelbot_initial_response_seconds_bucket{le="0.25"} 1' in text


async def test_a_prometheus_server_asking_for_openmetrics_gets_it_with_the_same_series(served: Served) -> None:
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    async with (
        aiohttp.ClientSession() as session,
        session.get(served.url + "/metrics", headers={"Accept": accept}) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        text = await resp.text()
    assert text.rstrip().endswith("# EOF")
    assert 'reelbot_health_check{check="database"} 1.0' in text
    assert "reelbot_submissions_total 0.0" in text


async def test_a_failing_check_never_shows_its_exception_text(served: Served) -> None:
    async def leaky() -> CheckResult:
        raise RuntimeError("/secret/path/bot.db is locked by pid 4242")

    server = HealthServer(Metrics(), {"leaky": leaky}, port=0, host="127.0.0.1")
    await server.start()
    try:
        status, _, body, text = await get(f"http://127.0.0.1:{server.port}/healthz")
    finally:
        await server.stop()
    assert status == 503
    assert "secret" not in text
    assert "RuntimeError" in text
    assert body is not None


# ---------------------------------------------------------------- wired into a real bot


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_running_bot_is_healthy_and_counts_a_video_end_to_end(world: World) -> None:
    bot = await world.start_bot()
    settings = world.settings(metrics_port=free_port())
    async with _health_server(settings, bot) as server:
        assert server is not None
        base = f"http://127.0.0.1:{server.port}"
        await world.discord.wait_for(lambda: bot.poller.running, timeout=5)
        status, _, body, _ = await get(base + "/healthz")
        assert status == 200, body

        card = await (await world.video()).wait_response(timeout=5)
        await world.discord.wait_for(lambda: bool(world.posts_with_files(card.id)), timeout=20)
        await world.discord.wait_for(lambda: value(bot.metrics, "reelbot_deliveries_total") == 1, timeout=5)
        _, _, _, text = await get(base + "/metrics")
        assert "reelbot_submissions_total 1" in text
        assert "reelbot_initial_response_seconds_count 1" in text
        assert "reelbot_delivery_lag_seconds_count 1" in text
        assert 'reelbot_jobs{state="delivered"} 1' in text

        await bot.close()
        status, _, body, _ = await get(base + "/healthz")
        assert status == 503
        assert body is not None
        failing = {name for name, check in body["checks"].items() if not check["ok"]}  # type: ignore[attr-defined]
        assert failing == {"gateway", "poller"}


async def test_no_metrics_port_means_no_server(world: World) -> None:
    bot = await world.start_bot()
    async with _health_server(world.settings(), bot) as server:
        assert server is None

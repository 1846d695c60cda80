"""The operator's HTTP port (`METRICS_PORT`): `/healthz` for Docker and orchestrators, `/metrics` for Prometheus.

`/healthz` answers 200 only when every check passes — the database answers, the Discord gateway is connected,
the poller is alive — and 503 otherwise, with a small JSON body that says which check failed. Checks are plain
async callables so this module knows nothing about discord.py and tests can hand in their own.

`/metrics` is prometheus-client's own aiohttp handler (format negotiated from the scraper's `Accept` header,
compression from `Accept-Encoding`), after the gauges read at scrape time are refreshed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from bot.metrics import Metrics

__all__ = [
    "Check",
    "CheckResult",
    "HealthServer",
    "database_check",
    "gateway_check",
    "poller_check",
]

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0  # a check that hangs (a locked database) is a failed check, not a hung health probe


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str


Check = Callable[[], Awaitable[CheckResult]]


class _Store(Protocol):
    async def get_meta(self, key: str) -> str | None: ...


class _Gateway(Protocol):
    @property
    def latency(self) -> float: ...

    def is_ready(self) -> bool: ...

    def is_closed(self) -> bool: ...


class _Poller(Protocol):
    @property
    def running(self) -> bool: ...

    @property
    def last_beat(self) -> float | None: ...


def database_check(store: _Store) -> Check:
    """The database answers a read (the `meta` table, a single-row lookup)."""

    async def check() -> CheckResult:
        await store.get_meta("schema_version")
        return CheckResult(True, "reachable")

    return check


def gateway_check(bot: _Gateway) -> Check:
    """The bot is logged in and its gateway connection is up (READY received, not closed)."""

    async def check() -> CheckResult:
        if bot.is_closed():
            return CheckResult(False, "closed")
        if not bot.is_ready():
            return CheckResult(False, "not connected yet")
        latency = bot.latency
        shown = f"{latency * 1000:.0f} ms heartbeat" if math.isfinite(latency) else "connected"
        return CheckResult(True, shown)

    return check


def poller_check(poller: _Poller, *, stale_after: float, monotonic: Callable[[], float] = time.monotonic) -> Check:
    """The poller loop is running and has shown a sign of life (a round started or ended) recently.

    `stale_after` must exceed the longest quiet time of a healthy poller: one idle sleep (the poll interval)
    plus the longest round (a few downloads and uploads of large videos).
    """

    async def check() -> CheckResult:
        if not poller.running:
            return CheckResult(False, "not running")
        beat = poller.last_beat
        if beat is None:
            return CheckResult(False, "no round yet")
        quiet = monotonic() - beat
        if quiet > stale_after:
            return CheckResult(False, f"no sign of life for {quiet:.0f} s")
        return CheckResult(True, f"last round {quiet:.1f} s ago")

    return check


class HealthServer:
    """An aiohttp server with `/healthz` and `/metrics`. `start()` binds; `port` is the bound port (0 = any)."""

    def __init__(
        self,
        metrics: Metrics,
        checks: Mapping[str, Check],
        *,
        port: int,
        host: str = "0.0.0.0",
        before_scrape: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._metrics = metrics
        self._export = make_aiohttp_handler(metrics.exported)
        self._checks = dict(checks)
        self._host = host
        self._port = port
        self._before_scrape = before_scrape
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_page)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        log.info("health and metrics on port %d (/healthz, /metrics)", self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def run_checks(self) -> dict[str, CheckResult]:
        names = list(self._checks)
        results = await asyncio.gather(*(self._run_one(name) for name in names))
        return dict(zip(names, results, strict=True))

    async def _run_one(self, name: str) -> CheckResult:
        try:
            return await asyncio.wait_for(self._checks[name](), CHECK_TIMEOUT)
        except TimeoutError:
            return CheckResult(False, f"no answer within {CHECK_TIMEOUT:.0f} s")
        except Exception as exc:
            # The exception type only: messages can carry paths or SQL, and this page may be public.
            log.warning("health check %s failed", name, exc_info=True)
            return CheckResult(False, f"error: {type(exc).__name__}")

    async def _healthz(self, request: web.Request) -> web.Response:
        results = await self.run_checks()
        healthy = all(r.ok for r in results.values())
        body: dict[str, Any] = {
            "status": "ok" if healthy else "unhealthy",
            "checks": {name: {"ok": r.ok, "detail": r.detail} for name, r in results.items()},
        }
        return web.json_response(body, status=200 if healthy else 503)

    async def _metrics_page(self, request: web.Request) -> web.StreamResponse:
        for name, result in (await self.run_checks()).items():
            self._metrics.health.labels(check=name).set(1 if result.ok else 0)
        if self._before_scrape is not None:
            try:
                await asyncio.wait_for(self._before_scrape(), CHECK_TIMEOUT)
            except Exception:
                # Stale gauges beat no metrics at all: the counters are still right.
                log.warning("could not refresh metrics before a scrape", exc_info=True)
        return await self._export(request)

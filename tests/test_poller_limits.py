"""The poller's politeness toward the provider: bounded concurrency and a token-bucket request rate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.domain.jobs import JobStatus
from bot.provider.models import Generation, GenerationRequest
from bot.services import poller as poller_module
from bot.services.poller import RateLimiter
from bot.services.ports import ProviderPort
from bot.sim.aimlapi import JobScript
from tests.fakes import make_env


class _CountingProvider:
    """The real client, with a count of calls in flight at once."""

    def __init__(self, inner: ProviderPort) -> None:
        self.inner = inner
        self.in_flight = 0
        self.most = 0

    async def _count(self) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.01)  # long enough for every other job task to reach the provider too

    async def submit(self, request: GenerationRequest) -> Generation:
        await self._count()
        try:
            return await self.inner.submit(request)
        finally:
            self.in_flight -= 1

    async def poll(self, generation_id: str) -> Generation:
        await self._count()
        try:
            return await self.inner.poll(generation_id)
        finally:
            self.in_flight -= 1


async def test_no_more_than_max_concurrency_jobs_talk_to_the_provider_at_once(tmp_path: Path) -> None:
    async with make_env(tmp_path, script=JobScript(queued_s=1, generating_s=2)) as env:
        counting = _CountingProvider(env.client)
        env.provider = counting
        poller = env.poller(max_concurrency=3)
        jobs = [await env.new_job(f"job {i}", user_id=100 + i) for i in range(8)]

        assert await poller.run_once() == 8
        for job in jobs:
            await env.drive(poller, job.id)

        assert counting.most == 3
        assert {(await env.job(j.id)).status for j in jobs} == {JobStatus.DELIVERED}
        assert len(env.chat.files) == 8


async def test_token_bucket_spaces_requests_at_the_configured_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(poller_module.asyncio, "sleep", fake_sleep)
    limiter = RateLimiter(4.0, burst=2, monotonic=lambda: now[0])

    for _ in range(10):
        await limiter.acquire()

    # Two requests ride the burst; the other eight wait a quarter second each.
    assert sum(slept) == pytest.approx(8 / 4.0)
    assert now[0] == pytest.approx(102.0)


async def test_token_bucket_refills_while_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(poller_module.asyncio, "sleep", fake_sleep)
    limiter = RateLimiter(1.0, burst=3, monotonic=lambda: now[0])
    for _ in range(3):
        await limiter.acquire()
    now[0] += 10.0  # quiet for a while: the bucket is full again, but never above its size
    for _ in range(3):
        await limiter.acquire()
    assert slept == []
    await limiter.acquire()
    assert slept == [pytest.approx(1.0)]

"""The poller's politeness toward the provider: bounded concurrency (its pace: tests/traffic/test_provider.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.domain.jobs import JobStatus
from bot.provider.models import Generation, GenerationRequest
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

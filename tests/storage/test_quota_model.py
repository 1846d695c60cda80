"""Random sequences of quota events against a plain-Python model of the rules: the store's `used`, `granted`,
`next_free_at` and its accept/refuse decisions must agree with the model after every step."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.clock import FakeClock
from bot.domain.jobs import JobStatus, Reference
from bot.domain.quotas import next_free_at
from bot.storage import NewJob, QuotaRequest, Reserved, Store

WINDOW = 100.0
LIMIT = 3
REQUEST = QuotaRequest(window_seconds=WINDOW, fallback_limit=LIMIT, max_active=1_000)
JOB = NewJob(1, 2, 3, "p", 5, "16:9", "m", (Reference("https://x/a.png", "a.png", "image/png", 1, 400, 400),))

Step = tuple[str, float]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.just(0.0)),
        st.tuples(st.just("advance"), st.sampled_from([0.5, 10.0, 33.3, 50.0, 99.9, 100.0])),
        st.tuples(st.just("fail_oldest"), st.just(0.0)),
        st.tuples(st.just("grant"), st.just(0.0)),
        st.tuples(st.just("reset"), st.just(0.0)),
    ),
    max_size=25,
)


@dataclass
class Model:
    """The quota rules restated as directly as possible."""

    uses: list[tuple[float, int]] = field(default_factory=list)  # (time, job id), refunded ones removed
    grants: list[float] = field(default_factory=list)

    def counted(self, now: float) -> list[float]:
        return [at for at, _ in self.uses if at + WINDOW > now]

    def granted(self, now: float) -> int:
        return sum(1 for at in self.grants if at + WINDOW > now)


async def run(script: list[Step], url: str) -> None:
    clock = FakeClock(1_000.0)
    model = Model()
    async with await Store.open(url, clock=clock) as store:
        for op, amount in script:
            now = clock()
            if op == "reserve":
                result = await store.jobs.create_reserved(JOB, REQUEST)
                may = len(model.counted(now)) < LIMIT + model.granted(now)
                assert isinstance(result, Reserved) == may
                if isinstance(result, Reserved):
                    model.uses.append((now, result.job.id))
            elif op == "advance":
                clock.advance(amount)
            elif op == "fail_oldest" and model.uses:
                _, job_id = model.uses.pop(0)
                assert await store.jobs.transition(job_id, JobStatus.QUEUED, JobStatus.FAILED) is not None
            elif op == "grant":
                await store.quotas.grant(1, 3, 1, actor_id=9)
                model.grants.append(now)
            elif op == "reset":
                await store.quotas.reset(1, 3, actor_id=9)
                model.uses.clear()
                model.grants.clear()
            status = await store.quotas.status(1, 3, REQUEST)
            now = clock()
            assert status.used == len(model.counted(now))
            assert status.granted == model.granted(now)
            assert status.next_free_at == next_free_at(model.counted(now), LIMIT + model.granted(now), WINDOW)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(steps)
def test_store_agrees_with_the_model(new_store_url: Callable[[], str], script: list[Step]) -> None:
    asyncio.run(run(script, new_store_url()))  # a fresh database for every example

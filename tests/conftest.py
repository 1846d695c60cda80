"""Shared fixtures: the end-to-end world (both simulators and a real bot) lives in tests/e2e_world.py.

`clock` and `store` are what most unit tests of the store and the services start from: one `FakeClock` (the only
fake clock; see bot/domain/clock.py) and a real, migrated store stamped by it: a SQLite file in the test's own
folder, and also a fresh PostgreSQL database when REELBOT_TEST_BACKENDS names it (tests/pg.py).
`intake` is the member-facing service over that store, at the settings' default quota numbers.
"""

from collections.abc import AsyncIterator

import pytest

from bot.domain.clock import FakeClock
from bot.services.intake import Intake, QuotaPolicy
from bot.storage import Store

pytest_plugins = ["tests.e2e_world", "tests.pg"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(store_url: str, clock: FakeClock) -> AsyncIterator[Store]:
    opened = await Store.open(store_url, clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def intake(store: Store, clock: FakeClock) -> Intake:
    policy = QuotaPolicy(default_limit=5, window_seconds=86_400, max_active=2)
    return Intake(store, model="klingai/video-o1-reference-to-video", policy=policy, clock=clock)

"""Shared fixtures: the end-to-end world (both simulators and a real bot) lives in tests/e2e_world.py.

`clock` and `store` are what most unit tests of the store and the services start from: one `FakeClock` (the only
fake clock; see bot/domain/clock.py) and a real, migrated SQLite file in the test's own folder, stamped by it.
`intake` is the member-facing service over that store, at the settings' default quota numbers.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.clock import FakeClock
from bot.services.intake import Intake, QuotaPolicy
from bot.storage import Store

pytest_plugins = ["tests.e2e_world"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "data" / "bot.db", clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def intake(store: Store, clock: FakeClock) -> Intake:
    policy = QuotaPolicy(default_limit=5, window_seconds=86_400, max_active=2)
    return Intake(store, model="klingai/video-o1-reference-to-video", policy=policy, clock=clock)

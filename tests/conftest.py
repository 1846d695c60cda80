"""Shared fixtures: the end-to-end world (both simulators and a real bot) lives in tests/e2e_world.py.

`clock` and `store` are what most unit tests of the store and the services start from: one `FakeClock` (the only
fake clock; see bot/domain/clock.py) and a real, migrated store stamped by it: a SQLite file in the test's own
folder, and also a fresh PostgreSQL database when REELBOT_TEST_BACKENDS names it (tests/pg.py).
`intake` is the member-facing service over that store, at the settings' default quota numbers.
"""

import logging
from collections.abc import AsyncIterator, Iterator

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


@pytest.fixture
def logs(capfd: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """What the process prints, with the root logger's handlers and level restored afterwards (for tests that set
    up logging as `python -m bot` does)."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    yield capfd
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)

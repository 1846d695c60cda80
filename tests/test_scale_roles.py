"""The pieces of a split deployment that need no running Discord: shard settings, refusing a split on SQLite,
writes only a lease's holder may make, and the thread step claimed by one process (both store backends)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.domain.clock import FakeClock
from bot.domain.jobs import JobStatus
from bot.settings import SettingsError, load_settings, parse_shard_ids
from bot.storage import Store
from tests.test_store_leases import LEASE, make

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = {"discord_token": "t", "aiml_api_key": "k"}


def test_shard_ids_take_lists_and_ranges() -> None:
    assert parse_shard_ids("0,2") == [0, 2]
    assert parse_shard_ids("0-3") == [0, 1, 2, 3]
    assert parse_shard_ids(" 4, 0-1 ") == [0, 1, 4]
    assert load_settings(**REQUIRED, shard_count=4).shards == [0, 1, 2, 3]  # default: every id below the count
    assert load_settings(**REQUIRED, shard_count=4, shard_ids="1,3").shards == [1, 3]
    assert load_settings(**REQUIRED).shards is None  # Discord's recommended count, all here


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"shard_ids": "0"}, "SHARD_IDS needs SHARD_COUNT"),
        ({"shard_count": 2, "shard_ids": "0-2"}, "names shard 2, but SHARD_COUNT is 2"),
        ({"shard_count": 2, "shard_ids": "one"}, "SHARD_IDS is invalid"),
        ({"shard_count": 0}, "SHARD_COUNT is invalid"),
    ],
)
def test_bad_shard_settings_say_what_is_wrong(values: dict[str, object], says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        load_settings(**REQUIRED, **values)


@pytest.mark.parametrize("role", ["gateway", "worker"])
def test_a_split_role_on_sqlite_is_refused_with_one_line(role: str, tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "DISCORD_TOKEN": "secret-token-value",
        "AIML_API_KEY": "secret-key-value",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
    }
    done = subprocess.run(  # noqa: S603 - our own entry point
        [sys.executable, "-m", "bot", role], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "DATABASE_URL=postgresql://" in line
    assert f"python -m bot {role}" in line
    assert not (tmp_path / "bot.db").exists()  # nothing was started or created


async def test_only_the_lease_holder_moves_or_reschedules_a_job(store: Store, clock: FakeClock) -> None:
    job = await make(store)
    await store.jobs.claim_due("paused", lease_seconds=LEASE)
    clock.advance(LEASE)
    await store.jobs.claim_due("alive", lease_seconds=LEASE)  # took it over

    # The paused worker wakes up and tries to go on: nothing changes.
    assert await store.jobs.transition(job.id, JobStatus.QUEUED, JobStatus.SUBMITTING, holder="paused") is None
    await store.jobs.reschedule(job.id, clock() + 999, holder="paused")
    unchanged = await store.jobs.get(job.id)
    assert unchanged is not None
    assert unchanged.status is JobStatus.QUEUED
    assert unchanged.next_poll_at == job.next_poll_at

    moved = await store.jobs.transition(job.id, JobStatus.QUEUED, JobStatus.SUBMITTING, holder="alive")
    assert moved is not None
    assert moved.status is JobStatus.SUBMITTING
    # Without a holder (a member's Cancel through a gateway) the compare-and-set on the status alone decides.
    assert await store.jobs.transition(job.id, JobStatus.QUEUED, JobStatus.CANCELLED) is None


async def test_one_process_claims_a_thread_step_until_it_ends_or_runs_out(store: Store, clock: FakeClock) -> None:
    job = await make(store)
    await store.jobs.update_fields(job.id, status_message_id=555)
    assert await store.jobs.claim_thread(job.id, "a", lease_seconds=LEASE) is True
    assert await store.jobs.claim_thread(job.id, "b", lease_seconds=LEASE) is False
    assert await store.jobs.claim_thread(job.id, "a", lease_seconds=LEASE) is True  # renewed by its holder
    clock.advance(LEASE)
    assert await store.jobs.claim_thread(job.id, "b", lease_seconds=LEASE) is True  # "a" went silent
    await store.jobs.record_thread(job.id, thread_id=555)
    assert await store.jobs.claim_thread(job.id, "a", lease_seconds=LEASE) is False  # nothing left to start

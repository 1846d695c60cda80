"""`python -m bot migrate --from sqlite:///…` as an operator runs it: every job (with its id), the ledger, settings,
characters, styles and meta land in an empty PostgreSQL database unchanged, new ids continue after the copied ones,
the database's rules still hold for the copied rows, and a target that already holds data is refused with nothing
written."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from pathlib import Path

import pytest

from bot.domain.cast import CastMember, Character
from bot.domain.clock import FakeClock
from bot.domain.jobs import FailureKind, JobStatus, Reference
from bot.domain.pools import Period
from bot.domain.styles import ChannelDefaults
from bot.storage import Backend, NewJob, QuotaRequest, Reserved, Store
from bot.storage.schema import load_migrations
from tests.pg import PASSWORD, PostgresCluster, RawRefused, RawSql

pytestmark = pytest.mark.timeout(120)

S = JobStatus
GUILD, OTHER_GUILD, MOD = 10, 20, 99
MEMBERS = (1, 2, 3)
REF = Reference("https://cdn.example/a.png", "a.png", "image/png", 1, 400, 400, attachment_id=5)
REQUEST = QuotaRequest(window_seconds=86_400, fallback_limit=50, max_active=50, role_ids=(7,))
PATH = [S.QUEUED, S.SUBMITTING, S.GENERATING, S.DOWNLOADING, S.DELIVERING, S.DELIVERED]


async def fill(store: Store, clock: FakeClock) -> list[int]:
    """A store with a bit of everything a real one accumulates. Returns the job ids."""
    ids: list[int] = []

    async def job(user: int, guild: int = GUILD, channel_id: int = 30, **kw: object) -> int:
        new = NewJob(guild, channel_id, user, f"prompt {len(ids)}", 5, "16:9", "m", (REF,), role_ids=(7,), **kw)  # type: ignore[arg-type]
        result = await store.jobs.create_reserved(new, REQUEST)
        assert isinstance(result, Reserved)
        ids.append(result.job.id)
        clock.advance(1.25)
        return result.job.id

    delivered = await job(1)
    for old, new in itertools.pairwise(PATH):
        await store.jobs.transition(delivered, old, new, generation_id="gen-1", delivered_message_id=555)
    failed = await job(1)
    await store.jobs.transition(failed, S.QUEUED, S.FAILED, failure_kind=FailureKind.PROVIDER_UNAVAILABLE)
    await job(1, retry_of=failed, free=True)
    generating = await job(2)
    await store.jobs.transition(generating, S.QUEUED, S.SUBMITTING)
    await store.jobs.transition(generating, S.SUBMITTING, S.GENERATING, generation_id="gen-2", thread_id=444)
    await store.jobs.claim_due("old-process", lease_seconds=30)
    cancelled = await job(3, guild=OTHER_GUILD)
    await store.jobs.transition(cancelled, S.QUEUED, S.CANCELLED, actor_id=3)
    await job(3)
    await store.quotas.grant(GUILD, 2, 3, actor_id=MOD, reason="contest")
    await store.quotas.set_member_limit(GUILD, 3, 9, actor_id=MOD)
    await store.quotas.block(GUILD, 1, actor_id=MOD, reason="spam")
    await store.quotas.reset(GUILD, 2, actor_id=MOD)
    await store.quotas.set_role_limit(GUILD, 7, 12, actor_id=MOD)
    await store.guilds.update(GUILD, actor_id=MOD, price_per_second=0.084, mod_log_channel_id=77, paused=True)
    await store.guilds.allow_channel(GUILD, 30, actor_id=MOD, reason="art")
    await store.quotas.refund(generating, "goodwill", actor_id=MOD)
    # Team channels: a budget drawn from (and refunded to), a job waiting for approval, a blocked word.
    await store.teams.set_pool(GUILD, 31, 4, Period.WEEK, actor_id=MOD)
    await store.teams.set_approvals(GUILD, 32, True, actor_id=MOD)
    await job(2, channel_id=31)
    refunded = await job(3, channel_id=31)
    await store.jobs.transition(refunded, S.QUEUED, S.CANCELLED, actor_id=3)
    await job(2, channel_id=32)
    await store.teams.add_word(GUILD, "Lava Lamp", actor_id=MOD)
    await store.set_meta("command_hash", "abc123")
    for sheet, owner, shared in ((900, 1, False), (910, MOD, True)):
        fox = Character(sheet, GUILD, owner, f"Fox {sheet}", shared, 30, (sheet + 1, sheet + 2), 0.0)
        await store.characters.create(fox, personal_limit=25, shared_limit=100)
    await store.styles.set(GUILD, "Noir", "black and white", actor_id=MOD)
    await store.styles.set_channel_defaults(ChannelDefaults(GUILD, 30, "Noir", 10, "9:16"), actor_id=MOD)
    cast = (CastMember("Fox 900", 30, 900, (901, 902), "https://f", ("https://a",)),)
    await job(2, characters=cast, style_name="Noir", style_text="black and white")
    return ids


async def snapshot(store: Store, ids: list[int]) -> dict[str, object]:
    return {
        "jobs": [await store.jobs.get(i) for i in ids],
        "leases": [await store.jobs.lease(i) for i in ids],
        "ledger": [await store.quotas.ledger(g) for g in (GUILD, OTHER_GUILD)],
        "guilds": [await store.guilds.get(g) for g in (GUILD, OTHER_GUILD)],
        "roles": await store.quotas.role_limits(GUILD),
        "quotas": [await store.quotas.status(g, m, REQUEST) for g in (GUILD, OTHER_GUILD) for m in MEMBERS],
        "usage": await store.quotas.usage(GUILD, 0, 2e10),
        "teams": [await store.teams.channel(GUILD, c) for c in (30, 31, 32)],
        "pool": await store.teams.pool_status(GUILD, 31),
        "pool_usage": await store.teams.pool_usage(GUILD, 0, 2e10),
        "words": await store.teams.words(GUILD),
        "meta": await store.get_meta("command_hash"),
        "characters": [await store.characters.visible_to(GUILD, m) for m in (1, MOD)],
        "styles": await store.styles.for_guild(GUILD),
        "defaults": await store.styles.channel_defaults(GUILD, 30),
    }


async def migrate(cwd: Path, database_url: str, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "AIML_", "DATABASE_"))}
    env.update(DISCORD_TOKEN="t", AIML_API_KEY="k", DATABASE_URL=database_url)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_a_sqlite_store_moves_into_postgresql_whole(tmp_path: Path, postgres: PostgresCluster) -> None:
    clock = FakeClock()
    source = tmp_path / "data" / "bot.db"
    async with await Store.open(source, clock=clock) as old:
        ids = await fill(old, clock)
        before = await snapshot(old, ids)
    target = postgres.new_database(migrated=False)  # migrate --from creates the schema too

    code, out = await migrate(tmp_path, target, "migrate", "--from", "sqlite:///data/bot.db")
    assert code == 0, out
    assert f" {len(ids)} jobs, " in out
    assert PASSWORD not in out
    assert "***" in out  # the target is named, its password hidden

    async with await Store.open(target, clock=clock) as new:
        assert await snapshot(new, ids) == before
        # New ids continue after the copied ones, in both tables with their own sequence.
        latest_ledger_id = max(e.id for rows in before["ledger"] for e in rows)  # type: ignore[attr-defined]
        fresh = await new.jobs.create_reserved(NewJob(GUILD, 30, 2, "new", 5, "16:9", "m", (REF,)), REQUEST)
        assert isinstance(fresh, Reserved)
        assert fresh.job.id == max(ids) + 1
        assert (await new.quotas.ledger(GUILD))[-1].id > latest_ledger_id
        # The copied rows are under the database's rules like any other: no second refund, no illegal move,
        # the ledger stays append-only, and a copied job carries on through the state machine.
        failed = ids[1]
        assert await new.quotas.refund(failed, "again") is False
        raw = RawSql(target)
        try:
            with pytest.raises(RawRefused, match="invalid job transition"):
                await raw.execute("UPDATE jobs SET status = 'queued' WHERE id = ?", failed)
            with pytest.raises(RawRefused, match="append-only"):
                await raw.execute("DELETE FROM quota_ledger")
            with pytest.raises(RawRefused, match="must start queued"):
                await raw.execute(
                    "INSERT INTO jobs (guild_id, channel_id, user_id, prompt, duration, aspect_ratio, model,"
                    ' "references", status, created_at, updated_at, delivery_nonce)'
                    " VALUES (1, 1, 1, 'p', 5, '16:9', 'm', '[]', 'delivered', 0, 0, 'n')"
                )
        finally:
            await raw.close()
        generating = ids[3]
        assert await new.jobs.transition(generating, S.GENERATING, S.DOWNLOADING) is not None
        # A new budget gets an id of its own, after the copied one's.
        copied = await new.teams.pool_status(GUILD, 31)
        added = await new.teams.set_pool(GUILD, 33, 1, Period.DAY, actor_id=MOD)
        assert copied is not None
        assert added is not None
        assert added.pool_id > copied.pool_id


async def test_a_target_holding_data_is_refused_and_left_alone(tmp_path: Path, postgres: PostgresCluster) -> None:
    clock = FakeClock()
    async with await Store.open(tmp_path / "bot.db", clock=clock) as old:
        await fill(old, clock)
    target = postgres.new_database()
    async with await Store.open(target, clock=clock) as new:
        await new.set_meta("already", "here")

    code, out = await migrate(tmp_path, target, "migrate", "--from", "sqlite:///bot.db")
    assert code == 1
    assert "already holds data (table meta)" in out
    assert "nothing was copied" in out
    assert "Traceback" not in out
    assert PASSWORD not in out
    async with await Store.open(target, clock=clock) as new:
        assert await new.jobs.unfinished() == []
        assert await new.quotas.ledger(GUILD) == []
        assert await new.get_meta("already") == "here"


async def test_wrong_kinds_of_database_are_explained(tmp_path: Path, postgres: PostgresCluster) -> None:
    target = postgres.new_database()
    code, out = await migrate(tmp_path, target, "migrate", "--from", "sqlite:///missing.db")
    assert (code, "there is no SQLite database at missing.db" in out) == (1, True)
    assert not (tmp_path / "missing.db").exists()  # not created by looking for it
    code, out = await migrate(tmp_path, target, "migrate", "--from", target)
    assert (code, "--from must name a SQLite database" in out) == (1, True)
    assert PASSWORD not in out
    code, out = await migrate(tmp_path, "sqlite:///other.db", "migrate", "--from", "sqlite:///missing.db")
    assert code == 1
    code, out = await migrate(tmp_path, target, "run", "--from", "sqlite:///bot.db")
    assert (code, "--from goes with the migrate command" in out) == (2, True)


async def test_migrate_brings_an_empty_postgresql_database_up_to_date(
    tmp_path: Path, postgres: PostgresCluster
) -> None:
    target = postgres.new_database(migrated=False)
    code, out = await migrate(tmp_path, target, "migrate")
    assert code == 0, out
    assert "postgresql://reelbot:***@127.0.0.1" in out
    assert "up to date" in out
    assert PASSWORD not in out
    raw = RawSql(target)
    try:
        [(version,)] = await raw.fetch("SELECT MAX(version) FROM schema_version")
    finally:
        await raw.close()
    assert version == len(load_migrations(Backend.POSTGRESQL))

"""The bot as operators run it: `python -m bot` as its own process against the simulators in this process.

Covers start-up errors, command sync policy, `migrate`, and a graceful SIGTERM with the job resumed by the
next start (delivered once, submitted once).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from bot.sim.aimlapi import JobScript
from bot.sim.wiring import settings_env
from tests.e2e_world import World

pytestmark = pytest.mark.timeout(90)

SETTING_NAMES = ("DISCORD_TOKEN", "AIML_API_KEY", "QUOTA_DEFAULT_LIMIT", "DATABASE_URL", "DEV_GUILD_ID")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES and not k.startswith(("AIML_", "DISCORD_"))}
    env.update(extra)
    return env


async def _run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_missing_token_is_one_line_naming_it_and_exit_2(tmp_path: Path) -> None:
    code, _, err = await _run([], tmp_path, _clean_env())
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "DISCORD_TOKEN" in lines[0]
    assert "Traceback" not in err


async def test_invalid_setting_is_named_and_secrets_are_not_echoed(tmp_path: Path) -> None:
    env = _clean_env(DISCORD_TOKEN="tok-SECRET-123", AIML_API_KEY="key-SECRET-456", QUOTA_DEFAULT_LIMIT="lots")
    code, out, err = await _run([], tmp_path, env)
    assert code == 2
    assert "QUOTA_DEFAULT_LIMIT" in err
    assert "SECRET" not in err + out


async def test_migrate_creates_the_database_folder_and_file(tmp_path: Path) -> None:
    env = _clean_env(DISCORD_TOKEN="t", AIML_API_KEY="k", DATABASE_URL="sqlite:///deep/folder/bot.db")
    code, out, _ = await _run(["migrate"], tmp_path, env)
    assert code == 0
    assert (tmp_path / "deep" / "folder" / "bot.db").is_file()
    assert "up to date" in out


async def test_global_sync_only_when_commands_changed_and_sync_forces_it(world: World) -> None:
    # Discord allows few command syncs per minute; discord.py waits out an exhausted bucket, which this test
    # does not need to measure.
    world.discord.rate_limits["PUT /applications/{application_id}/commands"] = (10, 60.0)
    await world.start_bot(dev_guild_id=None)
    assert world.discord.sync_count == 1
    assert {c["name"] for c in world.discord.commands()} >= {"video", "quota"}
    await world.stop_bot()

    await world.start_bot(dev_guild_id=None)  # same definitions: no second global sync
    assert world.discord.sync_count == 1
    await world.stop_bot()

    env = _clean_env(**settings_env(world.discord, world.aiml, world.tmp / "bot.db", dev_guild_id=""))
    code, out, _ = await _run(["sync"], world.tmp, env)
    assert code == 0, out
    assert world.discord.sync_count == 2


async def test_sigterm_exits_0_and_the_next_start_delivers_the_job_once(world: World) -> None:
    world.aiml.script_next(JobScript(queued_s=0.2, generating_s=4))
    env = _clean_env(**settings_env(world.discord, world.aiml, world.tmp / "bot.db"))

    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=world.tmp, env=env, stderr=asyncio.subprocess.DEVNULL
        )

    first = await start()
    await world.discord.wait_for(lambda: world.discord.identify_count >= 1, timeout=20)
    # The commands are synced in the background after connecting; members can only run synced commands.
    await world.discord.wait_for(lambda: world.discord.commands(world.guild.id), timeout=20)
    card = await (await world.video()).wait_response(timeout=5)
    await world.discord.wait_for(lambda: len(world.aiml.submissions) == 1, timeout=10)

    first.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(first.wait(), 10) == 0
    assert world.posts_with_files(card.id) == []  # it was still generating

    second = await start()
    try:
        await world.discord.wait_for(lambda: bool(world.posts_with_files(card.id)), timeout=30)
        await asyncio.sleep(1.5)  # give a wrong second delivery the chance to show up
        assert len(world.posts_with_files(card.id)) == 1
        assert len(world.aiml.submissions) == 1
    finally:
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 10) == 0

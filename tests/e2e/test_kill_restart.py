"""Promise 7 of docs/architecture.md: the bot killed with SIGKILL in each job state, then restarted.

The bot runs as operators run it (`python -m bot`, settings from the environment); the simulators run here, so
the test holds a job in the state it wants (a stalled submit, a long generation, a failing CDN, a failing Discord
post), kills the process, lets the world recover, and starts a new process. Every job must reach a terminal
state, no video may be posted twice, and the quota ledger must balance.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.domain.jobs import FailureKind, JobStatus
from bot.sim.aimlapi import AimlSimulator, JobScript
from bot.sim.discord import DiscordSimulator, SimMessage
from bot.sim.wiring import SIM_KEY, SIM_TOKEN, settings_env
from bot.storage import Store
from tests.e2e_world import image
from tests.services.test_faults_provider import assert_settled

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]
POSTS = "/channels/{channel_id}/messages"


@dataclass
class Rig:
    discord: DiscordSimulator
    aiml: AimlSimulator
    tmp: Path
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def db(self) -> Path:
        return self.tmp / "bot.db"

    async def start(self) -> None:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "HOME": str(self.tmp),
            **settings_env(self.discord, self.aiml, self.db, poll_interval_seconds=0.3),
        }
        identified = self.discord.identify_count
        self.starts += 1
        log = (self.tmp / f"bot-{self.starts}.log").open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=self.tmp, env=env, stdout=log, stderr=log
        )
        log.close()
        await self.discord.wait_for(
            lambda: self.discord.identify_count > identified and bool(self.discord.commands(self.discord.guild.id)),
            timeout=30,
        )

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no shutdown code runs
        await self.proc.wait()
        self.proc = None

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.proc = None

    def status(self) -> JobStatus | None:
        """The job's status as the database has it (read-only, while the bot may be writing)."""
        if not self.db.exists():
            return None
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT status FROM jobs ORDER BY id DESC LIMIT 1").fetchone()
        return JobStatus(row[0]) if row else None

    async def wait_status(self, *wanted: JobStatus, timeout: float = 30) -> JobStatus:
        for _ in range(int(timeout / 0.05)):
            status = self.status()
            if status in wanted:
                return status
            await asyncio.sleep(0.05)
        raise AssertionError(f"job never reached {wanted}; it is {self.status()}")

    async def wait_requeued(self, timeout: float = 30) -> None:
        """Wait until the job is queued again with a far-off next attempt (the submit's answer was written)."""
        for _ in range(int(timeout / 0.05)):
            with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5) as conn:
                row = conn.execute("SELECT status, next_poll_at FROM jobs ORDER BY id DESC LIMIT 1").fetchone()
            if row and row[0] == JobStatus.QUEUED and (row[1] or 0) > time.time() + 60:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the job never went back to the queue")

    async def video(self) -> SimMessage:
        guild = self.discord.guild
        handle = await self.discord.invoke_command(
            "video",
            user_id=int(guild.member_ids[0]),
            channel_id=int(guild.text_channel_id),
            options={"prompt": "the fox from image 1 runs"},
            attachments={"image1": image("fox.png")},
        )
        return await handle.wait_response(timeout=10)

    def files_in(self, card: SimMessage) -> list[SimMessage]:
        return [m for m in self.discord.messages(card.id) if m.attachments]

    async def settle_and_check(self) -> None:
        await self.stop()
        async with await Store.open(self.db) as store:
            await assert_settled(store, guilds=(self.discord.guild.id,))


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    discord_sim = DiscordSimulator(token=SIM_TOKEN)
    aiml = AimlSimulator(key=SIM_KEY, default_script=JobScript(queued_s=0.2, generating_s=0.8))
    await discord_sim.start()
    await aiml.start()
    r = Rig(discord_sim, aiml, tmp_path)
    try:
        yield r
    finally:
        await r.stop()
        await aiml.stop()
        await discord_sim.stop()


async def test_killed_while_queued_submits_once_after_restart_and_delivers(rig: Rig) -> None:
    # The provider is busy: the job goes back to the queue with a long retry-after and waits there.
    rig.aiml.script_next(JobScript(submit_status=429, submit_retry_after=600))
    await rig.start()
    card = await rig.video()
    await rig.discord.wait_for(lambda: any(r.method == "POST" for r in rig.aiml.requests), timeout=10)
    await rig.wait_requeued()  # back in the queue after the 429, not still mid-submit
    await rig.kill()

    await rig.start()  # recovery makes the job due at once
    await rig.discord.wait_for(lambda: bool(rig.files_in(card)), timeout=30)
    assert len(rig.files_in(card)) == 1
    assert len(rig.aiml.generations) == 1
    await rig.settle_and_check()


async def test_killed_while_submitting_is_never_resubmitted_and_is_refunded(rig: Rig) -> None:
    rig.aiml.script_next(JobScript(submit_delay_s=30))  # the submit hangs at the provider
    await rig.start()
    card = await rig.video()
    await rig.wait_status(JobStatus.SUBMITTING)
    await rig.kill()

    await rig.start()
    assert await rig.wait_status(JobStatus.FAILED) is JobStatus.FAILED
    told = await rig.discord.wait_for(
        lambda: next((m for m in rig.discord.messages(card.id) if "did not produce a video" in m.content), None),
        timeout=15,
    )
    assert "refunded" in told.content
    assert sum(1 for r in rig.aiml.requests if r.method == "POST") <= 1  # never a second paid POST
    assert rig.files_in(card) == []
    async with await Store.open(rig.db) as store:
        [job] = await store.jobs.list_for_user(rig.discord.guild.id, int(rig.discord.guild.member_ids[0]))
        assert job.failure_kind is FailureKind.SUBMIT_UNCERTAIN
    await rig.settle_and_check()


async def test_killed_while_generating_resumes_polling_and_delivers_once(rig: Rig) -> None:
    rig.aiml.script_next(JobScript(queued_s=0.5, generating_s=4.0))
    await rig.start()
    card = await rig.video()
    await rig.wait_status(JobStatus.GENERATING)
    await rig.kill()

    await rig.start()
    await rig.discord.wait_for(lambda: bool(rig.files_in(card)), timeout=30)
    await asyncio.sleep(0.5)
    assert len(rig.files_in(card)) == 1
    assert len(rig.aiml.generations) == 1
    await rig.settle_and_check()


async def test_killed_while_downloading_downloads_again_and_delivers_once(rig: Rig) -> None:
    script = JobScript(queued_s=0.2, generating_s=0.5, video_status=503)  # the CDN fails: stuck downloading
    rig.aiml.script_next(script)
    await rig.start()
    card = await rig.video()
    await rig.wait_status(JobStatus.DOWNLOADING)
    await rig.kill()

    script.video_status = None  # the CDN recovers while the bot is down
    await rig.start()
    await rig.discord.wait_for(lambda: bool(rig.files_in(card)), timeout=30)
    await asyncio.sleep(0.5)
    [post] = rig.files_in(card)
    [generation] = rig.aiml.generations
    assert bytes(post.attachments[0].data) == rig.aiml.video_bytes(generation)
    await rig.settle_and_check()


async def test_killed_while_delivering_posts_exactly_once(rig: Rig) -> None:
    await rig.start()
    rig.discord.inject_fault("POST", POSTS, 503, count=1000)  # Discord keeps failing the post
    card = await rig.video()
    await rig.wait_status(JobStatus.DELIVERING)
    await asyncio.sleep(0.3)
    await rig.kill()

    rig.discord.ratelimiter.faults.clear()
    await rig.start()
    await rig.wait_status(JobStatus.DELIVERED)
    await asyncio.sleep(0.5)
    assert len(rig.files_in(card)) == 1
    await rig.settle_and_check()


async def test_killed_twice_across_states_still_ends_with_one_video(rig: Rig) -> None:
    script = JobScript(queued_s=0.3, generating_s=3.0, video_status=503)
    rig.aiml.script_next(script)
    await rig.start()
    card = await rig.video()
    await rig.wait_status(JobStatus.GENERATING)
    await rig.kill()
    await rig.start()
    await rig.wait_status(JobStatus.DOWNLOADING)
    await rig.kill()
    script.video_status = None
    await rig.start()
    await rig.discord.wait_for(lambda: bool(rig.files_in(card)), timeout=30)
    await asyncio.sleep(0.5)
    assert len(rig.files_in(card)) == 1
    await rig.settle_and_check()

"""The end-to-end world: both simulators on 127.0.0.1 and a real Reelbot (discord.py, SQLite, poller) between.

Tests drive it the way members do: through `/video` and `/quota` invoked on the Discord simulator, reading what
members would see there, and what the provider received from the AI/ML API simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bot.app import Reelbot
from bot.runner import assemble
from bot.settings import Settings
from bot.sim.aimlapi import AimlSimulator, JobScript
from bot.sim.discord import AttachmentSpec, DiscordSimulator, SimMessage
from bot.sim.images import make_png
from bot.sim.wiring import SIM_KEY, SIM_TOKEN, simulated_settings

FAST = JobScript(queued_s=0.1, generating_s=0.6)


@cache
def png(width: int, height: int) -> bytes:
    return make_png(width, height)


def image(name: str = "ref.png", width: int = 1024, height: int = 768, **kwargs: Any) -> AttachmentSpec:
    kwargs.setdefault("content_type", "image/png")
    return AttachmentSpec(name, data=png(min(width, 64), min(height, 64)), width=width, height=height, **kwargs)


@dataclass
class World:
    discord: DiscordSimulator
    aiml: AimlSimulator
    tmp: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    bot: Reelbot | None = None
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    _task: asyncio.Task[None] | None = None

    @property
    def guild(self) -> Any:
        return self.discord.guild

    @property
    def member(self) -> int:
        return int(self.guild.member_ids[0])

    @property
    def channel(self) -> int:
        return int(self.guild.text_channel_id)

    def settings(self, **overrides: Any) -> Settings:
        return simulated_settings(self.discord, self.aiml, self.tmp / "bot.db", **{**self.overrides, **overrides})

    async def start_bot(self, **overrides: Any) -> Reelbot:
        bot = await self._stack.enter_async_context(assemble(self.settings(**overrides)))
        self.bot = bot
        self._task = asyncio.create_task(bot.start(SIM_TOKEN))
        await asyncio.wait_for(bot.wait_until_ready(), 15)
        return bot

    async def stop_bot(self) -> None:
        if self.bot is not None:
            await self.bot.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self._stack.aclose()
        self.bot, self._task = None, None

    async def video(
        self,
        prompt: str = "the fox from image 1 runs through the forest of image 2",
        *,
        user_id: int | None = None,
        channel_id: int | None = None,
        images: dict[str, AttachmentSpec] | None = None,
        **options: Any,
    ) -> Any:
        if images is None:
            images = {"image1": image("fox.png"), "image2": image("forest.png", 960, 960)}
        return await self.discord.invoke_command(
            "video",
            user_id=user_id or self.member,
            channel_id=channel_id or self.channel,
            options={"prompt": prompt, **options},
            attachments=images,
        )

    async def mod(self, subcommand: str, user_id: int | None = None, **options: Any) -> str:
        """Run `/videomod <subcommand>` as the server's moderator (or `user_id`) here; the private answer's text."""
        handle = await self.discord.invoke_command(
            "videomod",
            subcommand=subcommand,
            user_id=user_id or self.guild.moderator_id,
            channel_id=self.channel,
            options=options,
        )
        reply = await handle.wait_response(timeout=5)
        assert handle.ephemeral
        return str(reply.content)

    async def quota_text(self, user_id: int | None = None) -> str:
        handle = await self.discord.invoke_command("quota", user_id=user_id or self.member, channel_id=self.channel)
        reply = await handle.wait_response(timeout=5)
        assert handle.ephemeral
        return str(reply.content)

    def thread_of(self, card: SimMessage) -> Any:
        for thread in self.discord.threads(self.channel):
            if thread.id == card.id:
                return thread
        return None

    def posts_with_files(self, channel_id: int) -> list[SimMessage]:
        return [m for m in self.discord.messages(channel_id) if m.attachments]

    async def wait_for_text(self, channel_id: int, text: str, timeout: float = 15) -> SimMessage:
        def found() -> SimMessage | None:
            return next((m for m in self.discord.messages(channel_id) if text in m.content), None)

        await self.discord.wait_for(lambda: found() is not None, timeout=timeout)
        message = found()
        assert message is not None
        return message


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    discord_sim = DiscordSimulator(token=SIM_TOKEN)
    aiml = AimlSimulator(key=SIM_KEY, default_script=FAST)
    await discord_sim.start()
    await aiml.start()
    w = World(discord=discord_sim, aiml=aiml, tmp=tmp_path)
    try:
        yield w
    finally:
        await w.stop_bot()
        await aiml.stop()
        await discord_sim.stop()

"""A minimal discord.py 2.7 bot for the simulator's tests, and helpers to run one against a simulator.

The bot has a `/video` command shaped like Reelbot's (prompt + two attachments): it defers, downloads both
attachments from the CDN, edits the original response, starts a thread on it and posts a file into the thread.
Everything it observes is recorded on `bot.seen` so tests can assert on the client's side too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bot.discord_endpoints import point_discord_at
from bot.sim.discord import DiscordSimulator

RESULT_BYTES = 1024 * 1024


class SimTestBot(commands.Bot):
    """Records what it sees; `/video` runs the whole delivery flow."""

    def __init__(self, guild_id: int, *, sync_global: bool = False, result_size: int = RESULT_BYTES) -> None:
        intents = discord.Intents.default()
        super().__init__(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
        self.guild_id = guild_id
        self.sync_global = sync_global
        self.result_size = result_size
        self.seen: dict[str, Any] = {"errors": []}
        self.delay_before_ack = 0.0
        self.ready_event = asyncio.Event()
        self._register()

    def _register(self) -> None:
        bot = self

        @app_commands.command(name="video", description="Render a video from reference images")
        @app_commands.describe(prompt="What to render", image1="First image", image2="Second image")
        async def video(
            interaction: discord.Interaction,
            prompt: str,
            image1: discord.Attachment,
            image2: discord.Attachment | None = None,
            duration: int = 5,
        ) -> None:
            try:
                if bot.delay_before_ack:
                    await asyncio.sleep(bot.delay_before_ack)
                await interaction.response.defer(thinking=True)
                bot.seen["filesize_limit"] = interaction.filesize_limit
                bot.seen["app_permissions"] = interaction.app_permissions.value
                images = [image1] + ([image2] if image2 else [])
                bot.seen["images"] = [(a.filename, a.content_type, a.size, a.width, a.height) for a in images]
                bot.seen["image_bytes"] = [await a.read() for a in images]
                msg = await interaction.edit_original_response(content=f"Queued: {prompt} ({duration}s)")
                thread = await msg.create_thread(name=f"video: {prompt}"[:100])
                bot.seen["thread_id"] = thread.id
                data = bytes(range(256)) * (bot.result_size // 256)
                sent = await thread.send(content="done", file=discord.File(__import__("io").BytesIO(data), "out.mp4"))
                bot.seen["sent_id"] = sent.id
            except Exception as exc:  # recorded for the test to assert on
                bot.seen["errors"].append(exc)
                raise

        @app_commands.command(name="ping", description="Reply at once")
        @app_commands.describe(secret="Reply only to me")
        async def ping(interaction: discord.Interaction, secret: bool = False) -> None:
            bot.seen["ping_interaction"] = interaction
            try:
                if bot.delay_before_ack:
                    await asyncio.sleep(bot.delay_before_ack)
                await interaction.response.send_message("pong", ephemeral=secret)
            except Exception as exc:
                bot.seen["errors"].append(exc)
                raise

        @app_commands.command(name="menu", description="A message with a button")
        async def menu(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("Pick one", view=MenuView(bot))

        @app_commands.command(name="rename", description="Ask for a name in a modal")
        async def rename(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(NameModal(bot))

        @app_commands.command(name="late", description="Defer, then answer through a followup")
        async def late(interaction: discord.Interaction) -> None:
            await interaction.response.defer()
            await interaction.followup.send("first followup")
            await interaction.followup.send("second followup")

        commands_: list[app_commands.Command[Any, Any, None]] = [video, ping, menu, rename, late]
        for cmd in commands_:
            self.tree.add_command(cmd)

    async def setup_hook(self) -> None:
        if self.sync_global:
            self.seen["synced"] = await self.tree.sync()
        else:
            guild = discord.Object(self.guild_id)
            self.tree.copy_global_to(guild=guild)
            self.seen["synced"] = await self.tree.sync(guild=guild)

    async def on_ready(self) -> None:
        self.ready_event.set()


class MenuView(discord.ui.View):
    """One button; clicking it edits the message (callback type 7)."""

    def __init__(self, bot: SimTestBot) -> None:
        super().__init__(timeout=None)
        self.bot = bot

    @discord.ui.button(label="Go", custom_id="menu:go")
    async def go(self, interaction: discord.Interaction, button: discord.ui.Button[MenuView]) -> None:
        self.bot.seen["clicked_by"] = interaction.user.id
        await interaction.response.edit_message(content="Going", view=None)


class NameModal(discord.ui.Modal, title="Rename"):
    """A one-field modal; the submission is answered ephemerally."""

    name: discord.ui.TextInput[NameModal] = discord.ui.TextInput(label="New name", custom_id="rename:name")

    def __init__(self, bot: SimTestBot) -> None:
        super().__init__(custom_id="rename:modal")
        self.bot = bot

    async def on_submit(self, interaction: discord.Interaction) -> None:
        self.bot.seen["submitted_name"] = self.name.value
        await interaction.response.send_message(f"Renamed to {self.name.value}", ephemeral=True)


@contextlib.asynccontextmanager
async def running_bot(sim: DiscordSimulator, bot: commands.Bot, token: str | None = None) -> AsyncIterator[None]:
    """Point discord.py at the simulator, start the bot, wait for READY; close it afterwards."""
    point_discord_at(sim.rest_url, sim.gateway_url)
    task = asyncio.create_task(bot.start(token or sim.token))
    try:
        await sim.wait_until_ready(timeout=10)
        yield
    finally:
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError, discord.DiscordException):
            await asyncio.wait_for(task, timeout=5)


@pytest.fixture(name="sim")
async def sim_fixture() -> AsyncIterator[DiscordSimulator]:
    """A started simulator with the default guild."""
    simulator = DiscordSimulator(token="TOKEN")
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture(name="live")
async def live_fixture(sim: DiscordSimulator) -> AsyncIterator[tuple[DiscordSimulator, SimTestBot]]:
    """The simulator with a logged-in SimTestBot whose commands are synced to the default guild."""
    bot = SimTestBot(sim.guild.id)
    async with running_bot(sim, bot):
        await asyncio.wait_for(bot.ready_event.wait(), timeout=5)
        yield sim, bot

"""The bot: a `commands.Bot` handed its parts by `bot.runner.assemble` (constructor injection), the card
buttons registered and the extensions (cogs) loaded in `setup_hook`, the poller owned here (not by a cog), and
one error handler for every slash command.

Cogs and buttons reach the services through the bot (`bot.intake`, `bot.card_controls`, `bot.moderators`,
`bot.characters`, `bot.styles`);
none of them touches the store or another cog.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.card_buttons import DYNAMIC_ITEMS, card_view
from bot.chat import DiscordChat
from bot.commands_sync import sync_commands
from bot.discord_media import DiscordMedia
from bot.discord_ui import reply_ephemeral
from bot.metrics import Metrics
from bot.services.card_controls import CardControls
from bot.services.characters import CharacterLibrary
from bot.services.intake import Intake
from bot.services.moderator_actions import ModeratorActions
from bot.services.poller import Poller
from bot.services.ports import ChatPort
from bot.services.styles import StyleBook
from bot.services.tasks import BackgroundTasks
from bot.settings import Settings
from bot.storage import Store
from bot.traffic.discord import DiscordScheduler

__all__ = ["EXTENSIONS", "Reelbot", "Role", "StartupOptions"]

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.video", "cogs.quota", "cogs.jobs", "cogs.moderation", "cogs.modlog", "cogs.characters")


class Role(StrEnum):
    """What one process of a deployment does (`python -m bot [gateway|worker]`)."""

    ALL = "all"
    """Everything in one process: the gateway shards, the answers to interactions, and the job work."""
    GATEWAY = "gateway"
    """The gateway shards and the answers to interactions (commands, buttons, forms); writes jobs, works none."""
    WORKER = "worker"
    """The job work over REST (submit, poll, download, thread, deliver, card updates); no gateway connection."""


@dataclass
class StartupOptions:
    sync_commands: bool = True
    start_poller: bool = True
    role: Role = Role.ALL

    @classmethod
    def for_role(cls, role: Role) -> StartupOptions:
        """A gateway process runs no poller; a worker does not push slash commands (gateways do)."""
        return cls(sync_commands=role is not Role.WORKER, start_poller=role is not Role.GATEWAY, role=role)


# Reelbot never joins voice: silence discord.py's start-up warnings about the missing voice libraries.
discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False


class Reelbot(commands.AutoShardedBot):
    """The bot. Sharded however many shards it runs (`SHARD_COUNT`/`SHARD_IDS`; by default the count Discord
    recommends, all in this process); a worker logs in over REST only and never connects to the gateway."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        intake: Intake,
        card_controls: CardControls,
        moderators: ModeratorActions,
        characters: CharacterLibrary,
        styles: StyleBook,
        poller_factory: Callable[[ChatPort], Poller],
        options: StartupOptions | None = None,
        metrics: Metrics | None = None,
        traffic: DiscordScheduler | None = None,
    ) -> None:
        # Only the guilds intent: the guild cache gives channels, roles and the boost tier (upload limit).
        # No privileged intents; interactions carry the member and their roles.
        intents = discord.Intents.none()
        intents.guilds = True
        extra: dict[str, Any] = {"http_trace": traffic.trace_config()} if traffic is not None else {}
        if settings.shard_count is not None:
            extra.update(shard_count=settings.shard_count, shard_ids=settings.shards)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            **extra,
        )
        # Every bot-token REST request waits for its turn in the scheduler (interaction responses never do).
        self.traffic = traffic
        if traffic is not None:
            traffic.install(self.http)
        self.settings = settings
        self.store = store  # for the operator's side (health checks, metrics, command sync), never for cogs
        self.intake = intake
        self.card_controls = card_controls
        self.moderators = moderators
        self.characters = characters
        self.styles = styles
        self.metrics = metrics or Metrics()  # scraped only when METRICS_PORT is set
        self.chat = DiscordChat(self, card_view, traffic)
        self.media = DiscordMedia(self, self.chat)
        """Fresh, checked URLs for a job's images (character sheets, members' uploads)."""
        self.poller: Poller = poller_factory(self.chat)
        # Status changes become the `job_changed` event, so cogs (mod-log, card buttons) can follow jobs.
        self.poller.add_listener(self._dispatch_job_changed)
        self.options = options or StartupOptions()
        self._tasks = BackgroundTasks(log)
        self.tree.on_error = self.on_app_command_error  # type: ignore[method-assign]

    def dispatch(self, event_name: str, /, *args: Any, **kwargs: Any) -> None:
        if event_name == "interaction" and self.traffic is not None:
            # Called as the gateway event is parsed, before any handler runs: background work steps aside.
            self.traffic.foreground.arrived()
        super().dispatch(event_name, *args, **kwargs)

    async def members_first(self) -> None:
        """Wait while other members' interactions are still arriving (at most a second): called by a command that
        has answered and has slower work left, so that in a crowd every member is answered before anyone's card."""
        if self.traffic is not None:
            await self.traffic.foreground.wait()

    async def _dispatch_job_changed(self, job: Any) -> None:
        self.dispatch("job_changed", job)

    async def setup_hook(self) -> None:
        # The buttons belong to the bot, not to a cog: every card gets them, whatever extensions are loaded.
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        # Both run in the background: a rate-limited command sync (discord.py waits out an exhausted bucket)
        # must never hold back the gateway connection or the delivery of jobs that are already running.
        if self.options.sync_commands:
            self._tasks.spawn(self._sync(), name="reelbot-command-sync")
        if self.options.start_poller:
            self._tasks.spawn(self._run_poller(), name="reelbot-poller")

    async def _sync(self) -> None:
        await sync_commands(self.tree, self.store, dev_guild_id=self.settings.dev_guild_id)

    async def _run_poller(self) -> None:
        if self.options.role is not Role.WORKER:
            # The guild cache gives upload limits without asking Discord (a worker asks over REST instead).
            await self.wait_until_ready()
        try:
            await self.poller.recover()
            await self.poller.run()
        except Exception:  # not CancelledError (a BaseException): shutdown cancels this task on purpose
            log.critical("the poller stopped unexpectedly", exc_info=True)

    async def close(self) -> None:
        await self.poller.stop()
        await self._tasks.cancel_all(within=5.0)
        if self.traffic is not None:
            await self.traffic.close(grace=3.0)  # the cards' last edits
        await super().close()

    async def on_app_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        """The one place where errors become words: friendly and short for the member, detailed in the log."""
        if isinstance(error, app_commands.MissingPermissions | app_commands.CheckFailure):
            text = str(error) if isinstance(error, app_commands.CheckFailure) else "You are not allowed to do that."
            message = text or "You are not allowed to use this command."
        elif isinstance(error, app_commands.TransformerError):
            message = f"`{error.value!s:.50}` is not a valid value here. Check the option and try again."
        else:
            reference = secrets.token_hex(3)
            log.error(
                "command %s failed (reference %s)",
                interaction.command.qualified_name if interaction.command else "?",
                reference,
                exc_info=error.original if isinstance(error, app_commands.CommandInvokeError) else error,
            )
            message = (
                f"Something went wrong on the bot's side (reference `{reference}`). "
                "Any video you were charged for will still be finished or refunded."
            )
        try:
            await reply_ephemeral(interaction, message)
        except discord.HTTPException:
            log.warning("could not tell the member about an error (interaction %s)", interaction.id)

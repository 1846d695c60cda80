"""`SimCore`: the simulator's shared state, its clock, waiting on state changes, and read-only lookups.

The simulator is layered: `SimCore` (this module) holds the state; `StateChanges` (mutations.py) changes it and
emits gateway events; `Controls` (controls.py) and `Invocations` (invocations.py) are the test-facing API on top;
`DiscordSimulator` (server.py) adds the aiohttp server. Every state change calls `notify()`, which wakes
`wait_for` predicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from .app import API_PREFIX, Stall
from .cdn import Cdn
from .gateway import GatewayHub
from .guilds import default_guild
from .handle import InteractionHandle
from .ratelimit import RateLimiter
from .state import (
    BOT_ROLE_PERMISSIONS,
    ApiError,
    RecordedRequest,
    SimAttachment,
    SimChannel,
    SimGuild,
    SimMember,
    SimMessage,
    SimRole,
    SimThread,
    SimUser,
    SnowflakeGenerator,
)

__all__ = ["BOT_USER_ID", "SimCore"]

BOT_USER_ID = 1_325_000_000_000_000_500


class SimCore:
    """State, clock and lookups shared by every part of the simulator (see the module docstring)."""

    def __init__(
        self,
        token: str = "TOKEN",  # noqa: S107 - the simulator's fixture token, not a secret
        guilds: list[SimGuild] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_name: str = "Reelbot",
        shards: int = 1,
        max_concurrency: int = 1,
    ) -> None:
        self.token = token
        self.host = host
        self.port = port
        self.clock_offset = 0.0
        self.token_lifetime = 900.0
        self.interaction_deadline = 3.0
        self._ids = SnowflakeGenerator()
        self.application_id = BOT_USER_ID
        self.bot_user_id = BOT_USER_ID
        self.bot_user = SimUser(BOT_USER_ID, bot_name.lower(), bot=True, global_name=bot_name)
        self.guilds: list[SimGuild] = list(guilds) if guilds else [default_guild()]
        self.guild_by_id: dict[int, SimGuild] = {}
        self.users: dict[int, SimUser] = {self.bot_user.id: self.bot_user}
        self.channels: dict[int, SimChannel] = {}
        self._messages: dict[int, SimMessage] = {}
        self._channel_messages: dict[int, list[int]] = defaultdict(list)
        self.attachments: dict[int, SimAttachment] = {}
        self.interactions: dict[int, InteractionHandle] = {}
        self.interactions_by_token: dict[str, InteractionHandle] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.sync_count = 0
        self.nonces: dict[tuple[int, str], tuple[float, int]] = {}
        self.nonce_hits = 0
        self.requests: list[RecordedRequest] = []
        self.cdn = Cdn(self)
        self.gateway = GatewayHub(self, shards=shards, max_concurrency=max_concurrency)
        self.ratelimiter = RateLimiter()
        self.stalls: list[Stall] = []
        self.stopping = asyncio.Event()  # set by stop(): held requests and other waits end early
        self._waiters: list[asyncio.Future[None]] = []
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Uploaded files are spooled here; the directory goes away with the simulator object (not at stop(),
        # so tests can still read attachment bytes after stopping it).
        self._spool = tempfile.TemporaryDirectory(prefix="reelbot-discord-sim-")
        self.spool_dir = Path(self._spool.name)
        for guild in self.guilds:
            self._adopt_guild(guild)

    def _adopt_guild(self, guild: SimGuild) -> None:
        """Index a guild and add the bot as a member with its managed role."""
        self.guild_by_id[guild.id] = guild
        if self.bot_user.id not in guild.members:
            role_id = guild.bot_role_id or guild.id + 7
            guild.roles.setdefault(
                role_id,
                SimRole(role_id, self.bot_user.global_name or "bot", BOT_ROLE_PERMISSIONS, position=1, managed=True),
            )
            guild.bot_role_id = role_id
            guild.members[self.bot_user.id] = SimMember(self.bot_user, roles=[role_id])
        for member in guild.members.values():
            self.users[member.id] = member.user
        for channel in guild.channels.values():
            self.channels[channel.id] = channel

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT` (the CDN lives here)."""
        return f"http://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """REST base for `point_discord_at`."""
        return f"{self.base_url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """Gateway URL for `point_discord_at` (also sent as `resume_gateway_url`)."""
        return f"ws://{self.host}:{self.port}/gateway"

    @property
    def guild(self) -> SimGuild:
        """The first guild."""
        return self.guilds[0]

    @property
    def rate_limits(self) -> dict[str, tuple[int, float]]:
        """Per-route bucket config `{"METHOD /template": (limit, per_seconds)}`, `"*"` for every other route.
        Mutate it in place; clear it to disable per-route limits."""
        return self.ratelimiter.config

    @property
    def identify_count(self) -> int:
        """How many IDENTIFYs the gateway received (each fresh login or re-identify counts)."""
        return self.gateway.identify_count

    def now(self) -> float:
        """The simulator's clock: wall time plus `clock_offset`."""
        return time.time() + self.clock_offset

    def new_id(self) -> int:
        """A fresh snowflake at the simulator's current time."""
        return self._ids.next(self.now())

    # -- waiting -----------------------------------------------------------------------------------------------

    def notify(self) -> None:
        """Wake every `wait_for` so it re-evaluates its condition."""
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 10.0) -> Any:  # noqa: ASYNC109
        """Wait until `condition()` is truthy (re-checked on every state change); returns its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = condition()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout} s")
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, timeout=min(remaining, 0.5))

    async def wait_until_ready(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until a client identified and received READY and its GUILD_CREATEs."""
        await self.wait_for(lambda: self.gateway.ready_count > 0, timeout=timeout)

    # -- reading state -------------------------------------------------------------------------------------------

    def commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """The synced command schema: global when `guild_id` is None, else that guild's."""
        if guild_id is None:
            return list(self.global_commands)
        return list(self.guild_commands.get(guild_id, []))

    def messages(self, channel_id: int) -> list[SimMessage]:
        """Messages visible to every member of the channel, oldest first (ephemeral ones excluded)."""
        found = (self._messages.get(mid) for mid in self._channel_messages.get(channel_id, []))
        return [m for m in found if m is not None and not m.ephemeral]

    def message(self, message_id: int, *, include_ephemeral: bool = False) -> SimMessage | None:
        """A message by id (None if deleted, or ephemeral unless `include_ephemeral`)."""
        msg = self._messages.get(message_id)
        if msg is None or (msg.ephemeral and not include_ephemeral):
            return None
        return msg

    def threads(self, parent_channel_id: int) -> list[SimThread]:
        """Snapshots of the threads under a channel (archived ones included), oldest first."""
        return [
            SimThread(c.id, c.name, parent_channel_id, c.owner_id, c.archived, c.locked, c.message_id, c.type)
            for c in sorted(self.channels.values(), key=lambda c: c.id)
            if c.is_thread and c.parent_id == parent_channel_id
        ]

    def requests_to(self, route_substring: str, method: str | None = None) -> list[RecordedRequest]:
        """Logged requests whose route template or path contains the substring (optionally one method)."""
        return [
            r
            for r in self.requests
            if (route_substring in r.route or route_substring in r.path) and (method is None or r.method == method)
        ]

    def locate_channel(self, channel_id: int) -> tuple[SimGuild, SimChannel]:
        """The guild and channel for an id (ApiError 404/10003 if unknown)."""
        channel = self.channels.get(channel_id)
        if channel is None or channel.guild_id not in self.guild_by_id:
            raise ApiError(404, 10003, "Unknown Channel")
        return self.guild_by_id[channel.guild_id], channel

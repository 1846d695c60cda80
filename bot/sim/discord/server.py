"""`DiscordSimulator`: the aiohttp server, the shared state, the test driver API and the controls.

One instance serves REST under `/api/v10`, the gateway at `/gateway` and the CDN at `/attachments/…`, all on
one 127.0.0.1 port. Every state change calls `notify()`, which wakes `wait_for` predicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from . import channels, interactions, rest
from .cdn import Cdn, get_attachment
from .driver import (
    InteractionHandle,
    SimError,
    build_command_interaction,
    build_component_interaction,
    build_modal_interaction,
)
from .gateway import GatewayHub, Intent, gateway_handler
from .http_util import BODY_KEY, SIM_KEY, error_response, json_response
from .payloads import channel_json, guild_update_json, member_json, message_json, role_json, thread_json
from .ratelimit import VIA, Fault, RateLimiter
from .state import (
    BOT_ROLE_PERMISSIONS,
    ApiError,
    AttachmentSpec,
    Overwrite,
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
    default_guild,
)

__all__ = ["DiscordSimulator"]

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
BOT_USER_ID = 1_325_000_000_000_000_500
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _needs_bot_auth(template: str) -> bool:
    """Discord checks `Authorization: Bot …` everywhere except interaction-token routes and GET /gateway."""
    return not (
        template.startswith("/interactions/")
        or template.startswith("/webhooks/{webhook_id}/{webhook_token}")
        or template == "/gateway"
    )


def _major(match_info: Any) -> str:
    # interaction_id: each interaction's callback is its own bucket (Discord exempts interaction routes from the
    # global limit); without it every callback of every member shared the "*" fallback bucket of 50 per second.
    for key in ("channel_id", "guild_id", "webhook_id", "interaction_id"):
        if key in match_info:
            extra = match_info.get("webhook_token", "") if key == "webhook_id" else ""
            return f"{key}:{match_info[key]}{extra}"
    return ""


class DiscordSimulator:
    """A local Discord (REST v10, gateway, CDN) for the real discord.py client. See the package docstring."""

    def __init__(
        self,
        token: str = "TOKEN",  # noqa: S107 - the simulator's fixture token, not a secret
        guilds: list[SimGuild] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_name: str = "Reelbot",
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
        self.gateway = GatewayHub(self)
        self.ratelimiter = RateLimiter()
        self._waiters: list[asyncio.Future[None]] = []
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Uploaded files are spooled here; the directory goes away with the simulator object (not at stop(),
        # so tests can still read attachment bytes after stopping it).
        self._spool = tempfile.TemporaryDirectory(prefix="reelbot-discord-sim-")
        self.spool_dir = Path(self._spool.name)
        for guild in self.guilds:
            self._adopt_guild(guild)

    # -- setup ---------------------------------------------------------------------------------------------

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

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=16 * 1024 * 1024)
        app[SIM_KEY] = self
        app.router.add_get("/gateway", gateway_handler)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", get_attachment)
        for method, template, handler in rest.ROUTES + channels.ROUTES + interactions.ROUTES:
            app.router.add_route(method, API_PREFIX + template, handler)
        return app

    async def start(self) -> None:
        """Start serving on host:port (port 0 picks a free one; read it back from `port`/`rest_url`)."""
        runner = web.AppRunner(self._build_app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        for addr in runner.addresses:
            if isinstance(addr, tuple):
                self.port = int(addr[1])
                break

    async def stop(self) -> None:
        """Close gateway sockets and stop the server."""
        await self.gateway.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for fut in self._waiters:
            if not fut.done():
                fut.cancel()
        self._waiters.clear()

    async def __aenter__(self) -> DiscordSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- HTTP middleware: log, auth, faults, rate limits, errors -----------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        canonical = resource.canonical if resource is not None else "(unmatched)"
        if canonical == "/gateway":
            return await handler(request)
        is_api = canonical.startswith(API_PREFIX)
        template = canonical[len(API_PREFIX) :] if is_api else canonical
        record = RecordedRequest(
            method=request.method,
            path=request.path.removeprefix(API_PREFIX) if is_api else request.path,
            route=template,
            query=dict(request.query),
            started=time.time(),
        )
        extra_headers: dict[str, str] = {}
        response: web.StreamResponse
        try:
            if is_api and _needs_bot_auth(template) and request.headers.get("Authorization") != f"Bot {self.token}":
                raise ApiError(401, 0, "401: Unauthorized")
            fault = self.ratelimiter.take_fault(request.method, template, record.path) if is_api else None
            if fault is not None:
                response = fault.response()
            else:
                limited = None
                if is_api and resource is not None:
                    exempt = template.startswith(("/interactions/", "/webhooks/"))
                    bucket, extra_headers, limited = self.ratelimiter.check(
                        f"{request.method} {template}", _major(request.match_info), global_exempt=exempt
                    )
                    record.bucket = bucket
                response = limited if limited is not None else await handler(request)
        except ApiError as err:
            response = error_response(err)
            record.error_code = err.code
        except web.HTTPException as exc:
            if is_api or resource is None:
                response = json_response({"message": f"{exc.status}: {exc.reason}", "code": 0}, status=exc.status)
            else:
                raise
        finally:
            # Drain what the handler did not read so the client receives our answer rather than a reset.
            with contextlib.suppress(Exception):
                while await request.content.readany():
                    pass
        if is_api:
            if "Via" not in response.headers and response.status != 429:
                response.headers["Via"] = VIA
            elif response.status == 429 and fault is None:
                response.headers.setdefault("Via", VIA)
            for key, value in extra_headers.items():
                response.headers.setdefault(key, value)
        record.status = response.status
        if isinstance(response, web.Response) and response.headers.get("Content-Type") == "application/json":
            body = response.body
            if isinstance(body, bytes | bytearray):
                record.response_json = json.loads(body)
        record.body_json = request.get(BODY_KEY)
        if isinstance(record.body_json, dict) and "files" in record.body_json and "payload_json" in record.body_json:
            record.files = record.body_json["files"]
            record.body_json = record.body_json["payload_json"]
        record.finished = time.time()
        self.requests.append(record)
        self.notify()
        return response

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

    # -- state changes (used by handlers and controls) ----------------------------------------------------------

    def _message_event(self, msg: SimMessage) -> dict[str, Any]:
        data = message_json(self, msg)
        if msg.guild_id is not None:
            data["guild_id"] = str(msg.guild_id)
            guild = self.guild_by_id.get(msg.guild_id)
            member = guild.members.get(msg.author_id) if guild else None
            if member is not None and msg.webhook_id is None:
                data["member"] = member_json(member, with_user=False)
        return data

    def add_message(self, msg: SimMessage) -> None:
        """Store a new message, update channel/thread counters, unarchive a thread, dispatch MESSAGE_CREATE."""
        self._messages[msg.id] = msg
        self._channel_messages[msg.channel_id].append(msg.id)
        channel = self.channels.get(msg.channel_id)
        if channel is not None and not msg.ephemeral:
            channel.last_message_id = msg.id
            if channel.is_thread:
                channel.message_count += 1
                channel.total_message_sent += 1
                if channel.archived:
                    # "The API will automatically unarchive a thread when sending a message in that thread".
                    channel.archived = False
                    channel.archive_timestamp = self.now()
                    self.thread_updated(channel)
        if not msg.ephemeral:
            self.gateway.dispatch(
                "MESSAGE_CREATE", self._message_event(msg), guild_id=msg.guild_id, intent=Intent.GUILD_MESSAGES
            )
        self.notify()

    def drop_attachment(self, att: SimAttachment) -> None:
        """Forget an attachment (its CDN URL then 404s) and delete its spooled file."""
        self.attachments.pop(att.id, None)
        if isinstance(att.content, Path):
            att.content.unlink(missing_ok=True)

    def message_updated(self, msg: SimMessage) -> None:
        """Dispatch MESSAGE_UPDATE for an edited message."""
        if not msg.ephemeral:
            self.gateway.dispatch(
                "MESSAGE_UPDATE", self._message_event(msg), guild_id=msg.guild_id, intent=Intent.GUILD_MESSAGES
            )
        self.notify()

    def delete_message(self, msg: SimMessage) -> None:
        """Remove a message and its attachments; dispatch MESSAGE_DELETE."""
        self._messages.pop(msg.id, None)
        with contextlib.suppress(ValueError):
            self._channel_messages[msg.channel_id].remove(msg.id)
        for att in msg.attachments:
            self.drop_attachment(att)
        if not msg.ephemeral:
            data: dict[str, Any] = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
            if msg.guild_id is not None:
                data["guild_id"] = str(msg.guild_id)
            self.gateway.dispatch("MESSAGE_DELETE", data, guild_id=msg.guild_id, intent=Intent.GUILD_MESSAGES)
        self.notify()

    def create_thread(
        self,
        guild: SimGuild,
        parent: SimChannel,
        *,
        thread_id: int,
        name: str,
        type: int,
        auto_archive_duration: int,
        message_id: int | None,
        applied_tags: list[int] | None = None,
    ) -> SimChannel:
        """Create a thread owned by the bot and dispatch THREAD_CREATE."""
        now = self.now()
        thread = SimChannel(
            id=thread_id,
            guild_id=guild.id,
            type=type,
            name=name,
            parent_id=parent.id,
            owner_id=self.bot_user.id,
            auto_archive_duration=auto_archive_duration,
            archive_timestamp=now,
            create_timestamp=now,
            message_id=message_id,
            applied_tags=list(applied_tags or []),
            member_ids={self.bot_user.id},
        )
        guild.channels[thread.id] = thread
        self.channels[thread.id] = thread
        data = thread_json(thread, me_id=self.bot_user.id) | {"newly_created": True}
        self.gateway.dispatch("THREAD_CREATE", data, guild_id=guild.id, intent=Intent.GUILDS)
        self.notify()
        return thread

    def thread_updated(self, thread: SimChannel) -> None:
        """Dispatch THREAD_UPDATE."""
        self.gateway.dispatch(
            "THREAD_UPDATE", thread_json(thread, me_id=self.bot_user.id), guild_id=thread.guild_id, intent=Intent.GUILDS
        )
        self.notify()

    def channel_updated(self, channel: SimChannel) -> None:
        """Dispatch CHANNEL_UPDATE (or THREAD_UPDATE)."""
        if channel.is_thread:
            self.thread_updated(channel)
            return
        self.gateway.dispatch("CHANNEL_UPDATE", channel_json(channel), guild_id=channel.guild_id, intent=Intent.GUILDS)
        self.notify()

    # -- driver ---------------------------------------------------------------------------------------------------

    def _dispatch_interaction(self, handle: InteractionHandle) -> InteractionHandle:
        handle.created_at = self.now()
        self.interactions[handle.id] = handle
        self.interactions_by_token[handle.token] = handle
        if not any(s.conn is not None for s in self.gateway.sessions.values()):
            log.warning("interaction %s dispatched with no gateway client connected", handle.id)
        self.gateway.dispatch("INTERACTION_CREATE", handle.payload, guild_id=handle.guild_id)
        self.notify()
        return handle

    async def invoke_command(
        self,
        name: str,
        *,
        user_id: int,
        channel_id: int,
        options: dict[str, Any] | None = None,
        attachments: dict[str, AttachmentSpec] | None = None,
        subcommand: str | None = None,
    ) -> InteractionHandle:
        """A member runs `/name` (optionally `/name subcommand` or `/name group subcommand`).

        Option types come from the synced schema; raises SimError where the Discord client would refuse."""
        handle = build_command_interaction(
            self,
            name,
            user_id=user_id,
            channel_id=channel_id,
            options=options,
            attachments=attachments,
            subcommand=subcommand,
        )
        return self._dispatch_interaction(handle)

    async def click_button(self, message_id: int, custom_id: str, *, user_id: int) -> InteractionHandle:
        """A member clicks a button on a message (ephemeral messages included)."""
        msg = self.message(message_id, include_ephemeral=True)
        if msg is None:
            raise SimError(f"message {message_id} does not exist")
        return self._dispatch_interaction(
            build_component_interaction(self, msg, custom_id, user_id=user_id, values=None)
        )

    async def select_option(
        self, message_id: int, custom_id: str, values: list[str], *, user_id: int
    ) -> InteractionHandle:
        """A member picks values in a select menu."""
        msg = self.message(message_id, include_ephemeral=True)
        if msg is None:
            raise SimError(f"message {message_id} does not exist")
        return self._dispatch_interaction(
            build_component_interaction(self, msg, custom_id, user_id=user_id, values=values)
        )

    async def submit_modal(
        self, custom_id: str, values: dict[str, Any], *, user_id: int, channel_id: int | None = None
    ) -> InteractionHandle:
        """A member submits the modal most recently shown to them with this custom_id."""
        handle = build_modal_interaction(self, custom_id, values, user_id=user_id, channel_id=channel_id)
        return self._dispatch_interaction(handle)

    # -- controls -------------------------------------------------------------------------------------------------

    def set_premium_tier(self, guild_id: int, tier: int) -> None:
        """Change the boost tier (and so the upload limit); dispatches GUILD_UPDATE."""
        guild = self.guild_by_id[guild_id]
        guild.premium_tier = tier
        self.gateway.dispatch("GUILD_UPDATE", guild_update_json(guild), guild_id=guild_id, intent=Intent.GUILDS)
        self.notify()

    def _set_overwrite(self, channel_id: int, target_id: int, kind: int, allow: int | None, deny: int | None) -> None:
        _, channel = self.locate_channel(channel_id)
        target = self.channels[channel.parent_id] if channel.is_thread and channel.parent_id else channel
        if allow is None and deny is None:
            target.overwrites.pop(target_id, None)
        else:
            target.overwrites[target_id] = Overwrite(target_id, kind, allow or 0, deny or 0)
        self.channel_updated(target)

    def set_bot_permissions(self, channel_id: int, allow: int | None = None, deny: int | None = None) -> None:
        """Set (or with both None remove) the bot's member overwrite on a channel (a thread's parent)."""
        self._set_overwrite(channel_id, self.bot_user.id, 1, allow, deny)

    def set_member_permissions(
        self, channel_id: int, user_id: int, allow: int | None = None, deny: int | None = None
    ) -> None:
        """Set (or remove) a member overwrite on a channel."""
        self._set_overwrite(channel_id, user_id, 1, allow, deny)

    def set_role_permissions(self, guild_id: int, role_id: int, permissions: int) -> None:
        """Change a role's guild-wide permissions (role id == guild id is @everyone); dispatches the update."""
        guild = self.guild_by_id[guild_id]
        guild.roles[role_id].permissions = permissions
        self.gateway.dispatch(
            "GUILD_ROLE_UPDATE",
            {"guild_id": str(guild_id), "role": role_json(guild.roles[role_id])},
            guild_id=guild_id,
            intent=Intent.GUILDS,
        )
        self.notify()

    def _member_updated(self, guild: SimGuild, member: SimMember) -> None:
        data = member_json(member) | {"guild_id": str(guild.id)}
        self.gateway.dispatch("GUILD_MEMBER_UPDATE", data, guild_id=guild.id, intent=Intent.GUILD_MEMBERS)
        self.notify()

    def give_role(self, user_id: int, role_id: int, guild_id: int | None = None) -> None:
        """Add a role to a member (e.g. the moderator role)."""
        guild = self.guild_by_id[guild_id] if guild_id else self.guild
        member = guild.members[user_id]
        if role_id not in member.roles:
            member.roles.append(role_id)
        self._member_updated(guild, member)

    def take_role(self, user_id: int, role_id: int, guild_id: int | None = None) -> None:
        """Remove a role from a member."""
        guild = self.guild_by_id[guild_id] if guild_id else self.guild
        member = guild.members[user_id]
        if role_id in member.roles:
            member.roles.remove(role_id)
        self._member_updated(guild, member)

    def archive_thread(self, thread_id: int) -> None:
        """Archive a thread (as auto-archive would); dispatches THREAD_UPDATE."""
        _, thread = self.locate_channel(thread_id)
        thread.archived = True
        thread.archive_timestamp = self.now()
        self.thread_updated(thread)

    def lock_thread(self, thread_id: int, locked: bool = True) -> None:
        """Lock (or unlock) a thread; dispatches THREAD_UPDATE."""
        _, thread = self.locate_channel(thread_id)
        thread.locked = locked
        self.thread_updated(thread)

    def delete_channel(self, channel_id: int) -> None:
        """Delete a channel or thread with its messages (and the threads under a channel)."""
        guild, channel = self.locate_channel(channel_id)
        for child in [c for c in guild.channels.values() if c.parent_id == channel_id and c.is_thread]:
            self.delete_channel(child.id)
        for mid in list(self._channel_messages.get(channel_id, [])):
            msg = self._messages.pop(mid, None)
            for att in msg.attachments if msg else []:
                self.drop_attachment(att)
        self._channel_messages.pop(channel_id, None)
        guild.channels.pop(channel_id, None)
        self.channels.pop(channel_id, None)
        if channel.is_thread:
            data = {
                "id": str(channel.id),
                "guild_id": str(guild.id),
                "parent_id": str(channel.parent_id),
                "type": channel.type,
            }
            self.gateway.dispatch("THREAD_DELETE", data, guild_id=guild.id, intent=Intent.GUILDS)
        else:
            self.gateway.dispatch("CHANNEL_DELETE", channel_json(channel), guild_id=guild.id, intent=Intent.GUILDS)
        self.notify()

    def inject_fault(
        self,
        method: str,
        route: str,
        status: int,
        *,
        count: int = 1,
        retry_after: float = 0.5,
        global_: bool = False,
        code: int | None = None,
        via: bool = True,
    ) -> None:
        """Fail the next `count` requests matching method ("*" for any) and route (template such as
        "/channels/{channel_id}/messages", or a literal path) with `status`: 429 (bucket, or global with
        `global_`), 5xx, 403, 413, … `via=False` sends a 429 without `Via` (discord.py then gives up)."""
        self.ratelimiter.faults.append(
            Fault(method.upper() if method != "*" else "*", route, status, count, retry_after, global_, code, via)
        )

    def disconnect_clients(self, code: int = 4000) -> asyncio.Task[None]:
        """Close every gateway socket (sessions are kept, so the client RESUMEs). Returns the closing task;
        awaiting it is optional."""
        task = asyncio.get_running_loop().create_task(self.gateway.disconnect_all(code))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

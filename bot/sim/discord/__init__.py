"""A local Discord (REST v10 + gateway WebSocket + CDN) that the real discord.py 2.7 client runs against.

Start a `DiscordSimulator`, point discord.py at `sim.rest_url` / `sim.gateway_url` (see
`bot.discord_endpoints.point_discord_at`), log a bot in, then drive it like a member would
(`invoke_command`, `autocomplete`, `click_button`, `select_option`, `submit_modal`) and read what members see
(`messages`, `threads`, interaction handles) plus the request log (`requests`). Controls cover the clock, token
lifetimes, permissions, boost tier, CDN URL expiry (`expire_attachment_urls`), rate limits, fault injection and
stalled requests. Several guilds can be placed on chosen gateway shards (`guild_on_shard`); `GET /gateway/bot`
recommends `shards` and paces IDENTIFY by `max_concurrency`. `python -m bot.sim.discord --port 8200 --token TOKEN`
runs it alone (`--guilds`, `--shards`, `--max-concurrency` for a sharded deployment).
"""

from .guilds import default_guild, guild_on_shard, shard_of
from .handle import InteractionHandle, SimError
from .server import DiscordSimulator
from .state import (
    ApiError,
    AttachmentSpec,
    Perm,
    RecordedRequest,
    SimAttachment,
    SimChannel,
    SimGuild,
    SimMember,
    SimMessage,
    SimRole,
    SimThread,
    SimUser,
    filesize_limit_for_tier,
)

__all__ = [
    "ApiError",
    "AttachmentSpec",
    "DiscordSimulator",
    "InteractionHandle",
    "Perm",
    "RecordedRequest",
    "SimAttachment",
    "SimChannel",
    "SimError",
    "SimGuild",
    "SimMember",
    "SimMessage",
    "SimRole",
    "SimThread",
    "SimUser",
    "default_guild",
    "filesize_limit_for_tier",
    "guild_on_shard",
    "shard_of",
]

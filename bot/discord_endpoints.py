"""Where discord.py sends its REST calls and opens its gateway WebSocket.

discord.py 2.7 has no constructor argument for either: every REST route (interaction webhooks included) builds
its URL from the class attribute `Route.BASE`, and the gateway URL comes from `DiscordWebSocket.DEFAULT_GATEWAY`
until READY supplies a `resume_gateway_url`. Setting both class attributes before login is therefore the one
supported-by-design way to reach a REST proxy, a gateway proxy, or the local simulator. It is process-wide,
which matches how the settings (`DISCORD_API_BASE_URL`, `DISCORD_GATEWAY_URL`) are meant.
"""

from __future__ import annotations

import discord.gateway
import discord.http
import yarl

__all__ = ["point_discord_at"]

DISCORD_REST = "https://discord.com/api/v10"


def point_discord_at(rest_url: str = DISCORD_REST, gateway_url: str | None = None) -> None:
    """Send discord.py's REST calls to `rest_url` and, if given, open the gateway at `gateway_url`."""
    discord.http.Route.BASE = rest_url.rstrip("/")
    if gateway_url is not None:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)

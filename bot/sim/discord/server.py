"""`DiscordSimulator`: a local Discord (REST v10, gateway, CDN) for the real discord.py client.

One instance serves REST under `/api/v10`, the gateway at `/gateway` and the CDN at `/attachments/…`, all on
one 127.0.0.1 port. The class is assembled from layers, each in its own module:

- `core.py` — the state, the clock, `wait_for`, read-only lookups (`messages`, `threads`, `requests_to`, …);
- `mutations.py` — state changes with their gateway events (`add_message`, `delete_message`, `create_thread`, …);
- `controls.py` — test controls (permissions, roles, boost tier, thread archive/lock/delete, CDN URL expiry,
  stalled and failed requests, dropped sockets);
- `invocations.py` — what members do (`invoke_command`, `autocomplete`, `click_button`, `submit_modal`, …);
- `app.py` — the aiohttp routes and middleware; the handlers live in `rest.py`, `channels.py`,
  `interactions.py`, `cdn.py` and `gateway.py`.
"""

from __future__ import annotations

from aiohttp import web

from .app import API_PREFIX, build_app
from .controls import Controls
from .invocations import Invocations

__all__ = ["API_PREFIX", "DiscordSimulator"]


class DiscordSimulator(Controls, Invocations):
    """A local Discord (REST v10, gateway, CDN) for the real discord.py client. See the package docstring.

    `shards` and `max_concurrency` are what `GET /gateway/bot` recommends; the gateway refuses IDENTIFYs faster
    than `max_concurrency` per 5 seconds (per rate-limit key `shard_id % max_concurrency`), as Discord does."""

    async def start(self) -> None:
        """Start serving on host:port (port 0 picks a free one; read it back from `port`/`rest_url`)."""
        self.stopping.clear()
        runner = web.AppRunner(build_app(self), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        for addr in runner.addresses:
            if isinstance(addr, tuple):
                self.port = int(addr[1])
                break

    async def stop(self) -> None:
        """Close gateway sockets and stop the server (requests held by `stall` are answered at once)."""
        self.stopping.set()
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

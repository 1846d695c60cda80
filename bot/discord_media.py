"""The Discord side of `MediaHost`: working URLs for a job's images, and an honest answer when there are none.

Discord re-signs any attachment URL given to `POST /attachments/refresh-urls`, a deleted one included (its CDN
then answers 404), so a renewed URL alone proves nothing. Two questions do:

- a character sheet is a message the bot posted: fetching it (`GET /channels/{c}/messages/{m}`) answers 404
  (Unknown Message 10008, or Unknown Channel 10003) once it is deleted, and otherwise carries its attachments with
  freshly signed URLs, so no renewal is needed;
- a member's upload (Retry, Remix) has no message of ours: renew its URL, then ask the CDN for it (a HEAD, so no
  image is downloaded); 404 means gone.

Anything else (a 5xx, a timeout, a dropped connection) means "try again in a moment". Every call runs under our own
`timeout`: discord.py retries some server errors by itself for up to about 16 seconds, too long for a member
waiting on a deferred answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aiohttp
import discord

from bot.chat import DiscordChat
from bot.services.media import MediaForbidden, MediaGone, MediaUnavailable
from bot.services.ports import ChatError

__all__ = ["DiscordMedia"]

log = logging.getLogger(__name__)

GONE_CODES = frozenset({10003, 10008})
"""Unknown Channel and Unknown Message: Discord's way of saying the thing no longer exists."""


class DiscordMedia:
    """`MediaHost` over a logged-in discord.py client and its `DiscordChat`."""

    def __init__(self, client: discord.Client, chat: DiscordChat, *, timeout: float = 8.0) -> None:
        self._client = client
        self._chat = chat
        self.timeout = timeout
        """Seconds one question to Discord may take before the answer is "try again in a moment"."""

    async def sheet_urls(self, channel_id: int, message_id: int) -> dict[int, str]:
        try:
            async with asyncio.timeout(self.timeout):
                data = await self._client.http.get_message(channel_id, message_id)
        except discord.NotFound as exc:
            if exc.code in GONE_CODES:
                raise MediaGone(f"message {message_id} in channel {channel_id}: {exc.text}") from None
            raise MediaUnavailable(f"Discord answered 404 (code {exc.code})") from None
        except discord.Forbidden:
            raise MediaForbidden(channel_id) from None
        except (TimeoutError, discord.HTTPException, aiohttp.ClientError) as exc:
            log.warning("could not read character sheet %s in channel %s: %r", message_id, channel_id, exc)
            raise MediaUnavailable(str(exc) or type(exc).__name__) from None
        return {int(a["id"]): str(a["url"]) for a in data.get("attachments", [])}

    async def upload_urls(self, urls: Sequence[str]) -> dict[str, str]:
        try:
            async with asyncio.timeout(self.timeout):
                fresh = await self._chat.refresh_urls(urls)
        except (TimeoutError, ChatError) as exc:
            log.warning("could not renew attachment URLs: %r", exc)
            raise MediaUnavailable(str(exc) or type(exc).__name__) from None
        renewed = {url: fresh.get(url, url) for url in urls}
        await self._check_served(list(renewed.values()))
        return renewed

    async def _check_served(self, urls: Sequence[str]) -> None:
        """Ask the CDN whether each renewed URL is served (HEAD: no image is downloaded)."""
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                statuses = await asyncio.gather(*(self._head(session, url) for url in urls))
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("could not check attachment URLs on Discord's CDN: %r", exc)
            raise MediaUnavailable(str(exc) or type(exc).__name__) from None
        if 404 in statuses:
            raise MediaGone("Discord's CDN no longer serves an attachment")
        if any(status >= 400 for status in statuses):
            raise MediaUnavailable(f"Discord's CDN answered {sorted(set(statuses))}")

    @staticmethod
    async def _head(session: aiohttp.ClientSession, url: str) -> int:
        async with session.head(url, allow_redirects=True) as response:
            return response.status

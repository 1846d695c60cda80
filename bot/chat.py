"""The Discord side of `ChatPort`: how the services post, find and edit messages, with the bot token only.

Every call here uses the bot's own channel API, never an interaction token, so results that arrive hours
after the command (interaction tokens die after 15 minutes) are still delivered and the card still updates.
Every call needs only ids (no gateway cache), so a process without a gateway connection can make them too.
Mentions are opt-in: only the requester is ever pinged.

Each call says how urgent it is to the Discord scheduler (`bot.traffic.discord`): deliveries, threads and
notices go first; card edits go last and are coalesced, only a card's latest state being sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import discord
from discord.http import Route, handle_message_parameters
from discord.utils import MISSING

from bot.services.ports import ChatError
from bot.services.presenter import Card, Controls
from bot.traffic.discord import DiscordScheduler, Priority, priority

__all__ = ["DiscordChat", "card_embed"]

log = logging.getLogger(__name__)

# discord.py's own figure for guilds it has not cached (boost tier 0): the safe minimum.
DEFAULT_UPLOAD_LIMIT = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
# How long a guild's upload limit read over REST is used (a worker has no gateway cache that would tell it when a
# server's boost tier changes; a video over a limit that shrank meanwhile is refused with 413 and posted as a link).
UPLOAD_LIMIT_FRESH = 600.0


def card_embed(card: Card) -> discord.Embed:
    embed = discord.Embed(title=card.title, description=card.description, colour=card.color)
    for name, value in card.fields:
        embed.add_field(name=name, value=value, inline=False)
    if card.footer:
        embed.set_footer(text=card.footer)
    if card.thumbnail_url:
        embed.set_thumbnail(url=card.thumbnail_url)
    return embed


def _only(user_id: int) -> discord.AllowedMentions:
    return discord.AllowedMentions(everyone=False, roles=False, replied_user=False, users=[discord.Object(user_id)])


def _chat_error(exc: discord.HTTPException) -> ChatError:
    # 403 (missing access or permission), 404 (thread or channel deleted) and 413 (file over the limit) will
    # not heal by retrying; everything else (5xx after discord.py's own retries, odd 4xx) may.
    permanent = exc.status in (400, 403, 404, 413)
    message = f"Discord answered {exc.status} (code {exc.code}): {exc.text}"
    return ChatError(message, permanent=permanent, status=exc.status, code=exc.code or None)


class DiscordChat:
    """`ChatPort` over a logged-in discord.py client."""

    def __init__(
        self,
        client: discord.Client,
        card_view: Callable[[Card | Controls], discord.ui.View],
        scheduler: DiscordScheduler | None = None,
    ) -> None:
        self._client = client
        self.view = card_view
        """Builds the buttons of a card (or of other `Controls`) from its actions (an empty view removes them)."""
        self._scheduler = scheduler  # None: card edits are sent at once, uncoalesced
        self._limits: dict[int, tuple[float, int]] = {}  # guild id -> (monotonic time read, limit), read over REST

    async def upload_limit(self, guild_id: int) -> int:
        """From the gateway's guild cache when this process has one; otherwise (a worker) from `GET /guilds/{id}`,
        kept for `UPLOAD_LIMIT_FRESH` seconds. If Discord cannot be asked, the safe minimum."""
        guild = self._client.get_guild(guild_id)
        if guild is not None:
            return guild.filesize_limit
        cached = self._limits.get(guild_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < UPLOAD_LIMIT_FRESH:
            return cached[1]
        try:
            fetched = await self._client.fetch_guild(guild_id, with_counts=False)
        except discord.HTTPException as exc:
            log.warning("could not read guild %s's upload limit (%s); using the minimum", guild_id, exc)
            return DEFAULT_UPLOAD_LIMIT
        self._limits[guild_id] = (now, fetched.filesize_limit)
        return fetched.filesize_limit

    def _channel(self, channel_id: int) -> discord.PartialMessageable:
        return self._client.get_partial_messageable(channel_id)

    async def post_file(
        self,
        thread_id: int,
        content: str,
        path: Path,
        filename: str,
        *,
        nonce: str,
        mention_user_id: int,
        controls: Controls | None = None,
    ) -> int:
        file = discord.File(path, filename=filename)
        return await self._post(
            thread_id, content=content, file=file, nonce=nonce, mention_user_id=mention_user_id, controls=controls
        )

    async def post_text(
        self,
        thread_id: int,
        content: str,
        *,
        nonce: str | None,
        mention_user_id: int,
        controls: Controls | None = None,
    ) -> int:
        return await self._post(
            thread_id, content=content, nonce=nonce, mention_user_id=mention_user_id, controls=controls
        )

    async def _post(
        self,
        channel_id: int,
        *,
        content: str,
        nonce: str | None,
        mention_user_id: int,
        file: discord.File | None = None,
        controls: Controls | None = None,
    ) -> int:
        """One message, urgent, by the REST call alone: only its id is needed back, so no Message object is built
        from Discord's answer (which is most of what `channel.send` costs besides the request). The buttons are
        DynamicItems, which discord.py dispatches by custom id whatever message they are on."""
        try:
            with (
                priority(Priority.URGENT),
                handle_message_parameters(
                    content,
                    file=file if file is not None else MISSING,
                    nonce=nonce or None,
                    allowed_mentions=_only(mention_user_id),
                    previous_allowed_mentions=self._client.allowed_mentions,
                    view=self.view(controls) if controls is not None and controls.actions else MISSING,
                ) as params,
            ):
                data = await self._client.http.send_message(channel_id, params=params)
        except discord.HTTPException as exc:
            raise _chat_error(exc) from None
        return int(data["id"])

    async def delete_message(self, channel_id: int, message_id: int) -> bool:
        try:
            await self._channel(channel_id).get_partial_message(message_id).delete()
        except discord.NotFound:
            return False  # deleted already (by hand, or by an earlier press whose answer was lost)
        except discord.HTTPException as exc:
            raise _chat_error(exc) from None
        return True

    async def find_message(self, thread_id: int, contains: str) -> int | None:
        me = self._client.user
        try:
            with priority(Priority.URGENT):
                async for message in self._channel(thread_id).history(limit=50):
                    if (me is None or message.author.id == me.id) and contains in message.content:
                        return message.id
        except discord.HTTPException as exc:
            raise _chat_error(exc) from None
        return None

    async def start_thread(self, channel_id: int, message_id: int, name: str) -> int:
        try:
            with priority(Priority.URGENT):
                data = await self._client.http.start_thread_with_message(
                    channel_id, message_id, name=name, auto_archive_duration=1440
                )
        except discord.HTTPException as exc:
            raise _chat_error(exc) from None
        return int(data["id"])

    async def update_card(self, channel_id: int, message_id: int, render: Callable[[], Awaitable[Card]]) -> None:
        """Coalesced: returns at once; the card is rendered and sent when the scheduler gives it its turn, and a
        newer edit of the same card replaces one still waiting. Failures are logged by the scheduler."""

        async def send() -> None:
            card = await render()
            # The REST call alone (no Message built from the answer), the buttons as in `_post`.
            with handle_message_parameters(embed=card_embed(card), view=self.view(card)) as params:
                await self._client.http.edit_message(channel_id, message_id, params=params)

        if self._scheduler is not None:
            route = Route(
                "PATCH", "/channels/{channel_id}/messages/{message_id}", channel_id=channel_id, message_id=message_id
            )
            self._scheduler.coalesce(("card", message_id), route, send)
            return
        try:
            with priority(Priority.CARD):
                await send()
        except discord.HTTPException as exc:
            raise _chat_error(exc) from None

    async def refresh_urls(self, urls: Sequence[str]) -> dict[str, str]:
        """Fresh signed URLs for Discord attachment URLs (`POST /attachments/refresh-urls`, 50 per call).

        Discord's CDN links carry an expiry (`ex`) and stop working after about a day; the attachment itself
        lives on while its message does. Returns original → refreshed; a URL Discord does not know comes back
        unchanged."""
        refreshed: dict[str, str] = {}
        for start in range(0, len(urls), 50):
            batch = list(urls[start : start + 50])
            try:
                data = await self._client.http.request(
                    Route("POST", "/attachments/refresh-urls"), json={"attachment_urls": batch}
                )
            except discord.HTTPException as exc:
                raise _chat_error(exc) from None
            for pair in data.get("refreshed_urls", []):
                refreshed[str(pair["original"])] = str(pair["refreshed"])
        return refreshed

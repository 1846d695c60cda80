"""The Discord side of `ChatPort`: how the services post, find and edit messages, with the bot token only.

Every call here uses the bot's own channel API, never an interaction token, so results that arrive hours
after the command (interaction tokens die after 15 minutes) are still delivered and the card still updates.
Mentions are opt-in: only the requester is ever pinged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import discord
from discord.http import Route

from bot.services.ports import ChatError
from bot.services.presenter import Card, Controls

__all__ = ["DiscordChat", "card_embed"]

# discord.py's own figure for guilds it has not cached (boost tier 0): the safe minimum.
DEFAULT_UPLOAD_LIMIT = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES


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
    return ChatError(message, permanent=permanent, status=exc.status)


class DiscordChat:
    """`ChatPort` over a logged-in discord.py client."""

    def __init__(self, client: discord.Client, card_view: Callable[[Card | Controls], discord.ui.View]) -> None:
        self._client = client
        self.view = card_view
        """Builds the buttons of a card (or of other `Controls`) from its actions (an empty view removes them)."""

    def upload_limit(self, guild_id: int) -> int:
        guild = self._client.get_guild(guild_id)
        return guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT

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
        try:
            file = discord.File(path, filename=filename)
            message = await self._channel(thread_id).send(
                content, file=file, nonce=nonce, allowed_mentions=_only(mention_user_id), **self._view(controls)
            )
        except discord.HTTPException as exc:
            raise _chat_error(exc) from None
        return message.id

    async def post_text(
        self,
        thread_id: int,
        content: str,
        *,
        nonce: str | None,
        mention_user_id: int,
        controls: Controls | None = None,
    ) -> int:
        try:
            channel = self._channel(thread_id)
            extra: dict[str, Any] = {"nonce": nonce} if nonce else {}
            message = await channel.send(
                content, allowed_mentions=_only(mention_user_id), **extra, **self._view(controls)
            )
        except discord.HTTPException as exc:
            raise _chat_error(exc) from None
        return message.id

    def _view(self, controls: Controls | None) -> dict[str, Any]:
        return {"view": self.view(controls)} if controls is not None and controls.actions else {}

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
            async for message in self._channel(thread_id).history(limit=50):
                if (me is None or message.author.id == me.id) and contains in message.content:
                    return message.id
        except discord.HTTPException as exc:
            raise _chat_error(exc) from None
        return None

    async def update_card(self, channel_id: int, message_id: int, card: Card) -> None:
        try:
            message = self._channel(channel_id).get_partial_message(message_id)
            await message.edit(embed=card_embed(card), view=self.view(card))
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

"""The small interfaces the services need from the outside world.

Services depend on these Protocols, never on discord.py or aiohttp directly, so they can be driven step by
step in tests and the Discord side can change without touching job logic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from bot.provider.models import Generation, GenerationRequest
from bot.services.presenter import Card, Controls

__all__ = ["ChatError", "ChatPort", "DownloaderPort", "ProviderPort"]


class ProviderPort(Protocol):
    async def submit(self, request: GenerationRequest) -> Generation: ...

    async def poll(self, generation_id: str) -> Generation: ...


class DownloaderPort(Protocol):
    async def download(self, url: str, dest: Path, *, max_bytes: int) -> int:
        """Stream `url` into `dest` (at most `max_bytes`); return the bytes written. Raises `DownloadError`s."""
        ...


class ChatError(Exception):
    """A Discord call failed. `permanent` means retrying cannot help (missing access, deleted thread...)."""

    def __init__(self, message: str, *, permanent: bool, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status
        self.code = code  # Discord's JSON error code (50013 missing permissions, 160004 thread exists, ...)


class ChatPort(Protocol):
    """What the services ask of Discord. All calls use the bot token, never an interaction token."""

    async def upload_limit(self, guild_id: int) -> int:
        """The largest file, in bytes, the bot may post in this guild (depends on the boost tier)."""
        ...

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
        """Post `content` with the file attached (and `controls`' buttons); return the message id."""
        ...

    async def post_text(
        self,
        thread_id: int,
        content: str,
        *,
        nonce: str | None,
        mention_user_id: int,
        controls: Controls | None = None,
    ) -> int: ...

    async def delete_message(self, channel_id: int, message_id: int) -> bool:
        """Delete a message the bot posted. False if it was already gone."""
        ...

    async def find_message(self, thread_id: int, contains: str) -> int | None:
        """The id of a recent message by the bot in the thread whose content contains `contains`."""
        ...

    async def start_thread(self, channel_id: int, message_id: int, name: str) -> int:
        """Start a public thread on the message (the job's status card); return the thread's id."""
        ...

    async def update_card(self, channel_id: int, message_id: int, render: Callable[[], Awaitable[Card]]) -> None:
        """Show the card `render()` makes on the message. The adapter may call `render` later, when Discord has
        room, and skip it if a newer edit of the same card replaces it (so `render` reads the state it shows)."""
        ...

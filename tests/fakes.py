"""Test doubles for the outside world the services talk to.

`FakeChat` implements `ChatPort` the way Discord behaves where it matters to delivery: every post gets a new
message id, a nonce already used in the same channel returns the original message instead of posting again
(Discord's `enforce_nonce`), and calls can be told to fail, transiently or permanently.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from bot.services.ports import ChatError
from bot.services.presenter import Card

__all__ = ["FakeChat", "Post"]

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024


@dataclass
class Post:
    """One message as the channel shows it."""

    message_id: int
    channel_id: int
    content: str
    nonce: str | None
    mention_user_id: int | None
    filename: str | None = None
    data: bytes | None = None  # the attachment's bytes, read when posted


@dataclass
class FakeChat:
    upload_limits: dict[int, int] = field(default_factory=dict)
    default_upload_limit: int = DEFAULT_UPLOAD_LIMIT
    posts: list[Post] = field(default_factory=list)
    cards: list[tuple[int, int, Card]] = field(default_factory=list)
    gone_channels: set[int] = field(default_factory=set)  # deleted threads: every call there is a 404
    calls: list[str] = field(default_factory=list)  # operation names in order, including failed ones
    _failures: dict[str, list[ChatError | Exception]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(9_000_000_000_000_000))

    # ---- test controls

    def fail_next(self, operation: str, *errors: ChatError | Exception) -> None:
        """The next calls of `operation` ("post_file", "post_text", "find_message", "update_card") raise these."""
        self._failures.setdefault(operation, []).extend(errors)

    def seed(self, channel_id: int, content: str) -> int:
        """Put a message in a channel as if the bot had posted it earlier (e.g. before a crash)."""
        post = Post(next(self._ids), channel_id, content, nonce=None, mention_user_id=None)
        self.posts.append(post)
        return post.message_id

    def posts_in(self, channel_id: int) -> list[Post]:
        return [p for p in self.posts if p.channel_id == channel_id]

    @property
    def files(self) -> list[Post]:
        return [p for p in self.posts if p.filename is not None]

    # ---- ChatPort

    def upload_limit(self, guild_id: int) -> int:
        return self.upload_limits.get(guild_id, self.default_upload_limit)

    def _enter(self, operation: str, channel_id: int) -> None:
        self.calls.append(operation)
        queued = self._failures.get(operation)
        if queued:
            raise queued.pop(0)
        if channel_id in self.gone_channels:
            raise ChatError("Unknown Channel", permanent=True, status=404)

    def _post(self, post: Post) -> int:
        if post.nonce is not None:
            for earlier in self.posts:
                if earlier.channel_id == post.channel_id and earlier.nonce == post.nonce:
                    return earlier.message_id
        self.posts.append(post)
        return post.message_id

    async def post_file(
        self, thread_id: int, content: str, path: Path, filename: str, *, nonce: str, mention_user_id: int
    ) -> int:
        self._enter("post_file", thread_id)
        data = path.read_bytes()
        return self._post(Post(next(self._ids), thread_id, content, nonce, mention_user_id, filename, data))

    async def post_text(self, thread_id: int, content: str, *, nonce: str | None, mention_user_id: int) -> int:
        self._enter("post_text", thread_id)
        return self._post(Post(next(self._ids), thread_id, content, nonce, mention_user_id))

    async def find_message(self, thread_id: int, contains: str) -> int | None:
        self._enter("find_message", thread_id)
        for post in reversed(self.posts):
            if post.channel_id == thread_id and contains in post.content:
                return post.message_id
        return None

    async def update_card(self, channel_id: int, message_id: int, card: Card) -> None:
        self._enter("update_card", channel_id)
        self.cards.append((channel_id, message_id, card))

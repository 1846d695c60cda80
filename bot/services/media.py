"""Discord as the host of a job's images: what the services ask of it, and the three ways it can fail.

The provider needs public URLs, and the only public host the bot has is Discord: a member's uploads (for Retry
and Remix) and the character sheets the bot posted. Their signed URLs expire within about a day, so they are
renewed before each use. Renewing alone cannot tell a deleted image from an expired link (Discord re-signs any
URL it is given), so the Discord side asks the question that can: the sheet message itself, or the renewed link.

Only Discord's own answer that the thing no longer exists counts as "gone"; a timeout or a server error means
"try again in a moment", and a refused access means a permission a moderator can restore. Either way nothing is
charged: these checks run before the charge.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.domain.jobs import Reference

__all__ = [
    "MediaForbidden",
    "MediaGone",
    "MediaHost",
    "MediaProblem",
    "MediaUnavailable",
    "Unavailable",
    "fresh_references",
]


class MediaProblem(Exception):
    """Discord could not give working URLs for a job's images."""


class MediaGone(MediaProblem):
    """Discord says the image (or the message holding it, or its channel) no longer exists."""


class MediaForbidden(MediaProblem):
    """Discord refused the bot access to the channel holding the images (a permission was taken away)."""

    def __init__(self, channel_id: int | None = None) -> None:
        super().__init__(f"no access to channel {channel_id}")
        self.channel_id = channel_id


class MediaUnavailable(MediaProblem):
    """Discord did not answer in time, or answered with a server error: it may work in a moment."""


@dataclass(frozen=True)
class Unavailable:
    """A job cannot start because its images cannot be used now; nothing was charged. `character` is the name of
    the character whose sheet failed, None for the member's own uploads."""

    problem: MediaProblem
    character: str | None = None

    @property
    def gone(self) -> bool:
        return isinstance(self.problem, MediaGone)


class MediaHost(Protocol):
    async def sheet_urls(self, channel_id: int, message_id: int) -> dict[int, str]:
        """Working URLs of the attachments of a message the bot posted, by attachment id (read from the message
        itself, so they are freshly signed). Raises a `MediaProblem`."""
        ...

    async def upload_urls(self, urls: Sequence[str]) -> dict[str, str]:
        """Working URLs for members' uploads, old URL → renewed URL, each checked to still be served. Raises a
        `MediaProblem` (`MediaGone` when Discord's CDN says one no longer exists)."""
        ...


async def fresh_references(host: MediaHost, references: tuple[Reference, ...]) -> tuple[Reference, ...]:
    """The references with renewed, working URLs. Raises a `MediaProblem`."""
    if not references:
        return references
    fresh = await host.upload_urls([r.url for r in references])
    return tuple(dataclasses.replace(r, url=fresh.get(r.url, r.url)) for r in references)

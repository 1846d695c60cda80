"""Styles and channel defaults: a server's named looks, and what `/video` uses in a channel when the member does
not choose.

A style is a name and a text that moderators write (`/videomod style set`). A video that picks it gets the text
added to the prompt sent to the provider; the job keeps the member's prompt and the style apart, and the card
shows the style by name only, never its text as if the member wrote it. Pure rules, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_STYLES", "MAX_STYLE_TEXT", "NO_STYLE", "ChannelDefaults", "Style", "StyleChoice"]

MAX_STYLE_TEXT = 500
MAX_STYLES = 100
"""Styles per server: more than a moderator can keep track of, and few enough to list in one reply."""
NO_STYLE = "none"
"""What a member picks in `/video style:` to use no style in a channel that has a default one; so no style may
be called that."""


@dataclass(frozen=True)
class Style:
    guild_id: int
    name: str
    text: str
    updated_by: int
    updated_at: float


@dataclass(frozen=True)
class StyleChoice:
    """The style a job uses, as the job keeps it: the name the card shows and the text as it was when the job
    was requested (a later edit of the style does not change a job already made, nor its Retry)."""

    name: str
    text: str


@dataclass(frozen=True)
class ChannelDefaults:
    """What `/video` uses in one channel when the member does not choose; None means the bot's own default."""

    guild_id: int
    channel_id: int
    style: str | None = None
    duration: int | None = None
    aspect_ratio: str | None = None

    @property
    def empty(self) -> bool:
        return self.style is None and self.duration is None and self.aspect_ratio is None

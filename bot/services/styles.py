"""Styles and channel defaults, without Discord: what `/videomod style` and `/videomod channel-defaults` change,
the suggestions while a member types a style, and the settings a `/video` gets from its options and its channel.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.cast import clean_name, name_key, name_problem
from bot.domain.styles import MAX_STYLE_TEXT, MAX_STYLES, NO_STYLE, ChannelDefaults, Style, StyleChoice
from bot.domain.text import escape_markdown, shorten
from bot.domain.validation import clean_prompt
from bot.services.characters import MAX_SUGGESTIONS, Suggestion
from bot.storage import Store, TooManyStyles

__all__ = ["DEFAULT_ASPECT_RATIO", "DEFAULT_DURATION", "StyleBook", "VideoSettings"]

DEFAULT_DURATION = 5
DEFAULT_ASPECT_RATIO = "16:9"


@dataclass(frozen=True)
class VideoSettings:
    """What a `/video` uses: the member's choices, else the channel's defaults, else the bot's."""

    style: StyleChoice | None
    duration: int
    aspect_ratio: str


class StyleBook:
    def __init__(self, store: Store) -> None:
        self._store = store

    # ------------------------------------------------------------------ moderators

    async def set(self, guild_id: int, name: str, text: str, *, actor_id: int) -> tuple[Style, bool] | str:
        """Create or change a style. Returns it and whether it is new, or why not (member-facing)."""
        name = clean_name(name)
        text = clean_prompt(text)
        problem = name_problem(name, "A style")
        if problem:
            return problem
        if name_key(name) == NO_STYLE:
            return f"`{NO_STYLE}` means no style in `/video`, so a style cannot be called that."
        if not 1 <= len(text) <= MAX_STYLE_TEXT:
            return f"A style's text must be 1–{MAX_STYLE_TEXT} characters long."
        try:
            return await self._store.styles.set(guild_id, name, text, actor_id=actor_id)
        except TooManyStyles:
            return f"This server already has {MAX_STYLES} styles, the most it can. Remove one first."

    async def remove(self, guild_id: int, name: str, *, actor_id: int) -> tuple[Style, list[int]] | str:
        """Remove a style (and from the channels that had it as default). Returns it and those channels."""
        removed = await self._store.styles.remove(guild_id, name, actor_id=actor_id)
        return removed if removed is not None else _unknown(name)

    async def set_channel_defaults(
        self,
        guild_id: int,
        channel_id: int,
        *,
        style: str | None,
        duration: int | None,
        aspect_ratio: str | None,
        actor_id: int,
    ) -> ChannelDefaults | str:
        """Replace what `/video` uses in the channel when the member does not choose; all None clears them."""
        style_name: str | None = None
        if style is not None:
            found = await self._store.styles.get(guild_id, style)
            if found is None:
                return _unknown(style)
            style_name = found.name
        defaults = ChannelDefaults(guild_id, channel_id, style_name, duration, aspect_ratio)
        return await self._store.styles.set_channel_defaults(defaults, actor_id=actor_id)

    # ------------------------------------------------------------------ members

    async def styles(self, guild_id: int) -> list[Style]:
        return await self._store.styles.for_guild(guild_id)

    async def channel_defaults(self, guild_id: int, channel_id: int) -> ChannelDefaults:
        return await self._store.styles.channel_defaults(guild_id, channel_id)

    async def suggest(self, guild_id: int, channel_id: int | None, typed: str) -> list[Suggestion]:
        """Styles whose name matches what the member typed (names starting with it first). In a channel with a
        default style, "no style" comes first, so a member can leave the channel's look out."""
        text = name_key(typed)
        styles = await self.styles(guild_id)
        starts = [s for s in styles if name_key(s.name).startswith(text)]
        inside = [s for s in styles if text in name_key(s.name) and s not in starts]
        found = [Suggestion(_label(s), s.name) for s in starts + inside]
        if channel_id is not None and NO_STYLE.startswith(text):
            default = (await self.channel_defaults(guild_id, channel_id)).style
            if default is not None:
                found.insert(0, Suggestion(f"No style (this channel's default is {default})", NO_STYLE))
        return found[:MAX_SUGGESTIONS]

    async def for_video(
        self, guild_id: int, channel_id: int, *, style: str | None, duration: int | None, aspect_ratio: str | None
    ) -> VideoSettings | str:
        """The settings a `/video` in this channel runs with, or why the style it names cannot be used."""
        defaults = await self.channel_defaults(guild_id, channel_id)
        chosen: StyleChoice | None = None
        wanted = style.strip() if style is not None else defaults.style
        if wanted and name_key(wanted) != NO_STYLE:
            found = await self._store.styles.get(guild_id, wanted)
            if found is None:
                return _unknown(wanted)
            chosen = StyleChoice(found.name, found.text)
        return VideoSettings(
            style=chosen,
            duration=duration or defaults.duration or DEFAULT_DURATION,
            aspect_ratio=aspect_ratio or defaults.aspect_ratio or DEFAULT_ASPECT_RATIO,
        )


def _label(style: Style) -> str:
    return shorten(f"{style.name} — {' '.join(style.text.split())}", 100)


def _unknown(name: str) -> str:
    shown = escape_markdown(shorten(" ".join(name.split()), 40)) or "?"
    return (
        f"There is no style called **{shown}** on this server. Pick one from the list "
        "(moderators add them with `/videomod style set`)."
    )

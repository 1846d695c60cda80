"""Making member-written text safe to echo back into Discord messages, and times as Discord shows them.

`allowed_mentions` (none by default) already stops pings; escaping here stops a prompt from restyling the
status card (markdown, headings, masked links) and keeps `@everyone` from even looking like a mention.
"""

from __future__ import annotations

import re

__all__ = ["discord_time", "escape_markdown", "quote_prompt", "shorten"]

_MARKDOWN = re.compile(r"([\\*_~`|>#\-\[\]()<:])")
_MENTION = re.compile(r"@(everyone|here)")


def escape_markdown(text: str) -> str:
    """Escape every character Discord markdown gives a meaning to, and defuse @everyone/@here."""
    escaped = _MARKDOWN.sub(r"\\\1", text)
    return _MENTION.sub("@\u200b\\1", escaped)


def shorten(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word boundary when one is near, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit * 0.6:
        cut = cut[:space]
    return cut.rstrip() + "…"


def quote_prompt(prompt: str, limit: int = 300) -> str:
    """A prompt shortened and escaped for display on one line of a card or a message."""
    one_line = " ".join(prompt.split())
    return escape_markdown(shorten(one_line, limit))


def discord_time(epoch: float, style: str = "R") -> str:
    """A Discord timestamp: every member sees it in their own time zone, and relative ones (`R`) tick by
    themselves; `f` is a full date and time."""
    return f"<t:{int(epoch)}:{style}>"

"""Characters: saved front views and angles of a character or object, reused by name in later videos.

A character is sent to the provider as one entry of `elements` (a front view plus other angles), and the prompt
refers to it as `@Element1`, `@Element2`… in the order sent (docs/provider.md, "Characters (elements)"). The
images themselves live in a message the bot posted (the character sheet): Discord is the only public host the
bot has, so the store keeps only the sheet's ids, never the images.

Pure rules, no I/O: the saved character, its place in one job, the name rules, the counts the provider takes,
and how the prompt sent to the provider is put together from the member's prompt, the characters and a style.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.domain.styles import StyleChoice
from bot.domain.validation import MAX_PROMPT_CHARS

__all__ = [
    "ANGLES_SENT",
    "MAX_ANGLES",
    "MAX_CHARACTERS",
    "MAX_NAME_CHARS",
    "MAX_REFERENCES",
    "CastMember",
    "Character",
    "clean_name",
    "compose_prompt",
    "element_tag",
    "name_key",
    "name_problem",
    "reference_problems",
    "rewrite_mentions",
    "sent_prompt_problem",
]

MAX_CHARACTERS = 4
"""Characters per video: the provider takes at most 4 `elements`."""
MAX_REFERENCES = 7
"""Reference images plus characters per video. aimlapi caps the two lists separately (7 and 4), the upstream
model caps them together at 7 with each character counting once; we assume the stricter, combined cap."""
MAX_ANGLES = 4
"""Other angles a character may be saved with (`/character create reference1…reference4`)."""
ANGLES_SENT = 3
"""Other angles sent per character. aimlapi's schema allows 4, the upstream model says 1–3 and was seen refusing
more; a character saved with 4 keeps all 4 and sends the first 3, so it needs no change if 4 ever works."""
MAX_NAME_CHARS = 32

# Letters and digits of any script, plus spaces, hyphens, apostrophes and periods inside: a name is shown in
# cards, lists and prompts (`@Fox`), so no markdown, no mentions, no line breaks.
_NAME = re.compile(r"[^\W_](?:[^\W_]|[ '.\-])*")


def clean_name(raw: str) -> str:
    """The name as saved: outer whitespace trimmed, inner runs of whitespace made one space."""
    return " ".join(raw.split())


def name_key(name: str) -> str:
    """What makes two names the same: case is ignored (`Fox` and `fox` are one name)."""
    return clean_name(name).casefold()


def name_problem(name: str, what: str = "A character") -> str | None:
    """Why `name` (already cleaned) cannot be a name, in words for the member; None when it can."""
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        return f"{what} name must be 1–{MAX_NAME_CHARS} characters long."
    if not _NAME.fullmatch(name):
        return (
            f"{what} name may use letters, digits, spaces, hyphens, apostrophes and periods, "
            "and must start with a letter or a digit."
        )
    return None


@dataclass(frozen=True)
class Character:
    """A saved character: a name and where its images are. Its id is the id of its character sheet, the message
    the bot posted with the images (a Discord id, unique for ever), so a character cannot outlive or be confused
    with its sheet."""

    id: int
    guild_id: int
    owner_id: int
    name: str
    shared: bool
    channel_id: int
    attachment_ids: tuple[int, ...]
    """The sheet's attachments: the front view first, then the other angles."""
    created_at: float

    @property
    def angles(self) -> int:
        return len(self.attachment_ids) - 1


@dataclass(frozen=True)
class CastMember:
    """One character in one job: where its images are (so Retry and Remix find them again), and the signed URLs
    read from its sheet just before the job was accepted. Sent as one `elements` entry."""

    name: str
    channel_id: int
    message_id: int
    attachment_ids: tuple[int, ...]
    frontal_url: str = ""
    angle_urls: tuple[str, ...] = ()

    @classmethod
    def of(cls, character: Character) -> CastMember:
        """A character chosen for a job, before its URLs are read."""
        return cls(character.name, character.channel_id, character.id, character.attachment_ids)

    def with_urls(self, urls: Sequence[str]) -> CastMember:
        """The same character with fresh URLs, in the order of `attachment_ids`."""
        return replace(self, frontal_url=urls[0], angle_urls=tuple(urls[1:]))

    @property
    def sent_angle_urls(self) -> tuple[str, ...]:
        return self.angle_urls[:ANGLES_SENT]


def element_tag(position: int) -> str:
    """How the prompt names the character at 1-based `position` for the provider."""
    return f"@Element{position}"


def rewrite_mentions(prompt: str, names: Sequence[str]) -> str:
    """`@Fox` becomes `@Element1` when Fox is the first character (case-insensitive, the whole name, longest
    names first so `@Fox Jr` is not read as `@Fox`). Anything else, the bare word `Fox` included, is left alone:
    rewriting plain words could change a sentence that merely contains the name."""
    if not names:
        return prompt
    positions = {name.casefold(): index for index, name in reversed(list(enumerate(names, start=1)))}
    alternatives = sorted(positions, key=len, reverse=True)
    pattern = re.compile(r"@(" + "|".join(re.escape(a) for a in alternatives) + r")(?!\w)", re.IGNORECASE)
    return pattern.sub(lambda m: element_tag(positions[m.group(1).casefold()]), prompt)


def compose_prompt(prompt: str, names: Sequence[str] = (), style_text: str | None = None) -> str:
    """The prompt sent to the provider: the member's prompt with `@Name` written as `@ElementN`, then the style's
    text as a paragraph of its own. The job keeps the member's prompt and the style apart; this is the only
    place they meet."""
    text = rewrite_mentions(prompt, names)
    return f"{text}\n\n{style_text}" if style_text else text


def reference_problems(images: int, cast: Sequence[CastMember]) -> list[str]:
    """What is wrong with this many images and these characters together, in words a member can act on."""
    problems = []
    if len(cast) > MAX_CHARACTERS:
        problems.append(f"{len(cast)} characters were chosen; a video can have at most {MAX_CHARACTERS}.")
    elif images + len(cast) > MAX_REFERENCES:
        problems.append(
            f"{images} image{'s' if images != 1 else ''} and {len(cast)} character{'s' if len(cast) != 1 else ''} "
            f"make {images + len(cast)} references; the video service takes at most {MAX_REFERENCES} in total "
            "(each character counts as one). Remove an image or a character."
        )
    seen: dict[str, str] = {}
    for member in cast:
        key = member.name.casefold()
        if key in seen:
            problems.append(
                f"Two characters named **{member.name}** were chosen; the prompt could not tell them apart. "
                "Choose each character once."
            )
            break
        seen[key] = member.name
    return problems


def sent_prompt_problem(prompt: str, cast: Sequence[CastMember], style: StyleChoice | None) -> str | None:
    """Why the prompt as sent (characters written as `@ElementN`, the style's text added) is over the provider's
    limit, naming what pushed it over; None when it fits. A prompt over the limit on its own is reported by
    `validate_video_request` instead."""
    if len(prompt) > MAX_PROMPT_CHARS:
        return None
    sent = compose_prompt(prompt, [member.name for member in cast], style.text if style else None)
    if len(sent) <= MAX_PROMPT_CHARS:
        return None
    over = len(sent) - MAX_PROMPT_CHARS
    if style is not None:
        return (
            f"With the style **{style.name}** added, the prompt is {len(sent)} characters; the limit is "
            f"{MAX_PROMPT_CHARS}. Shorten your prompt by {over} characters, or pick another style "
            "(`style: none` for no style)."
        )
    return (
        f"With the characters written as the video service names them (`@Element1`…), the prompt is {len(sent)} "
        f"characters; the limit is {MAX_PROMPT_CHARS}. Shorten it by {over} characters."
    )

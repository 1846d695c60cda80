"""The checks `/video` runs on its input before anything is charged, from the metadata Discord sends.

Limits are the `/video` options' documented ones (README, Commands), which follow the model's own limits
(docs/provider.md, "Images and elements"): PNG, JPEG or WebP, at least 300×300 px, aspect ratio between 1:2.5 and
2.5:1, at most 10 MiB, 1–7 images, a prompt of 1–2500 characters. Every problem is reported at once, naming the
image and the rule, so a member fixes everything in one go instead of discovering the rules one rejection at a time.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

__all__ = [
    "ASPECT_RATIOS",
    "DURATIONS",
    "MAX_IMAGES",
    "MAX_IMAGE_BYTES",
    "MAX_PROMPT_CHARS",
    "MIN_IMAGE_SIDE",
    "ImageMeta",
    "clean_prompt",
    "content_problems",
    "image_problems",
    "problems_message",
    "validate_video_request",
]

MAX_PROMPT_CHARS = 2500
MAX_IMAGES = 7
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MIN_IMAGE_SIDE = 300
MIN_ASPECT = 1 / 2.5
MAX_ASPECT = 2.5
DURATIONS = (5, 10)
ASPECT_RATIOS = ("16:9", "9:16", "1:1")

_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/jpg": "JPEG", "image/webp": "WebP"}
_EXTENSIONS = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


@dataclass(frozen=True)
class ImageMeta:
    """What Discord tells us about one attached file (the `resolved.attachments` entry)."""

    position: int  # 1-based, as the member sees the options image1…image7
    filename: str
    content_type: str | None
    size: int
    width: int | None
    height: int | None

    @property
    def media_type(self) -> str | None:
        """The declared type without parameters, or the one the file name implies when Discord sent none."""
        if self.content_type:
            return self.content_type.split(";", 1)[0].strip().lower()
        return _EXTENSIONS.get(PurePosixPath(self.filename.lower()).suffix)


def clean_prompt(prompt: str) -> str:
    """The prompt as it will be sent: control and format characters removed (they are invisible, can hide text
    from moderators and confuse the provider), line breaks kept, outer whitespace trimmed."""
    kept = []
    for char in prompt:
        if char in "\n\t" or unicodedata.category(char) not in {"Cc", "Cf", "Cs", "Co", "Cn"}:
            kept.append(char)
    return "".join(kept).strip()


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def image_problems(image: ImageMeta, label: str | None = None) -> list[str]:
    """What is wrong with one image, each problem naming it (`label`, by default "Image N") and the rule."""
    name = f"{label or f'Image {image.position}'} (`{_safe_filename(image.filename)}`)"
    media_type = image.media_type
    if media_type not in _TYPES:
        # The declared type comes from the uploading client: show it as code, so it can never render as a mention.
        shown = f"`{_safe_filename(media_type)}`" if media_type else "an unknown type"
        return [f"{name} is {shown}; use a PNG, JPEG or WebP image."]
    problems = []
    if image.size > MAX_IMAGE_BYTES:
        problems.append(f"{name} is {_mib(image.size)}; the limit is 10 MiB per image.")
    if not image.width or not image.height:
        problems.append(f"{name} could not be read as an image; re-export it as PNG or JPEG.")
        return problems
    if image.width < MIN_IMAGE_SIDE or image.height < MIN_IMAGE_SIDE:
        problems.append(
            f"{name} is {image.width}×{image.height} px; both sides must be at least "
            f"{MIN_IMAGE_SIDE} px (minimum {MIN_IMAGE_SIDE}×{MIN_IMAGE_SIDE})."
        )
    ratio = image.width / image.height
    if not MIN_ASPECT <= ratio <= MAX_ASPECT:
        problems.append(
            f"{name} is {image.width}×{image.height} px, an aspect ratio of {ratio:.2f}:1; "
            "it must be between 1:2.5 and 2.5:1. Crop it closer to a square."
        )
    return problems


def _safe_filename(filename: str) -> str:
    # Shown inside inline code: a backtick would end it, and a very long name would bury the message.
    name = filename.replace("`", "'")
    return name if len(name) <= 60 else name[:57] + "..."


def validate_video_request(prompt: str, images: Sequence[ImageMeta], duration: int, aspect_ratio: str) -> list[str]:
    """Every problem with a `/video` request, in words a member can act on; empty when it is fine.

    `prompt` is expected to be cleaned already (see `clean_prompt`).
    """
    problems = content_problems(prompt, images)
    if duration not in DURATIONS:
        problems.append(f"Duration must be 5 or 10 seconds, not {duration}.")
    if aspect_ratio not in ASPECT_RATIOS:
        problems.append(f"Aspect ratio must be one of {', '.join(ASPECT_RATIOS)}.")
    return problems


def content_problems(prompt: str, images: Sequence[ImageMeta]) -> list[str]:
    """What is wrong with the prompt and the images themselves (the part of `validate_video_request` that needs
    nothing but the request: `/video` uses it to decide, before any other work, whether to answer at once)."""
    problems = []
    if not prompt:
        problems.append("The prompt is empty; describe the scene you want, e.g. `the cat from image 1 jumps`.")
    elif len(prompt) > MAX_PROMPT_CHARS:
        problems.append(f"The prompt is {len(prompt)} characters long; the limit is {MAX_PROMPT_CHARS}. Shorten it.")
    if not images:
        problems.append("Attach at least one reference image (`image1`).")
    elif len(images) > MAX_IMAGES:
        problems.append(f"{len(images)} images were attached; the limit is {MAX_IMAGES}.")
    for image in images:
        problems.extend(image_problems(image))
    return problems


def problems_message(
    problems: Sequence[str],
    limit: int = 2000,
    *,
    head: str = "I could not start this video:",
    tail: str = "Nothing was charged.",
) -> str:
    """The private reply listing `problems`, cut to fit one Discord message (`limit` characters).

    Seven images with three problems each run past Discord's 2000 characters; an over-long reply is refused
    by Discord and the member would see nothing, so the list is shortened with a count of what was left out.
    """
    room = limit - len(head) - len(tail) - 2 - 60  # 60: the "…and N more" line
    lines: list[str] = []
    used = 0
    for index, problem in enumerate(problems):
        line = f"• {problem}"
        if used + len(line) + 1 > room:
            lines.append(f"• …and {len(problems) - index} more; fix these first and try again.")
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join([head, *lines, tail])

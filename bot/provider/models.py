"""Request and response values of the AI/ML API video endpoint, and status normalisation.

The provider's statuses are not a closed set in practice (docs/provider.md, "Statuses": its docs poll on
`waiting`, its SDK knows `active`/`processing`), so every raw status is mapped onto four states the bot reasons
about, and the raw text is kept for logs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from bot.provider.errors import MalformedResponse, describe_error_payload

__all__ = ["MODEL_ID", "Element", "Generation", "GenerationRequest", "ProviderStatus", "normalise_status"]

log = logging.getLogger(__name__)

MODEL_ID = "klingai/video-o1-reference-to-video"


class ProviderStatus(StrEnum):
    QUEUED = "queued"
    GENERATING = "generating"
    COMPLETED = "completed"
    FAILED = "failed"


_QUEUED = frozenset({"queued", "waiting", "pending", "submitted"})
_GENERATING = frozenset({"generating", "processing", "active", "in_progress", "running"})
_FAILED = frozenset({"error", "failed", "failure", "cancelled", "canceled", "expired"})


def normalise_status(raw: str) -> ProviderStatus | None:
    """The bot-side status of a raw provider status, or None when the text is unknown.

    `completed` maps to COMPLETED here; whether a URL came with it is decided by `Generation.from_payload`.
    """
    text = raw.strip().lower()
    if text in _QUEUED:
        return ProviderStatus.QUEUED
    if text in _GENERATING:
        return ProviderStatus.GENERATING
    if text == "completed":
        return ProviderStatus.COMPLETED
    if text in _FAILED:
        return ProviderStatus.FAILED
    return None


@dataclass(frozen=True)
class Element:
    """One character or object of `elements`: a front view and other angles of it (`@Element1` in the prompt)."""

    frontal_image_url: str
    reference_image_urls: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"frontal_image_url": self.frontal_image_url, "reference_image_urls": list(self.reference_image_urls)}


@dataclass(frozen=True)
class GenerationRequest:
    """One submit. Only documented keys are ever sent: aimlapi may reject unknown ones (docs/provider.md, "Submit")."""

    model: str
    prompt: str
    image_list: tuple[str, ...]
    duration: int
    aspect_ratio: str
    elements: tuple[Element, ...] = ()

    def to_json(self) -> dict[str, object]:
        """The POST body. `duration` is an integer because the schema types it `integer` with enum 5|10."""
        body: dict[str, object] = {"model": self.model, "prompt": self.prompt}
        # The schema requires 1–7 items when the key is present, so an empty list is left out entirely.
        if self.image_list:
            body["image_list"] = list(self.image_list)
        if self.elements:
            body["elements"] = [element.to_json() for element in self.elements]
        body["duration"] = int(self.duration)
        body["aspect_ratio"] = self.aspect_ratio
        return body


@dataclass(frozen=True)
class Generation:
    """One provider job as last seen. `status` is normalised; `raw_status` is the provider's own word."""

    id: str
    status: ProviderStatus
    raw_status: str
    video_url: str | None = None
    error_message: str | None = None
    credits_used: float | None = None

    @classmethod
    def from_payload(cls, payload: object, *, fallback_id: str | None = None) -> Generation:
        """Parse a submit or poll answer. Raises `MalformedResponse` when `id` or `status` is missing.

        Decisions: an unknown status counts as GENERATING (keep polling; the poller's deadline bounds it) and
        is logged as a warning; `completed` without a video URL is FAILED, since there is nothing to deliver.
        `fallback_id` covers a poll answer that omits the id (the caller knows which id it asked for).
        """
        if not isinstance(payload, Mapping):
            raise MalformedResponse(f"expected a JSON object from the provider, got {type(payload).__name__}")
        gen_id = payload.get("id") or payload.get("generation_id") or fallback_id
        if not isinstance(gen_id, str) or not gen_id:
            raise MalformedResponse("provider answer has no generation id")
        raw = payload.get("status")
        if not isinstance(raw, str) or not raw.strip():
            raise MalformedResponse(f"provider answer for {gen_id} has no status")

        video_url = _video_url(payload.get("video"))
        credits = _credits_used(payload.get("meta"))
        status = normalise_status(raw)
        error_message: str | None = None
        if status is None:
            log.warning("unknown provider status %r for generation %s; treating it as generating", raw, gen_id)
            status = ProviderStatus.GENERATING
        elif status is ProviderStatus.COMPLETED and video_url is None:
            status = ProviderStatus.FAILED
            error_message = "The provider reported the video as completed but gave no download URL."
        elif status is ProviderStatus.FAILED:
            error_message = (
                describe_error_payload(payload.get("error"))
                or f"The provider reported the generation as {raw.strip()} without a reason."
            )
        return cls(
            id=gen_id,
            status=status,
            raw_status=raw,
            video_url=video_url if status is ProviderStatus.COMPLETED else None,
            error_message=error_message,
            credits_used=credits,
        )


def _video_url(video: object) -> str | None:
    # Documented as `video: {url}`; some models answer with a list of files, so accept the first URL there too.
    if isinstance(video, list) and video:
        video = video[0]
    if isinstance(video, Mapping):
        url = video.get("url")
        if isinstance(url, str) and url.strip():
            return url.strip()
    elif isinstance(video, str) and video.strip():
        return video.strip()
    return None


def _credits_used(meta: object) -> float | None:
    if not isinstance(meta, Mapping):
        return None
    usage = meta.get("usage")
    if not isinstance(usage, Mapping):
        return None
    value = usage.get("credits_used")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None

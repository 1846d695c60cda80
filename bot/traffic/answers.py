"""What Discord's answers say about its rate limits, read from their headers (and a 429's body). Pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.traffic.state import Learned

__all__ = ["BucketInfo", "Refusal", "bucket_info", "learned_from", "refusal"]


@dataclass(frozen=True)
class BucketInfo:
    """`X-RateLimit-Bucket`, `-Limit`, `-Remaining` and `-Reset-After` of one answer."""

    bucket: str
    limit: int
    remaining: int
    reset_after: float


@dataclass(frozen=True)
class Refusal:
    """A 429: how long Discord asked to wait, and its scope (`user`, `shared`, or `global`: every route)."""

    wait: float
    scope: str

    @property
    def is_global(self) -> bool:
        return self.scope == "global"


def bucket_info(headers: Mapping[str, str]) -> BucketInfo | None:
    """The answer's bucket headers, or None if any is missing or unreadable."""
    bucket = headers.get("X-RateLimit-Bucket")
    limit = _count(headers.get("X-RateLimit-Limit"))
    remaining = _count(headers.get("X-RateLimit-Remaining"))
    reset_after = _seconds(headers.get("X-RateLimit-Reset-After"))
    if bucket is None or limit is None or remaining is None or reset_after is None:
        return None
    return BucketInfo(bucket, limit, remaining, reset_after)


def learned_from(info: BucketInfo, known: Learned | None) -> Learned:
    """What a route's bucket is, after one more answer. Only the first request of a window sees the whole window
    in `Reset-After` (later ones see what is left of it), so the period is the longest seen for the same bucket."""
    per = info.reset_after
    if known is not None and known.bucket == info.bucket and known.limit == info.limit:
        per = max(per, known.per)
    return Learned(info.bucket, info.limit, max(per, 0.05))


def refusal(headers: Mapping[str, str], body: Any) -> Refusal:
    """How long a 429 asks to wait (the body's exact `retry_after` first, then the headers, else a second)."""
    scope = headers.get("X-RateLimit-Scope") or "user"
    is_global = headers.get("X-RateLimit-Global", "").lower() == "true" or scope == "global"
    wait: float | None = None
    if isinstance(body, dict):
        if body.get("retry_after") is not None:
            wait = _seconds(str(body["retry_after"]))
        is_global = is_global or body.get("global") is True
    if wait is None:
        wait = _seconds(headers.get("X-RateLimit-Reset-After"))
    if wait is None:
        wait = _seconds(headers.get("Retry-After"))
    return Refusal(1.0 if wait is None else wait, "global" if is_global else scope)


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _count(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None

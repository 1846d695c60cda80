"""Rate-limit buckets with Discord's headers, the global limit, and fault injection.

Bucket windows run on the real monotonic clock (the simulator's `clock_offset` models token and URL ages, not
the passage of time for rate limits). discord.py honours a 429 only if the response carries a `Via` header and
a JSON body with `retry_after`; buckets send the full header set (Limit, Remaining, Reset, Reset-After, Bucket)
because discord.py raises KeyError if `Remaining` comes without a reset header.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .http_util import json_response

__all__ = ["DEFAULT_RATE_LIMITS", "Fault", "RateLimiter", "rate_limited_response"]

# route key "METHOD /template" → (limit, per seconds). Values follow Discord's documented/observed buckets:
# 5 messages per 5 s per channel, and (an assumption, see docs/discord.md, "Rate limits") the same for thread
# creation.
DEFAULT_RATE_LIMITS: dict[str, tuple[int, float]] = {
    "POST /channels/{channel_id}/messages": (5, 5.0),
    "PATCH /channels/{channel_id}/messages/{message_id}": (5, 5.0),
    "DELETE /channels/{channel_id}/messages/{message_id}": (5, 1.0),
    "POST /channels/{channel_id}/messages/{message_id}/threads": (5, 5.0),
    "POST /channels/{channel_id}/threads": (5, 5.0),
    "PATCH /channels/{channel_id}": (5, 5.0),
    "POST /webhooks/{webhook_id}/{webhook_token}": (5, 2.0),
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}": (5, 2.0),
    "PUT /applications/{application_id}/commands": (2, 60.0),
    "PUT /applications/{application_id}/guilds/{guild_id}/commands": (2, 60.0),
    "*": (50, 1.0),
}
GLOBAL_LIMIT = 50  # requests per second per bot, interaction routes exempt
VIA = "1.1 google"


def rate_limited_response(retry_after: float, *, global_: bool, scope: str, via: bool = True) -> web.Response:
    """A 429 in the shape discord.py retries on (when `via` is true)."""
    headers = {
        "Retry-After": str(max(1, math.ceil(retry_after))),
        "X-RateLimit-Scope": scope,
    }
    if global_:
        headers["X-RateLimit-Global"] = "true"
    if via:
        headers["Via"] = VIA
    body = {
        "message": "You are being rate limited.",
        "retry_after": round(retry_after, 3),
        "global": global_,
        "code": 0,
    }
    return json_response(body, status=429, headers=headers)


@dataclass
class Fault:
    """An injected failure for the next `count` matching requests."""

    method: str
    route: str
    status: int
    count: int
    retry_after: float
    global_: bool
    code: int | None
    via: bool = True

    def matches(self, method: str, template: str, path: str) -> bool:
        """Match by method (or "*") and by route template, its "METHOD /template" key, or the literal path."""
        if self.method not in ("*", method):
            return False
        return self.route in (template, path, f"{method} {template}")

    def response(self) -> web.Response:
        """The failure to send."""
        if self.status == 429:
            return rate_limited_response(
                self.retry_after, global_=self.global_, scope="global" if self.global_ else "user", via=self.via
            )
        defaults = {
            400: (50035, "Invalid Form Body"),
            401: (0, "401: Unauthorized"),
            403: (50013, "Missing Permissions"),
            404: (10003, "Unknown Channel"),
            413: (40005, "Request entity too large"),
        }
        code, message = defaults.get(self.status, (0, f"{self.status}: Injected failure"))
        headers = {"Via": VIA} if self.via else {}
        return json_response(
            {"message": message, "code": self.code if self.code is not None else code},
            status=self.status,
            headers=headers,
        )


@dataclass
class _Window:
    start: float
    count: int = 0


class RateLimiter:
    """Fixed-window buckets keyed by route and major parameter, plus the per-bot global limit."""

    def __init__(self) -> None:
        self.config: dict[str, tuple[int, float]] = dict(DEFAULT_RATE_LIMITS)
        self.global_limit = GLOBAL_LIMIT
        self.enabled = True
        self._windows: dict[tuple[str, str], _Window] = {}
        self._global: deque[float] = deque()
        self.faults: list[Fault] = []

    def take_fault(self, method: str, template: str, path: str) -> Fault | None:
        """The first armed fault for this request, consumed once."""
        for fault in self.faults:
            if fault.count > 0 and fault.matches(method, template, path):
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _config_for(self, key: str) -> tuple[str, tuple[int, float]] | None:
        if key in self.config:
            return key, self.config[key]
        if "*" in self.config:
            return key, self.config["*"]
        return None

    @staticmethod
    def bucket_hash(key: str) -> str:
        """The opaque bucket id Discord sends in `X-RateLimit-Bucket`."""
        return hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:16]

    def check(
        self, key: str, major: str, *, global_exempt: bool
    ) -> tuple[str | None, dict[str, str], web.Response | None]:
        """Count one request. Returns (bucket id, headers to add, a 429 response if over a limit)."""
        if not self.enabled:
            return None, {}, None
        now = time.monotonic()
        if not global_exempt and self.global_limit > 0:
            while self._global and now - self._global[0] >= 1.0:
                self._global.popleft()
            if len(self._global) >= self.global_limit:
                retry = 1.0 - (now - self._global[0])
                return None, {}, rate_limited_response(retry, global_=True, scope="global")
            self._global.append(now)
        found = self._config_for(key)
        if found is None:
            return None, {}, None
        _, (limit, per) = found
        bucket = self.bucket_hash(key if key in self.config else "*" + key)
        wkey = (key, major)
        window = self._windows.get(wkey)
        if window is None or now - window.start >= per:
            window = _Window(now)
            self._windows[wkey] = window
        reset_after = max(per - (now - window.start), 0.0)
        if window.count >= limit:
            resp = rate_limited_response(reset_after, global_=False, scope="user")
            resp.headers.update(self._headers(limit, 0, reset_after, bucket))
            return bucket, {}, resp
        window.count += 1
        return bucket, self._headers(limit, limit - window.count, reset_after, bucket), None

    @staticmethod
    def _headers(limit: int, remaining: int, reset_after: float, bucket: str) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket,
        }

    def reset(self) -> None:
        """Forget all windows (e.g. between test phases)."""
        self._windows.clear()
        self._global.clear()


def fault_summary(faults: list[Fault]) -> list[dict[str, Any]]:
    """Armed faults, for debugging output."""
    return [{"method": f.method, "route": f.route, "status": f.status, "left": f.count} for f in faults]

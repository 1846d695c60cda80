"""The provider error taxonomy and the one place that turns AI/ML API error payloads into readable text.

Callers branch on the class, never on the message: the message is for people (the Discord card, the log).
No message ever contains the API key; the client never puts it there and scrubs it defensively as well.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

__all__ = [
    "AuthenticationFailed",
    "GenerationNotFound",
    "InputRejected",
    "MalformedResponse",
    "OutOfCredits",
    "ProviderError",
    "ProviderUnavailable",
    "RateLimited",
    "describe_error_payload",
]

# Long provider messages (a whole HTML error page, a huge detail list) are cut so cards and logs stay readable.
_MAX_MESSAGE = 500


class ProviderError(Exception):
    """Any failed call to the AI/ML API. `status` is the HTTP status, or None when no response arrived.

    `transient` says whether the same call may succeed later (the poller retries those; a submit never is).
    """

    transient: bool = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r})"


class InputRejected(ProviderError):
    """400/422: the request body was refused (bad prompt, bad image, unknown key). Fix the input."""


class AuthenticationFailed(ProviderError):
    """401: the API key is missing or wrong. An operator must fix the configuration."""


class OutOfCredits(ProviderError):
    """403 (aimlapi's "out of credits") or 402 payment-required: the account balance must be topped up."""


class GenerationNotFound(ProviderError):
    """404 on a poll: the provider does not know this generation id (expired or never created)."""


class RateLimited(ProviderError):
    """429: too many requests or too many concurrent jobs. Nothing was created; try again later."""

    transient = True

    def __init__(self, message: str, *, status: int | None = 429, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"RateLimited({self.message!r}, status={self.status!r}, retry_after={self.retry_after!r})"


class ProviderUnavailable(ProviderError):
    """5xx, timeout or connection error.

    `maybe_submitted` is True when a *submit* failed after the request may have reached the provider
    (timeout, dropped connection, 5xx): a job could exist and be billed, so resubmitting blindly risks
    paying twice. It is always False for polls.
    """

    transient = True

    def __init__(self, message: str, *, status: int | None = None, maybe_submitted: bool = False) -> None:
        super().__init__(message, status=status)
        self.maybe_submitted = maybe_submitted


class MalformedResponse(ProviderError):
    """A 2xx answer that is not JSON or lacks required fields. Usually a provider hiccup, so transient."""

    transient = True


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _describe_detail(detail: object) -> str | None:
    """FastAPI/fal style `detail`: a string, or a list of `{loc: [...], msg}` items (field named by `loc`)."""
    if isinstance(detail, str) and detail.strip():
        return detail
    if isinstance(detail, Sequence) and not isinstance(detail, str | bytes):
        parts: list[str] = []
        for item in detail:
            if isinstance(item, Mapping):
                msg = item.get("msg") or item.get("message")
                loc = item.get("loc") or item.get("path")
                field = ""
                if isinstance(loc, Sequence) and not isinstance(loc, str):
                    # "body" is the request part, not a field name; keep the rest ("image_list.2").
                    names = [str(p) for p in loc if p not in ("body", "query")]
                    field = ".".join(names)
                elif isinstance(loc, str):
                    field = loc
                if isinstance(msg, str) and msg:
                    parts.append(f"{field}: {msg}" if field else msg)
            elif isinstance(item, str) and item:
                parts.append(item)
        if parts:
            return "; ".join(parts)
    return None


def describe_error_payload(payload: object) -> str | None:
    """One readable sentence from any documented aimlapi error shape, or None when there is nothing to say.

    Shapes handled (docs/provider.md, "Errors"), tried in this order:
    - HTTP error body `{message, path, requestId, statusCode, timestamp}`; `message` may also be a list;
    - job error `{"error": {"name", "message"}}` and the bare inner object `{"name", "message"}`;
    - pass-through validation `{"error": {"detail": [{"loc": [...], "msg": ...}]}}` or a top-level `detail`;
    - `errors: [...]` lists; anything else is dumped as compact JSON so no information is lost.
    """
    if payload is None:
        return None
    if isinstance(payload, str):
        return _clip(payload) if payload.strip() else None
    if not isinstance(payload, Mapping):
        return _clip(json.dumps(payload, default=str))
    message = payload.get("message")
    if isinstance(message, str) and message.strip():
        name = payload.get("name")
        # A job error's `name` ("ValidationError") adds context; an HTTP body has no `name`.
        if isinstance(name, str) and name and name.lower() not in message.lower():
            return _clip(f"{name}: {message}")
        return _clip(message)
    if isinstance(message, Sequence) and not isinstance(message, str | bytes):
        joined = _describe_detail(message)
        if joined:
            return _clip(joined)
    inner = payload.get("error")
    if inner is not None and inner is not payload:
        described = describe_error_payload(inner)
        if described:
            return described
    for key in ("detail", "errors"):
        if key in payload:
            described = _describe_detail(payload[key])
            if described:
                return _clip(described)
    if not payload:
        return None
    return _clip(json.dumps(payload, default=str, separators=(",", ":")))

"""The AI/ML API client: submit and poll of Kling Video O1 over one shared aiohttp session.

Nothing here retries. A submit is never repeated because aimlapi has no idempotency key, so a retry after a
timeout can create (and bill) a second job; poll retries belong to the poller, which knows the job's deadline.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import time
from collections.abc import Mapping

import aiohttp
from multidict import CIMultiDict
from pydantic import SecretStr

from bot.provider.errors import (
    AuthenticationFailed,
    GenerationNotFound,
    InputRejected,
    MalformedResponse,
    OutOfCredits,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    describe_error_payload,
)
from bot.provider.models import Generation, GenerationRequest

__all__ = ["GENERATIONS_PATH", "AimlClient", "parse_retry_after"]

log = logging.getLogger(__name__)

GENERATIONS_PATH = "/v2/video/generations"

# Retry hints beyond this are treated as "unknown": a bogus header must not park a job for days.
_MAX_RETRY_AFTER = 3600.0


def parse_retry_after(headers: Mapping[str, str], body: object = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, `Retry-After` (seconds or HTTP date) or a body field."""
    candidates: list[float] = []
    ms = headers.get("retry-after-ms")
    if ms:
        with contextlib.suppress(ValueError):
            candidates.append(float(ms) / 1000.0)
    value = headers.get("Retry-After")
    if value and not candidates:
        try:
            candidates.append(float(value))
        except ValueError:
            # An HTTP date instead of seconds; an unparseable value is ignored rather than guessed.
            with contextlib.suppress(ValueError, TypeError, IndexError):
                candidates.append(email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    if not candidates and isinstance(body, Mapping):
        for key in ("retry_after", "retryAfter", "retry_after_seconds"):
            raw = body.get(key)
            if isinstance(raw, int | float | str) and not isinstance(raw, bool):
                try:
                    candidates.append(float(raw))
                    break
                except ValueError:
                    continue
    if not candidates:
        return None
    seconds = candidates[0]
    if seconds != seconds or seconds > _MAX_RETRY_AFTER:  # NaN or absurd
        return None
    return max(0.0, seconds)


class AimlClient:
    """Submit and poll video generations. One instance per bot; the session is owned by the caller."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, api_key: SecretStr, *, timeout: float = 30.0
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:
        return f"AimlClient(base_url={self._base_url!r})"

    async def submit(self, request: GenerationRequest) -> Generation:
        """Create one generation. Never retried; see `ProviderUnavailable.maybe_submitted` on failure."""
        body = request.to_json()
        log.debug(
            "submitting generation: model=%s images=%d duration=%s aspect=%s",
            request.model,
            len(request.image_list),
            request.duration,
            request.aspect_ratio,
        )
        status, payload, headers = await self._call("POST", json_body=body, params=None, submit=True)
        if status >= 300:
            raise self._error_for(status, payload, headers, submit=True)
        generation = Generation.from_payload(payload)
        log.debug("submitted generation %s: %s", generation.id, generation.raw_status)
        return generation

    async def poll(self, generation_id: str) -> Generation:
        """The current state of one generation. A single GET; the poller decides about retries."""
        status, payload, headers = await self._call(
            "GET", json_body=None, params={"generation_id": generation_id}, submit=False
        )
        if status >= 300:
            raise self._error_for(status, payload, headers, submit=False)
        generation = Generation.from_payload(payload, fallback_id=generation_id)
        log.debug("polled generation %s: %s", generation_id, generation.raw_status)
        return generation

    async def _call(
        self,
        method: str,
        *,
        json_body: dict[str, object] | None,
        params: dict[str, str] | None,
        submit: bool,
    ) -> tuple[int, object, Mapping[str, str]]:
        """One HTTP exchange. Returns (status, parsed JSON or raw text, headers); maps transport failures."""
        url = self._base_url + GENERATIONS_PATH
        headers = {
            "Authorization": f"Bearer {self._api_key.get_secret_value()}",
            "Accept": "application/json",
        }
        what = "submit" if submit else "poll"
        try:
            async with self._session.request(
                method, url, json=json_body, params=params, headers=headers, timeout=self._timeout
            ) as resp:
                text = await resp.text(errors="replace")
                resp_headers = CIMultiDict(resp.headers)  # header names are case-insensitive
                status = resp.status
        except TimeoutError:  # asyncio.TimeoutError is TimeoutError on 3.11+
            raise ProviderUnavailable(
                f"The AI/ML API did not answer the {what} in time.", maybe_submitted=submit
            ) from None
        except aiohttp.ClientConnectorError as exc:
            # The connection was never made, so a submit certainly did not reach the provider.
            raise ProviderUnavailable(
                f"Could not connect to the AI/ML API ({type(exc).__name__}).", maybe_submitted=False
            ) from None
        except aiohttp.ClientError as exc:
            raise ProviderUnavailable(
                f"The connection to the AI/ML API failed during the {what} ({type(exc).__name__}).",
                maybe_submitted=submit,
            ) from None
        log.debug("%s %s -> %d", method, GENERATIONS_PATH, status)
        payload: object
        try:
            payload = json.loads(text) if text.strip() else None
        except ValueError:
            if 200 <= status < 300:
                raise MalformedResponse(
                    f"The AI/ML API answered the {what} with something that is not JSON.", status=status
                ) from None
            payload = text  # error pages are often HTML or plain text; keep the text for the message
        return status, payload, resp_headers

    def _error_for(self, status: int, payload: object, headers: Mapping[str, str], *, submit: bool) -> ProviderError:
        detail = self._scrub(describe_error_payload(payload) or "")
        suffix = f": {detail}" if detail else ""
        if status in (400, 422):
            return InputRejected(f"The AI/ML API rejected the request{suffix}", status=status)
        if status == 401:
            return AuthenticationFailed(
                f"The AI/ML API refused the API key (check AIML_API_KEY){suffix}", status=status
            )
        if status in (402, 403):
            return OutOfCredits(f"The AI/ML API account is out of credits{suffix}", status=status)
        if status == 404 and not submit:
            return GenerationNotFound(f"The AI/ML API does not know this generation{suffix}", status=status)
        if status == 429:
            return RateLimited(
                f"The AI/ML API is rate limiting requests{suffix}",
                status=status,
                retry_after=parse_retry_after(headers, payload),
            )
        if status >= 500 or status == 408:
            return ProviderUnavailable(
                f"The AI/ML API is unavailable (HTTP {status}){suffix}",
                status=status,
                # A 5xx on submit may come from a gateway after the job was queued; be honest about it.
                maybe_submitted=submit,
            )
        # 404 on submit means a wrong base URL or a retired model: a configuration problem, not a job state.
        return ProviderError(f"The AI/ML API answered HTTP {status}{suffix}", status=status)

    def _scrub(self, text: str) -> str:
        key = self._api_key.get_secret_value()
        return text.replace(key, "[redacted]") if key else text

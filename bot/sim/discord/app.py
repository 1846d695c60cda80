"""The aiohttp application: routes, and the middleware every request passes (log, auth, stalls, injected
faults, rate limits, Discord-shaped errors).

REST lives under `/api/v10`, the gateway at `/gateway` and the CDN at `/attachments/…`, all on one port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import channels, interactions, rest
from .cdn import get_attachment
from .gateway import gateway_handler
from .http_util import BODY_KEY, SIM_KEY, error_response, json_response, sim_of
from .ratelimit import VIA
from .state import ApiError, RecordedRequest

if TYPE_CHECKING:
    from .server import DiscordSimulator

__all__ = ["API_PREFIX", "Stall", "build_app"]

API_PREFIX = "/api/v10"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Stall:
    """Hold the next `count` matching requests for `seconds` before answering them (a slow or hung Discord, so a
    client's own timeout fires). Matches like an injected fault: method or "*", route template or literal path."""

    method: str
    route: str
    seconds: float
    count: int = 1

    def matches(self, method: str, template: str, path: str) -> bool:
        """Whether this stall applies to the request."""
        return self.method in ("*", method) and self.route in (template, path, f"{method} {template}")


def build_app(sim: DiscordSimulator) -> web.Application:
    """The simulator's aiohttp application."""
    app = web.Application(middlewares=[_middleware], client_max_size=16 * 1024 * 1024)
    app[SIM_KEY] = sim
    app.router.add_get("/gateway", gateway_handler)
    app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", get_attachment)
    for method, template, handler in rest.ROUTES + channels.ROUTES + interactions.ROUTES:
        app.router.add_route(method, API_PREFIX + template, handler)
    return app


def _needs_bot_auth(template: str) -> bool:
    """Discord checks `Authorization: Bot …` everywhere except interaction-token routes and GET /gateway."""
    return not (
        template.startswith("/interactions/")
        or template.startswith("/webhooks/{webhook_id}/{webhook_token}")
        or template == "/gateway"
    )


def _major(match_info: Any) -> str:
    # interaction_id: each interaction's callback is its own bucket (Discord exempts interaction routes from the
    # global limit); without it every callback of every member shared the "*" fallback bucket of 50 per second.
    for key in ("channel_id", "guild_id", "webhook_id", "interaction_id"):
        if key in match_info:
            extra = match_info.get("webhook_token", "") if key == "webhook_id" else ""
            return f"{key}:{match_info[key]}{extra}"
    return ""


async def _stall_if_asked(sim: DiscordSimulator, method: str, template: str, path: str) -> None:
    for stall in sim.stalls:
        if stall.count > 0 and stall.matches(method, template, path):
            stall.count -= 1
            if stall.count == 0:
                sim.stalls.remove(stall)
            # Wakes early when the simulator stops, so a held request never delays shutdown.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sim.stopping.wait(), stall.seconds)
            return


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    sim = sim_of(request)
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else "(unmatched)"
    if canonical == "/gateway":
        return await handler(request)
    is_api = canonical.startswith(API_PREFIX)
    template = canonical[len(API_PREFIX) :] if is_api else canonical
    record = RecordedRequest(
        method=request.method,
        path=request.path.removeprefix(API_PREFIX) if is_api else request.path,
        route=template,
        query=dict(request.query),
        started=time.time(),
    )
    extra_headers: dict[str, str] = {}
    response: web.StreamResponse
    fault = None
    try:
        if is_api and _needs_bot_auth(template) and request.headers.get("Authorization") != f"Bot {sim.token}":
            raise ApiError(401, 0, "401: Unauthorized")
        if is_api:
            await _stall_if_asked(sim, request.method, template, record.path)
        fault = sim.ratelimiter.take_fault(request.method, template, record.path) if is_api else None
        if fault is not None:
            response = fault.response()
        else:
            limited = None
            if is_api and resource is not None:
                exempt = template.startswith(("/interactions/", "/webhooks/"))
                bucket, extra_headers, limited = sim.ratelimiter.check(
                    f"{request.method} {template}", _major(request.match_info), global_exempt=exempt
                )
                record.bucket = bucket
            response = limited if limited is not None else await handler(request)
    except ApiError as err:
        response = error_response(err)
        record.error_code = err.code
    except web.HTTPException as exc:
        if is_api or resource is None:
            response = json_response({"message": f"{exc.status}: {exc.reason}", "code": 0}, status=exc.status)
        else:
            raise
    finally:
        # Drain what the handler did not read so the client receives our answer rather than a reset.
        with contextlib.suppress(Exception):
            while await request.content.readany():
                pass
    if is_api:
        if "Via" not in response.headers and response.status != 429:
            response.headers["Via"] = VIA
        elif response.status == 429 and fault is None:
            response.headers.setdefault("Via", VIA)
        for key, value in extra_headers.items():
            response.headers.setdefault(key, value)
    record.status = response.status
    if isinstance(response, web.Response) and response.headers.get("Content-Type") == "application/json":
        body = response.body
        if isinstance(body, bytes | bytearray):
            record.response_json = json.loads(body)
    record.body_json = request.get(BODY_KEY)
    if isinstance(record.body_json, dict) and "files" in record.body_json and "payload_json" in record.body_json:
        record.files = record.body_json["files"]
        record.body_json = record.body_json["payload_json"]
    record.finished = time.time()
    sim.requests.append(record)
    sim.notify()
    return response

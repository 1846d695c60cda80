"""A local stand-in for the AI/ML API video endpoint (Kling Video O1 reference-to-video).

It behaves like the real service as far as its documentation and its upstream's tell: Bearer-key check, schema
validation of submit bodies (`aimlapi_rules.py`: unknown keys refused, the stricter reading where sources
disagree), an image fetch of every `image_list` and `elements` URL, jobs that move queued → generating →
completed|error on the simulator's clock, documented error bodies, and a CDN path serving a real MP4. Each job
follows a `JobScript`, so tests can ask for rate limits, outages, failures, huge or broken videos; a key-wide
request rate limit (`requests_per_second`) answers the excess with 429 and no Retry-After, as the real API does.

Run alone: `python -m bot.sim.aimlapi --port 8100 --key KEY` prints `API http://127.0.0.1:8100`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import logging
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from bot.sim.aimlapi_rules import SUBMIT_RULES, SubmitRules, reference_urls, validate_submit
from bot.sim.mp4 import build_mp4, mp4_parts

__all__ = [
    "SUBMIT_RULES",
    "AimlSimulator",
    "JobScript",
    "RecordedRequest",
    "SimGeneration",
    "SubmitRules",
    "reference_urls",
    "validate_submit",
]

log = logging.getLogger(__name__)

GENERATIONS_PATH = "/v2/video/generations"
CDN_PREFIX = "/cdn/videos/"
_ZEROS = bytes(64 * 1024)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Texts of aimlapi's documented error pages (its "errors with status code 4xx/5xx" docs), used in the `message`.
_STATUS_MESSAGES: dict[int, str] = {
    400: "Body validation error!",
    401: "This request requires a valid API key. Please provide your API key in the Authorization header.",
    403: "You've run out of credits. Please top up your balance to continue.",
    404: "Generation not found",
    429: "Too Many Requests: you have reached the rate or concurrency limit; add retries with backoff.",
    500: "Internal server error",
    502: "Bad Gateway",
    503: "Service unavailable",
    504: "Generation timeout",
}


@dataclass
class JobScript:
    """How one submitted job behaves. Phase durations are scaled by the simulator's `time_scale`;
    `submit_delay_s`/`poll_delay_s` are real seconds (they exist to make a client time out)."""

    queued_s: float = 1.0
    generating_s: float = 3.0
    outcome: Literal["completed", "error"] = "completed"
    error_message: str = "The generation failed on the provider side."
    error_shape: Literal["name_message", "detail"] = "name_message"
    submit_status: int | None = None
    submit_retry_after: float | None = None
    submit_delay_s: float = 0.0
    submit_raw_body: str | None = None
    poll_faults: tuple[int, ...] = ()
    poll_retry_after: float | None = None
    poll_delay_s: float = 0.0
    poll_raw_body: str | None = None
    video_size: int | None = None
    video_status: int | None = None
    truncate_video: bool = False
    completed_without_url: bool = False
    raw_status_sequence: tuple[str, ...] | None = None
    credits_used: float | None = 1_120_000.0


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    status: int
    at: float
    agent: str = ""
    """The request's User-Agent: which process of a deployment sent it (Reelbot names itself there)."""
    started: float = 0.0
    """When the request arrived (`at` is when it was answered)."""


@dataclass
class SimGeneration:
    """One accepted job. `image_error` is set if a reference image (of `image_list` or `elements`) could not be
    fetched."""

    id: str
    script: JobScript
    body: dict[str, object]
    created: float
    cdn_token: str
    polls: int = 0
    images_done: bool = False
    image_error: str | None = None
    video_requests: int = 0


class AimlSimulator:
    """The simulated AI/ML API. `async with` is not offered on purpose: tests call start()/stop()."""

    def __init__(
        self,
        key: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        default_script: JobScript | None = None,
        fetch_images: bool = True,
        clock: Callable[[], float] = time.monotonic,
        requests_per_second: float | None = None,
    ) -> None:
        # `clock` drives job phases; tests may pass a manual clock to step through statuses exactly.
        self._clock = clock
        # The key's request rate limit, as the real API applies one (its number is undocumented): over it, 429
        # with no Retry-After. Counted over a sliding second of real time, submits and polls together.
        self.requests_per_second = requests_per_second
        self._recent: collections.deque[float] = collections.deque()
        self.rate_limited = 0  # requests answered 429 because of `requests_per_second`
        self._key = key
        self._host = host
        self._port = port
        self.time_scale = time_scale
        self.default_script = default_script or JobScript()
        self.fetch_images = fetch_images
        self._scripts: collections.deque[JobScript] = collections.deque()
        self.requests: list[RecordedRequest] = []
        self.submissions: list[dict[str, object]] = []
        self.generations: dict[str, SimGeneration] = {}
        self._by_token: dict[str, SimGeneration] = {}
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._bound_port: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._bound_port is None:
            raise RuntimeError("simulator not started")
        return f"http://{self._host}:{self._bound_port}"

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record])
        app.router.add_post(GENERATIONS_PATH, self._submit)
        app.router.add_get(GENERATIONS_PATH, self._poll)
        app.router.add_get(CDN_PREFIX + "{token}.mp4", self._video)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self._bound_port = int(self._runner.addresses[0][1])
        self._client = aiohttp.ClientSession(trust_env=False)

    async def stop(self) -> None:
        self._stopping.set()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- test helpers ------------------------------------------------------------------------------------

    def script_next(self, *scripts: JobScript) -> None:
        """Queue scripts for the next submits, in order; later submits use `default_script`."""
        self._scripts.extend(scripts)

    def poll_count(self, generation_id: str) -> int:
        return self.generations[generation_id].polls

    def video_bytes(self, generation_id: str) -> bytes:
        """The exact bytes the CDN serves for this generation (when not truncated)."""
        return build_mp4(self.generations[generation_id].script.video_size)

    def video_url(self, generation_id: str) -> str:
        return f"{self.base_url}{CDN_PREFIX}{self.generations[generation_id].cdn_token}.mp4"

    # -- helpers -----------------------------------------------------------------------------------------

    def _error(
        self, request: web.Request, status: int, detail: str | None = None, retry_after: float | None = None
    ) -> web.Response:
        """The documented HTTP error body `{message, path, requestId, statusCode, timestamp}`."""
        message = _STATUS_MESSAGES.get(status, "Error")
        if detail:
            message = f"{message} {detail}"
        body = {
            "message": message,
            "path": request.path,
            "requestId": str(uuid.uuid4()),
            "statusCode": str(status),  # a string in aimlapi's own example
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        headers = {"Retry-After": _format_seconds(retry_after)} if retry_after is not None else None
        return web.json_response(body, status=status, headers=headers)

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self._key}"

    async def _stall(self, seconds: float) -> None:
        # Wakes early on stop() so a stalled handler never holds up shutdown.
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)

    def _over_rate(self, request: web.Request) -> bool:
        """Count an API request against `requests_per_second`; True if it is one too many (it then counts not)."""
        if self.requests_per_second is None or request.path != GENERATIONS_PATH:
            return False
        now = time.monotonic()
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if len(self._recent) >= self.requests_per_second:
            self.rate_limited += 1
            return True
        self._recent.append(now)
        return False

    @web.middleware
    async def _record(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        status, started = 500, time.time()
        try:
            if self._over_rate(request):
                status = 429
                return self._error(request, 429)  # no Retry-After: the documented behaviour
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self.requests.append(
                RecordedRequest(
                    request.method,
                    request.path,
                    dict(request.query),
                    status,
                    time.time(),
                    request.headers.get("User-Agent", ""),
                    started,
                )
            )

    # -- endpoints ---------------------------------------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return self._error(request, 401)
        try:
            body = await request.json()
        except ValueError:
            return self._error(request, 400, "Expected JSON body")
        problem = validate_submit(body)
        if problem:
            return self._error(request, 400, problem)
        script = self._scripts.popleft() if self._scripts else self.default_script
        await self._stall(script.submit_delay_s)
        if script.submit_status is not None:
            return self._error(request, script.submit_status, retry_after=script.submit_retry_after)
        if script.submit_raw_body is not None:
            return web.Response(text=script.submit_raw_body, content_type="application/json")
        gen = SimGeneration(
            id=f"{uuid.uuid4()}:{body['model']}",
            script=script,
            body=body,
            created=self._clock(),
            cdn_token=uuid.uuid4().hex,
        )
        self.generations[gen.id] = gen
        self._by_token[gen.cdn_token] = gen
        self.submissions.append(body)
        images = reference_urls(body)
        if self.fetch_images and images:
            task = asyncio.create_task(self._fetch_images(gen, images))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            gen.images_done = True
        return web.json_response(self._view(gen, self._clock()))

    async def _fetch_images(self, gen: SimGeneration, urls: list[tuple[str, str]]) -> None:
        """GET each reference image (`image_list` and every element's images) like the provider does; the first
        failure fails the job, naming the image."""
        assert self._client is not None
        timeout = aiohttp.ClientTimeout(total=10.0)
        try:
            for name, url in urls:
                reason: str | None = None
                try:
                    async with self._client.get(url, timeout=timeout) as resp:
                        if not 200 <= resp.status < 300:
                            reason = f"HTTP {resp.status}"
                        else:
                            await resp.read()
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    reason = type(exc).__name__
                if reason is not None:
                    path = urlsplit(url).path or "/"
                    gen.image_error = (
                        f"Failed to download {name} ({path}): {reason}. Make sure the image URL is publicly reachable."
                    )
                    return
        finally:
            gen.images_done = True

    def _phase(self, gen: SimGeneration, now: float) -> tuple[str, float]:
        """("queued"|"generating"|"final", fraction of the generating phase elapsed)."""
        script = gen.script
        elapsed = now - gen.created
        queued_end = script.queued_s * self.time_scale
        generating = script.generating_s * self.time_scale
        if elapsed < queued_end:
            return "queued", 0.0
        if elapsed < queued_end + generating or not gen.images_done:
            return "generating", min(1.0, (elapsed - queued_end) / generating) if generating > 0 else 1.0
        return "final", 1.0

    def _view(self, gen: SimGeneration, now: float) -> dict[str, object]:
        """The documented submit/poll body for the job's state at `now`."""
        script = gen.script
        phase, fraction = self._phase(gen, now)
        failed = gen.image_error is not None or script.outcome == "error"
        seq = script.raw_status_sequence
        if phase == "queued":
            raw = seq[0] if seq else "queued"
            return {"id": gen.id, "status": raw}
        if phase == "generating":
            if seq and len(seq) > 2:
                middle = seq[1:-1]
                raw = middle[min(len(middle) - 1, int(fraction * len(middle)))]
            else:
                raw = seq[0] if seq else "generating"
            return {"id": gen.id, "status": raw}
        view: dict[str, object] = {"id": gen.id}
        if failed:
            view["status"] = seq[-1] if seq else "error"
            message = gen.image_error or script.error_message
            if script.error_shape == "detail" and gen.image_error is None:
                view["error"] = {"detail": [{"loc": ["body", "image_list"], "msg": message, "type": "value_error"}]}
            else:
                view["error"] = {"name": "GenerationError", "message": message}
            view["video"] = None
            return view
        view["status"] = seq[-1] if seq else "completed"
        view["video"] = None if script.completed_without_url else {"url": self.video_url(gen.id)}
        if script.credits_used is not None:
            view["meta"] = {"usage": {"credits_used": script.credits_used}}
        return view

    async def _poll(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return self._error(request, 401)
        gen_id = request.query.get("generation_id")
        if not gen_id:
            return self._error(request, 400, "generation_id: Required")
        gen = self.generations.get(gen_id)
        if gen is None:
            return self._error(request, 404)
        gen.polls += 1
        script = gen.script
        await self._stall(script.poll_delay_s)
        if gen.polls <= len(script.poll_faults):
            return self._error(request, script.poll_faults[gen.polls - 1], retry_after=script.poll_retry_after)
        if script.poll_raw_body is not None:
            return web.Response(text=script.poll_raw_body, content_type="application/json")
        return web.json_response(self._view(gen, self._clock()))

    async def _video(self, request: web.Request) -> web.StreamResponse:
        """The CDN: no auth (like real signed CDN URLs), streamed so N-MiB files never sit in memory."""
        gen = self._by_token.get(request.match_info["token"])
        if gen is None or self._phase(gen, self._clock())[0] != "final":
            return web.Response(status=404, text="Not Found")
        gen.video_requests += 1
        script = gen.script
        if script.video_status is not None:
            return web.Response(status=script.video_status, text=f"HTTP {script.video_status}")
        head, padding = mp4_parts(script.video_size)
        total = len(head) + padding
        resp = web.StreamResponse(status=200)
        resp.content_type = "video/mp4"
        resp.content_length = total
        await resp.prepare(request)
        await resp.write(head)
        remaining = padding // 2 if script.truncate_video else padding
        while remaining > 0:
            chunk = _ZEROS if remaining >= len(_ZEROS) else _ZEROS[:remaining]
            await resp.write(chunk)
            remaining -= len(chunk)
        if script.truncate_video:
            # Promised `total` bytes, sent about half: drop the connection like a CDN that died mid-file.
            if request.transport is not None:
                request.transport.close()
            return resp
        await resp.write_eof()
        return resp


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


async def _serve(port: int, key: str, time_scale: float, requests_per_second: float | None = None) -> None:
    sim = AimlSimulator(key, port=port, time_scale=time_scale, requests_per_second=requests_per_second)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Handlers go in before the API line is printed: a supervisor may signal as soon as it reads the line.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await sim.start()
    print(f"API {sim.base_url}", flush=True)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.sim.aimlapi", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--key", required=True, help="the API key clients must send as a Bearer token")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiplies every job phase duration")
    parser.add_argument(
        "--requests-per-second", type=float, default=None, help="answer 429 (no Retry-After) above this rate"
    )
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.key, args.time_scale, args.requests_per_second))


if __name__ == "__main__":
    main()

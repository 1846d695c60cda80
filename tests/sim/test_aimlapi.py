"""The AI/ML API simulator on its own: documented shapes, auth, validation, scripts, image fetch, CDN, CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.sim.aimlapi import AimlSimulator, JobScript, validate_submit
from bot.sim.discord import DiscordSimulator
from bot.sim.images import make_png
from bot.sim.mp4 import build_mp4, iter_boxes

KEY = "sk-sim-test-key-0042"
MODEL = "klingai/video-o1-reference-to-video"
AUTH = {"Authorization": f"Bearer {KEY}"}
ERROR_BODY_KEYS = {"message", "path", "requestId", "statusCode", "timestamp"}


class ManualClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[AimlSimulator]:
    simulator = AimlSimulator(KEY, clock=clock)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class ImageHost:
    """Serves reference images: /ok/<name> answers 200 with PNG bytes, anything else 404."""

    def __init__(self) -> None:
        self.fetched: list[str] = []
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.Response:
        self.fetched.append(request.path)
        if request.path.startswith("/ok/"):
            return web.Response(body=b"\x89PNG\r\n\x1a\n" + bytes(64), content_type="image/png")
        return web.Response(status=404)


@pytest.fixture
async def images() -> AsyncIterator[ImageHost]:
    host = ImageHost()
    await host.start()
    yield host
    await host.stop()


async def submit(http: aiohttp.ClientSession, sim: AimlSimulator, body: dict[str, object]) -> tuple[int, dict]:
    async with http.post(sim.base_url + "/v2/video/generations", json=body, headers=AUTH) as resp:
        return resp.status, await resp.json()


async def poll(http: aiohttp.ClientSession, sim: AimlSimulator, gen_id: str) -> tuple[int, dict]:
    url = sim.base_url + "/v2/video/generations"
    async with http.get(url, params={"generation_id": gen_id}, headers=AUTH) as resp:
        return resp.status, await resp.json()


async def wait_images_done(sim: AimlSimulator, gen_id: str) -> None:
    for _ in range(500):
        if sim.generations[gen_id].images_done:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("image fetch never finished")


def body(**extra: object) -> dict[str, object]:
    return {"model": MODEL, "prompt": "a cat", **extra}


def element(base: str = "https://i.example", angles: int = 1) -> dict[str, object]:
    """One character: a front view and `angles` other views."""
    return {
        "frontal_image_url": f"{base}/front.png",
        "reference_image_urls": [f"{base}/a{n}.png" for n in range(angles)],
    }


async def test_lifecycle_with_documented_shapes(
    sim: AimlSimulator, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    status, created = await submit(http, sim, body(duration=10, aspect_ratio="1:1"))
    assert status == 200
    assert created["status"] == "queued"
    gen_id = created["id"]
    assert gen_id.endswith(":" + MODEL)

    clock.now += 1.0
    assert (await poll(http, sim, gen_id))[1] == {"id": gen_id, "status": "generating"}
    clock.now += 3.0
    status, done = await poll(http, sim, gen_id)

    assert status == 200
    assert done["status"] == "completed"
    assert done["video"] == {"url": sim.video_url(gen_id)}
    assert done["meta"]["usage"]["credits_used"] > 0
    assert sim.poll_count(gen_id) == 2
    assert sim.submissions == [body(duration=10, aspect_ratio="1:1")]
    recorded = [(r.method, r.path, r.query, r.status) for r in sim.requests]
    assert recorded[0] == ("POST", "/v2/video/generations", {}, 200)
    assert recorded[-1] == ("GET", "/v2/video/generations", {"generation_id": gen_id}, 200)

    async with http.get(done["video"]["url"]) as resp:  # the CDN needs no key, like a signed CDN URL
        assert resp.status == 200
        assert resp.content_type == "video/mp4"
        data = await resp.read()
    assert data == sim.video_bytes(gen_id)
    assert [kind for kind, _, _ in iter_boxes(data)] == ["ftyp", "moov", "mdat"]


async def test_real_clock_and_time_scale_finish_a_job(http: aiohttp.ClientSession) -> None:
    fast = AimlSimulator(KEY, time_scale=0.01, fetch_images=False)
    await fast.start()
    try:
        _, created = await submit(http, fast, body())
        seen = {created["status"]}
        for _ in range(400):
            _, polled = await poll(http, fast, created["id"])
            seen.add(polled["status"])
            if polled["status"] == "completed":
                break
            await asyncio.sleep(0.005)
    finally:
        await fast.stop()
    assert "completed" in seen


async def test_video_is_not_served_before_the_job_is_done(sim: AimlSimulator, http: aiohttp.ClientSession) -> None:
    _, created = await submit(http, sim, body())
    async with http.get(sim.video_url(created["id"])) as resp:
        assert resp.status == 404


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}])
async def test_bad_or_missing_key_is_401_with_documented_body(
    sim: AimlSimulator, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    async with http.post(sim.base_url + "/v2/video/generations", json=body(), headers=headers) as resp:
        assert resp.status == 401
        payload = await resp.json()
    assert set(payload) == ERROR_BODY_KEYS
    assert payload["statusCode"] == "401"
    assert "API key" in payload["message"]
    assert sim.generations == {}


async def test_unknown_key_is_400_naming_the_key(sim: AimlSimulator, http: aiohttp.ClientSession) -> None:
    status, payload = await submit(http, sim, body(negative_prompt="blurry"))
    assert status == 400
    assert set(payload) == ERROR_BODY_KEYS
    assert payload["message"].startswith("Body validation error!")
    assert "'negative_prompt'" in payload["message"]
    assert sim.submissions == []


@pytest.mark.parametrize(
    ("bad", "names"),
    [
        ({"prompt": "x"}, "model"),
        ({"model": MODEL}, "prompt"),
        (body(model="klingai/other"), "model"),
        (body(prompt="x" * 2501), "prompt"),
        (body(image_list=[]), "image_list"),
        (body(image_list=[f"https://i.example/{i}.png" for i in range(8)]), "image_list"),
        (body(image_list=["not a url"]), "image_list.0"),
        (body(duration="5"), "duration"),
        (body(duration=7), "duration"),
        (body(duration=True), "duration"),
        (body(aspect_ratio="4:3"), "aspect_ratio"),
        (body(elements=[{"frontal_image_url": "https://i.example/f.png"}]), "elements.0.reference_image_urls"),
        (body(elements=[{"frontal_image_url": "https://i/f.png", "reference_image_urls": []}]), "elements.0"),
        (body(elements=[element(angles=4)]), "elements.0.reference_image_urls: Array must contain between 1 and 3"),
        (body(elements=[element()] * 5), "elements: Array must contain at most 4"),
        (body(elements=[{**element(), "frontal_image_url": "front.png"}]), "elements.0.frontal_image_url"),
        (body(elements=[element(), {**element(), "reference_image_urls": ["https://i/r.png", "r2"]}]), "elements.1"),
        (body(elements=[{**element(), "name": "fox"}]), "elements.0: Unrecognized key(s) in object: 'name'"),
        (body(elements=[element()] * 2, image_list=[f"https://i/{n}.png" for n in range(6)]), "in total, received 8"),
        (body(provider=3), "provider"),
    ],
)
def test_validation_refuses_and_names_the_field(bad: dict[str, object], names: str) -> None:
    problem = validate_submit(bad)
    assert problem is not None
    assert names in problem


@pytest.mark.parametrize(
    "good",
    [
        body(),
        body(prompt="x" * 2500, duration=10, aspect_ratio="9:16", provider="fal"),
        body(image_list=[f"https://i.example/{i}.png" for i in range(7)]),
        body(elements=[{"frontal_image_url": "https://i/f.png", "reference_image_urls": ["https://i/r.png"]}]),
        body(elements=[element(angles=3)] * 4, image_list=[f"https://i/{n}.png" for n in range(3)]),
    ],
)
def test_validation_accepts_documented_bodies(good: dict[str, object]) -> None:
    assert validate_submit(good) is None


async def test_images_are_fetched_and_a_failing_one_fails_the_job_by_name(
    sim: AimlSimulator, http: aiohttp.ClientSession, clock: ManualClock, images: ImageHost
) -> None:
    urls = [f"{images.base_url}/ok/a.png", f"{images.base_url}/gone/b.png"]
    _, created = await submit(http, sim, body(image_list=urls))
    await wait_images_done(sim, created["id"])
    clock.now += 10
    _, polled = await poll(http, sim, created["id"])

    assert images.fetched == ["/ok/a.png", "/gone/b.png"]
    assert polled["status"] == "error"
    assert "image_list[1]" in polled["error"]["message"]
    assert "/gone/b.png" in polled["error"]["message"]
    assert "HTTP 404" in polled["error"]["message"]


async def test_good_images_let_the_job_complete(
    sim: AimlSimulator, http: aiohttp.ClientSession, clock: ManualClock, images: ImageHost
) -> None:
    urls = [f"{images.base_url}/ok/{n}.png" for n in range(3)]
    _, created = await submit(http, sim, body(image_list=urls))
    await wait_images_done(sim, created["id"])
    clock.now += 10
    _, polled = await poll(http, sim, created["id"])
    assert polled["status"] == "completed"
    assert len(images.fetched) == 3


async def test_unreachable_image_host_fails_the_job(
    sim: AimlSimulator, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, created = await submit(http, sim, body(image_list=[f"http://127.0.0.1:{port}/cat.png"]))
    await wait_images_done(sim, created["id"])
    clock.now += 10
    _, polled = await poll(http, sim, created["id"])
    assert polled["status"] == "error"
    assert "image_list[0] (/cat.png)" in polled["error"]["message"]


async def test_an_elements_refusal_is_a_body_validation_error_and_creates_nothing(
    sim: AimlSimulator, http: aiohttp.ClientSession
) -> None:
    status, payload = await submit(http, sim, body(elements=[element(angles=4)]))
    assert status == 400
    assert set(payload) == ERROR_BODY_KEYS
    assert payload["message"].startswith("Body validation error! elements.0.reference_image_urls")
    assert (sim.submissions, sim.generations) == ([], {})


async def test_element_images_are_fetched_and_a_failing_one_fails_the_job_by_name(
    sim: AimlSimulator, http: aiohttp.ClientSession, clock: ManualClock, images: ImageHost
) -> None:
    ok = f"{images.base_url}/ok"
    cast = [
        element(ok, angles=2),
        {**element(ok), "reference_image_urls": [f"{ok}/b0.png", f"{images.base_url}/x.png"]},
    ]
    _, created = await submit(http, sim, body(image_list=[f"{ok}/scene.png"], elements=cast))
    await wait_images_done(sim, created["id"])
    clock.now += 10
    _, polled = await poll(http, sim, created["id"])

    # Fetched in body order: the images, then each element's front view and its other angles.
    first = ["/ok/front.png", "/ok/a0.png", "/ok/a1.png"]
    assert images.fetched == ["/ok/scene.png", *first, "/ok/front.png", "/ok/b0.png", "/x.png"]
    assert polled["status"] == "error"
    assert "elements[1].reference_image_urls[1] (/x.png): HTTP 404" in polled["error"]["message"]


async def test_an_expired_discord_url_fails_the_job_and_a_refreshed_one_completes_it(
    sim: AimlSimulator, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """A character's images live in a message on Discord; the provider fetches them from Discord's CDN."""
    async with DiscordSimulator(token="TOKEN") as discord_sim:
        headers = {"Authorization": f"Bot {discord_sim.token}"}
        form = aiohttp.FormData(quote_fields=False)
        form.add_field("payload_json", json.dumps({"content": "Character: Nimbus"}))
        for n, name in enumerate(("front.png", "side.png")):
            form.add_field(f"files[{n}]", make_png(8, 8), filename=name, content_type="application/octet-stream")
        url = f"{discord_sim.rest_url}/channels/{discord_sim.guild.text_channel_id}/messages"
        async with http.post(url, data=form, headers=headers) as resp:
            sheet = await resp.json()
        front, side = (a["url"] for a in sheet["attachments"])
        nimbus = {"frontal_image_url": front, "reference_image_urls": [side]}

        discord_sim.expire_attachment_urls()  # a month later
        _, stale = await submit(http, sim, body(elements=[nimbus]))
        await wait_images_done(sim, stale["id"])

        refresh = f"{discord_sim.rest_url}/attachments/refresh-urls"
        async with http.post(refresh, json={"attachment_urls": [front, side]}, headers=headers) as resp:
            fresh = {p["original"]: p["refreshed"] for p in (await resp.json())["refreshed_urls"]}
        renewed = {"frontal_image_url": fresh[front], "reference_image_urls": [fresh[side]]}
        _, good = await submit(http, sim, body(elements=[renewed]))
        await wait_images_done(sim, good["id"])
    clock.now += 10

    _, failed = await poll(http, sim, stale["id"])
    assert failed["status"] == "error"
    assert "elements[0].frontal_image_url" in failed["error"]["message"]
    assert "HTTP 404" in failed["error"]["message"]
    assert (await poll(http, sim, good["id"]))[1]["status"] == "completed"


async def test_scripts_apply_in_order_then_the_default(
    sim: AimlSimulator, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    sim.default_script = JobScript(outcome="completed")
    sim.script_next(JobScript(submit_status=429, submit_retry_after=7), JobScript(outcome="error", error_message="x"))

    async with http.post(sim.base_url + "/v2/video/generations", json=body(), headers=AUTH) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "7"
        assert (await resp.json())["statusCode"] == "429"
    _, second = await submit(http, sim, body())
    _, third = await submit(http, sim, body())
    clock.now += 10

    assert len(sim.generations) == 2  # the rate-limited submit created nothing
    assert (await poll(http, sim, second["id"]))[1]["status"] == "error"
    assert (await poll(http, sim, third["id"]))[1]["status"] == "completed"


async def test_poll_faults_come_first_and_are_recorded(sim: AimlSimulator, http: aiohttp.ClientSession) -> None:
    sim.script_next(JobScript(poll_faults=(429, 503, 500), poll_retry_after=1.5))
    _, created = await submit(http, sim, body())
    url = sim.base_url + "/v2/video/generations"
    statuses = []
    for _ in range(4):
        async with http.get(url, params={"generation_id": created["id"]}, headers=AUTH) as resp:
            statuses.append((resp.status, resp.headers.get("Retry-After")))
    assert statuses == [(429, "1.5"), (503, "1.5"), (500, "1.5"), (200, None)]
    assert [r.status for r in sim.requests if r.method == "GET"] == [429, 503, 500, 200]


async def test_unknown_generation_is_404(sim: AimlSimulator, http: aiohttp.ClientSession) -> None:
    status, payload = await poll(http, sim, "nope")
    assert status == 404
    assert set(payload) == ERROR_BODY_KEYS


async def test_padded_and_truncated_videos(sim: AimlSimulator, http: aiohttp.ClientSession, clock: ManualClock) -> None:
    sim.script_next(JobScript(video_size=5 * 1024 * 1024), JobScript(video_size=1024 * 1024, truncate_video=True))
    _, big = await submit(http, sim, body())
    _, cut = await submit(http, sim, body())
    clock.now += 10

    async with http.get(sim.video_url(big["id"])) as resp:
        assert resp.content_length == 5 * 1024 * 1024
        data = await resp.read()
    assert len(data) == 5 * 1024 * 1024
    assert [kind for kind, _, _ in iter_boxes(data)] == ["ftyp", "moov", "mdat"]

    async with http.get(sim.video_url(cut["id"])) as resp:
        assert resp.content_length == 1024 * 1024
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


def test_mp4_has_a_video_track_structure() -> None:
    data = build_mp4()
    top = {kind: (offset, size) for kind, offset, size in iter_boxes(data)}
    moov_offset, moov_size = top["moov"]
    inside = [kind for kind, _, _ in iter_boxes(data, moov_offset + 8, moov_offset + moov_size)]
    assert inside == ["mvhd", "trak"]
    assert data[8:12] == b"isom"
    assert len(build_mp4(4096)) == 4096


def test_cli_prints_the_api_line_serves_and_stops_on_sigterm() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
        [sys.executable, "-m", "bot.sim.aimlapi", "--port", str(port), "--key", KEY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().rstrip("\n")
        assert line == f"API http://127.0.0.1:{port}"
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v2/video/generations?generation_id=x")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)  # noqa: S310 - loopback test server
        assert refused.value.code == 401  # it is serving, and it checks the key
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

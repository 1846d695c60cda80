"""MediaDownloader: streaming with a byte cap, failure classes, and the SSRF guards (address policy,
resolver, literal IPs, redirects). Real HTTP against the AI/ML API simulator's CDN and a tiny local server."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.provider.client import AimlClient
from bot.provider.download import (
    DownloadFailed,
    MediaDownloader,
    MediaRefused,
    MediaTooLarge,
    _PublicOnlyResolver,
    _RefusedAddress,
    is_public_address,
)
from bot.provider.models import MODEL_ID, GenerationRequest
from bot.sim.aimlapi import AimlSimulator, JobScript
from bot.sim.mp4 import iter_boxes

KEY = "sk-download-test-key"
MiB = 1024 * 1024


@pytest.fixture
async def sim() -> AsyncIterator[AimlSimulator]:
    simulator = AimlSimulator(KEY, time_scale=0.0, fetch_images=False)  # jobs finish at once
    await simulator.start()
    yield simulator
    await simulator.stop()


async def finished_video(sim: AimlSimulator, script: JobScript) -> tuple[str, str]:
    """Submit one job with `script`; return (generation id, video URL)."""
    sim.script_next(script)
    async with aiohttp.ClientSession() as session:
        client = AimlClient(session, sim.base_url, SecretStr(KEY))
        gen = await client.submit(GenerationRequest(MODEL_ID, "p", ("https://img.example/a.png",), 5, "16:9"))
        done = await client.poll(gen.id)
    assert done.video_url is not None
    return gen.id, done.video_url


@pytest.fixture
async def downloader() -> AsyncIterator[MediaDownloader]:
    d = MediaDownloader(allow_private_networks=True, timeout=5.0)
    yield d
    await d.close()


@pytest.fixture
async def strict() -> AsyncIterator[MediaDownloader]:
    d = MediaDownloader(allow_private_networks=False, timeout=5.0)
    yield d
    await d.close()


class LocalServer:
    """Routes the simulator does not have: redirects, chunked bodies without a length, a stall."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.hits: list[str] = []
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/redirect", self._redirect)
        app.router.add_get("/loop", self._loop)
        app.router.add_get("/chunked", self._chunked)
        app.router.add_get("/slow", self._slow)
        app.router.add_get("/small", self._small)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.base_url = f"http://{self.host}:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _redirect(self, request: web.Request) -> web.Response:
        self.hits.append(request.path_qs)
        raise web.HTTPFound(request.query["to"])

    async def _loop(self, request: web.Request) -> web.Response:
        self.hits.append(request.path_qs)
        raise web.HTTPFound("/loop")

    async def _chunked(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()  # no Content-Length: only the running count can stop it
        await resp.prepare(request)
        for _ in range(int(request.query.get("mib", "2")) * 16):
            await resp.write(b"\0" * (64 * 1024))
        await resp.write_eof()
        return resp

    async def _slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(body=b"late")

    async def _small(self, request: web.Request) -> web.Response:
        self.hits.append(request.path_qs)
        return web.Response(body=b"tiny video", content_type="video/mp4")


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    s = LocalServer()
    await s.start()
    yield s
    await s.stop()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- address policy -------------------------------------------------------------------------------------


@pytest.mark.parametrize("ip", ["8.8.8.8", "1.1.1.1", "151.101.1.69", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(ip: str) -> None:
    assert is_public_address(ip)


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 wrapping 10.0.0.1
        "not-an-ip",
    ],
)
def test_non_public_addresses_are_refused(ip: str) -> None:
    assert not is_public_address(ip)


async def test_resolver_refuses_a_name_that_resolves_to_loopback() -> None:
    resolver = _PublicOnlyResolver()
    try:
        with pytest.raises(_RefusedAddress):
            await resolver.resolve("localhost", 80, socket.AF_UNSPEC)
    finally:
        await resolver.close()


async def test_resolver_keeps_addresses_the_policy_allows() -> None:
    resolver = _PublicOnlyResolver(lambda ip: ip == ipaddress.ip_address("127.0.0.1"))
    try:
        results = await resolver.resolve("127.0.0.1", 80, socket.AF_INET)
    finally:
        await resolver.close()
    assert [r["host"] for r in results] == ["127.0.0.1"]


# -- refusals ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://cdn.example/video.mp4",
        "data:video/mp4;base64,AAAA",
        "http://127.0.0.1:9/video.mp4",
        "http://10.0.0.5/video.mp4",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/video.mp4",
        "http://[::ffff:127.0.0.1]:9/video.mp4",
        "http:///no-host",
    ],
)
async def test_unsafe_urls_are_refused(strict: MediaDownloader, tmp_path: Path, url: str) -> None:
    with pytest.raises(MediaRefused) as info:
        await strict.download(url, tmp_path / "v.mp4", max_bytes=MiB)
    assert info.value.permanent
    assert leftovers(tmp_path) == []


async def test_hostname_resolving_to_loopback_is_refused(
    strict: MediaDownloader, server: LocalServer, tmp_path: Path
) -> None:
    port = server.base_url.rsplit(":", 1)[1]
    with pytest.raises(MediaRefused):
        await strict.download(f"http://localhost:{port}/small", tmp_path / "v.mp4", max_bytes=MiB)
    assert server.hits == []  # refused before any connection was made


async def test_loopback_simulator_is_refused_without_the_setting(
    strict: MediaDownloader, sim: AimlSimulator, tmp_path: Path
) -> None:
    _, url = await finished_video(sim, JobScript())
    with pytest.raises(MediaRefused):
        await strict.download(url, tmp_path / "v.mp4", max_bytes=MiB)


async def test_redirect_to_a_refused_address_is_refused(server: LocalServer, tmp_path: Path) -> None:
    # Only 127.0.0.1 counts as "public" here, so the first hop is fetched and the redirect to 127.0.0.2
    # (also loopback, so nothing real is ever contacted) must be refused by the per-hop check.
    only_first = MediaDownloader(
        allow_private_networks=False, timeout=5.0, address_allowed=lambda ip: str(ip) == "127.0.0.1"
    )
    try:
        with pytest.raises(MediaRefused):
            await only_first.download(
                f"{server.base_url}/redirect?to=http://127.0.0.2:9/x.mp4", tmp_path / "v.mp4", max_bytes=MiB
            )
        assert len(server.hits) == 1
        # Sanity check of the same policy: a direct hop to the allowed address downloads fine.
        assert await only_first.download(f"{server.base_url}/small", tmp_path / "ok.mp4", max_bytes=MiB) == 10
    finally:
        await only_first.close()
    assert leftovers(tmp_path) == ["ok.mp4"]


async def test_redirect_to_a_hostname_resolving_to_loopback_is_refused(tmp_path: Path) -> None:
    # The first hop lives on 127.0.0.2, which this test's policy treats as public; the redirect names
    # "localhost", which resolves to 127.0.0.1 (refused), so the connector's resolver must stop it.
    first = LocalServer(host="127.0.0.2")
    target = LocalServer()
    await first.start()
    await target.start()
    port = target.base_url.rsplit(":", 1)[1]
    only_first = MediaDownloader(
        allow_private_networks=False, address_allowed=lambda ip: str(ip) == "127.0.0.2", timeout=5.0
    )
    try:
        with pytest.raises(MediaRefused):
            await only_first.download(
                f"{first.base_url}/redirect?to=http://localhost:{port}/small", tmp_path / "v.mp4", max_bytes=MiB
            )
    finally:
        await only_first.close()
        await first.stop()
        await target.stop()
    assert len(first.hits) == 1
    assert target.hits == []


async def test_redirect_to_file_scheme_is_refused_even_when_private_networks_are_allowed(
    downloader: MediaDownloader, server: LocalServer, tmp_path: Path
) -> None:
    with pytest.raises(MediaRefused):
        await downloader.download(f"{server.base_url}/redirect?to=file:///etc/passwd", tmp_path / "v", max_bytes=MiB)
    assert leftovers(tmp_path) == []


async def test_redirect_loop_stops(downloader: MediaDownloader, server: LocalServer, tmp_path: Path) -> None:
    with pytest.raises(MediaRefused) as info:
        await downloader.download(f"{server.base_url}/loop", tmp_path / "v.mp4", max_bytes=MiB)
    assert "redirects" in str(info.value)
    assert len(server.hits) == 6  # the first request plus max_redirects=5 hops


async def test_relative_redirect_is_followed(downloader: MediaDownloader, server: LocalServer, tmp_path: Path) -> None:
    written = await downloader.download(f"{server.base_url}/redirect?to=/small", tmp_path / "v.mp4", max_bytes=MiB)
    assert written == 10
    assert (tmp_path / "v.mp4").read_bytes() == b"tiny video"


# -- streaming, caps and failures ---------------------------------------------------------------------------


async def test_streams_the_video_to_the_file(downloader: MediaDownloader, sim: AimlSimulator, tmp_path: Path) -> None:
    gen_id, url = await finished_video(sim, JobScript(video_size=3 * MiB + 123))
    dest = tmp_path / "out" / "video.mp4"

    written = await downloader.download(url, dest, max_bytes=10 * MiB)

    assert written == 3 * MiB + 123
    data = dest.read_bytes()
    assert data == sim.video_bytes(gen_id)
    assert [kind for kind, _, _ in iter_boxes(data)] == ["ftyp", "moov", "mdat"]
    assert leftovers(dest.parent) == ["video.mp4"]


async def test_declared_size_over_the_cap_is_refused_before_streaming(
    downloader: MediaDownloader, sim: AimlSimulator, tmp_path: Path
) -> None:
    _, url = await finished_video(sim, JobScript(video_size=2 * MiB))
    with pytest.raises(MediaTooLarge) as info:
        await downloader.download(url, tmp_path / "v.mp4", max_bytes=MiB)
    assert (info.value.size, info.value.limit) == (2 * MiB, MiB)
    assert info.value.permanent
    assert leftovers(tmp_path) == []


async def test_undeclared_size_over_the_cap_stops_while_streaming(
    downloader: MediaDownloader, server: LocalServer, tmp_path: Path
) -> None:
    (tmp_path / "keep.txt").write_text("unrelated")
    with pytest.raises(MediaTooLarge) as info:
        await downloader.download(f"{server.base_url}/chunked?mib=3", tmp_path / "v.mp4", max_bytes=MiB)
    assert info.value.size is None
    assert leftovers(tmp_path) == ["keep.txt"]  # no partial file, nothing else touched


@pytest.mark.parametrize(("status", "permanent"), [(404, True), (410, True), (503, False), (500, False)])
async def test_http_errors_are_classified(
    downloader: MediaDownloader, sim: AimlSimulator, tmp_path: Path, status: int, permanent: bool
) -> None:
    _, url = await finished_video(sim, JobScript(video_status=status))
    with pytest.raises(DownloadFailed) as info:
        await downloader.download(url, tmp_path / "v.mp4", max_bytes=MiB)
    assert info.value.permanent is permanent
    assert str(status) in str(info.value)
    assert leftovers(tmp_path) == []


async def test_truncated_body_is_transient_and_leaves_nothing(
    downloader: MediaDownloader, sim: AimlSimulator, tmp_path: Path
) -> None:
    _, url = await finished_video(sim, JobScript(video_size=2 * MiB, truncate_video=True))
    with pytest.raises(DownloadFailed) as info:
        await downloader.download(url, tmp_path / "v.mp4", max_bytes=10 * MiB)
    assert not info.value.permanent
    assert leftovers(tmp_path) == []


async def test_timeout_is_transient(server: LocalServer, tmp_path: Path) -> None:
    impatient = MediaDownloader(allow_private_networks=True, timeout=0.3)
    try:
        with pytest.raises(DownloadFailed) as info:
            await impatient.download(f"{server.base_url}/slow", tmp_path / "v.mp4", max_bytes=MiB)
    finally:
        await impatient.close()
    assert not info.value.permanent


async def test_connection_refused_is_transient(downloader: MediaDownloader, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadFailed) as info:
        await downloader.download(f"http://127.0.0.1:{port}/v.mp4", tmp_path / "v.mp4", max_bytes=MiB)
    assert not info.value.permanent

"""Test doubles for the outside world the services talk to.

`FakeChat` implements `ChatPort` the way Discord behaves where it matters to delivery: every post gets a new
message id, a nonce already used in the same channel returns the original message instead of posting again
(Discord's `enforce_nonce`), and calls can be told to fail, transiently or permanently.

`Env`/`make_env` wire the poller and delivery tests: a real store, the real AI/ML API client and downloader
against the AI/ML API simulator on 127.0.0.1, a FakeChat, and one FakeClock that both the poller and the
simulator read, so a test moves time instead of sleeping.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from bot.domain.clock import FakeClock
from bot.domain.jobs import Job, JobStatus, Reference
from bot.domain.validation import ImageMeta
from bot.provider.client import AimlClient
from bot.provider.download import MediaDownloader
from bot.services.intake import VideoRequest
from bot.services.media import MediaGone, MediaProblem
from bot.services.poller import OnChange, Poller, PollerConfig
from bot.services.ports import ChatError, ProviderPort
from bot.services.presenter import Card, Controls
from bot.sim.aimlapi import AimlSimulator, JobScript
from bot.storage import NewJob, QuotaRequest, Reserved, Store

__all__ = ["Env", "FakeChat", "FakeMedia", "Post", "attachments", "make_env", "references", "video_request"]

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024


@dataclass
class Post:
    """One message as the channel shows it."""

    message_id: int
    channel_id: int
    content: str
    nonce: str | None
    mention_user_id: int | None
    filename: str | None = None
    data: bytes | None = None  # the attachment's bytes, read when posted
    controls: Controls | None = None  # the buttons the message carries


@dataclass
class FakeChat:
    upload_limits: dict[int, int] = field(default_factory=dict)
    default_upload_limit: int = DEFAULT_UPLOAD_LIMIT
    posts: list[Post] = field(default_factory=list)
    cards: list[tuple[int, int, Card]] = field(default_factory=list)
    threads: dict[int, int] = field(default_factory=dict)  # card message id -> thread id
    gone_channels: set[int] = field(default_factory=set)  # deleted threads: every call there is a 404
    calls: list[str] = field(default_factory=list)  # operation names in order, including failed ones
    _failures: dict[str, list[ChatError | Exception]] = field(default_factory=dict)
    _lost_replies: dict[str, int] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(9_000_000_000_000_000))

    # ---- test controls

    def fail_next(self, operation: str, *errors: ChatError | Exception) -> None:
        """The next calls of `operation` ("post_file", "post_text", "find_message", "update_card",
        "start_thread") raise these."""
        self._failures.setdefault(operation, []).extend(errors)

    def lose_reply_next(self, operation: str, times: int = 1) -> None:
        """The next posts of `operation` reach the channel but the answer is lost (a transient error is raised)."""
        self._lost_replies[operation] = self._lost_replies.get(operation, 0) + times

    def seed(self, channel_id: int, content: str) -> int:
        """Put a message in a channel as if the bot had posted it earlier (e.g. before a crash)."""
        post = Post(next(self._ids), channel_id, content, nonce=None, mention_user_id=None)
        self.posts.append(post)
        return post.message_id

    def posts_in(self, channel_id: int) -> list[Post]:
        return [p for p in self.posts if p.channel_id == channel_id]

    @property
    def files(self) -> list[Post]:
        return [p for p in self.posts if p.filename is not None]

    # ---- ChatPort

    async def upload_limit(self, guild_id: int) -> int:
        return self.upload_limits.get(guild_id, self.default_upload_limit)

    def _enter(self, operation: str, channel_id: int) -> None:
        self.calls.append(operation)
        queued = self._failures.get(operation)
        if queued:
            raise queued.pop(0)
        if channel_id in self.gone_channels:
            raise ChatError("Unknown Channel", permanent=True, status=404)

    def _post(self, operation: str, post: Post) -> int:
        message_id = post.message_id
        duplicate = post.nonce is not None and any(
            p.channel_id == post.channel_id and p.nonce == post.nonce for p in self.posts
        )
        if duplicate:
            # Discord with enforce_nonce: the same nonce again returns the original message, no new one.
            message_id = next(
                p.message_id for p in self.posts if p.channel_id == post.channel_id and p.nonce == post.nonce
            )
        else:
            self.posts.append(post)
        if self._lost_replies.get(operation):
            self._lost_replies[operation] -= 1
            raise ChatError("connection reset after sending", permanent=False)
        return message_id

    async def post_file(
        self,
        thread_id: int,
        content: str,
        path: Path,
        filename: str,
        *,
        nonce: str,
        mention_user_id: int,
        controls: Controls | None = None,
    ) -> int:
        self._enter("post_file", thread_id)
        data = path.read_bytes()
        post = Post(next(self._ids), thread_id, content, nonce, mention_user_id, filename, data, controls)
        return self._post("post_file", post)

    async def post_text(
        self,
        thread_id: int,
        content: str,
        *,
        nonce: str | None,
        mention_user_id: int,
        controls: Controls | None = None,
    ) -> int:
        self._enter("post_text", thread_id)
        post = Post(next(self._ids), thread_id, content, nonce, mention_user_id, controls=controls)
        return self._post("post_text", post)

    async def delete_message(self, channel_id: int, message_id: int) -> bool:
        self._enter("delete_message", channel_id)
        found = [p for p in self.posts if p.channel_id == channel_id and p.message_id == message_id]
        for post in found:
            self.posts.remove(post)
        return bool(found)

    async def find_message(self, thread_id: int, contains: str) -> int | None:
        self._enter("find_message", thread_id)
        for post in reversed(self.posts):
            if post.channel_id == thread_id and contains in post.content:
                return post.message_id
        return None

    async def start_thread(self, channel_id: int, message_id: int, name: str) -> int:
        self._enter("start_thread", channel_id)
        if message_id in self.threads:
            raise ChatError(
                "A thread has already been created for this message", permanent=True, status=400, code=160004
            )
        self.threads[message_id] = message_id  # Discord: a thread started on a message has the message's id
        return message_id

    async def update_card(self, channel_id: int, message_id: int, render: Callable[[], Awaitable[Card]]) -> None:
        self._enter("update_card", channel_id)
        self.cards.append((channel_id, message_id, await render()))


@dataclass
class FakeMedia:
    """`MediaHost` the way Discord behaves where it matters: a sheet is served while it exists (with a newly
    signed URL per read), an upload while it is not deleted; `failing` makes every question fail that way."""

    sheets: dict[int, dict[int, str]] = field(default_factory=dict)  # message id -> attachment id -> name
    deleted_uploads: set[str] = field(default_factory=set)
    failing: MediaProblem | None = None
    sheet_failures: dict[int, MediaProblem] = field(default_factory=dict)  # message id -> how reading it fails
    reads: int = 0

    def add_sheet(self, message_id: int, attachment_ids: Sequence[int]) -> None:
        self.sheets[message_id] = {a: f"sheet{message_id}-{a}.png" for a in attachment_ids}

    async def sheet_urls(self, channel_id: int, message_id: int) -> dict[int, str]:
        self.reads += 1
        failure = self.failing or self.sheet_failures.get(message_id)
        if failure is not None:
            raise failure
        if message_id not in self.sheets:
            raise MediaGone(f"Unknown Message {message_id}")
        served = self.sheets[message_id].items()
        return {a: f"https://cdn.example.test/{channel_id}/{a}/{name}?v={self.reads}" for a, name in served}

    async def upload_urls(self, urls: Sequence[str]) -> dict[str, str]:
        if self.failing is not None:
            raise self.failing
        if any(url in self.deleted_uploads for url in urls):
            raise MediaGone("the CDN answered 404")
        return {url: url + "&fresh=1" for url in urls}


KEY = "sk-test-0123456789abcdef"
GUILD, CHANNEL, USER = 1001, 2002, 3003
THREAD, CARD = 4004, 5005
QUOTA = QuotaRequest(window_seconds=86_400, fallback_limit=5, max_active=5)
MODEL = "klingai/video-o1-reference-to-video"


def references(n: int = 2) -> tuple[Reference, ...]:
    return tuple(
        Reference(f"https://cdn.example.test/att/{i}/ref{i}.png", f"ref{i}.png", "image/png", 50_000, 1024, 768)
        for i in range(1, n + 1)
    )


def attachments(n: int = 2, **meta: Any) -> tuple[tuple[ImageMeta, str], ...]:
    """`n` attached images as Discord describes them (valid unless `meta` overrides a field), with their URLs."""
    values: dict[str, Any] = {"content_type": "image/png", "size": 50_000, "width": 1024, "height": 768}
    values.update(meta)
    return tuple(
        (
            ImageMeta(
                i,
                values.get("filename", f"ref{i}.png"),
                values["content_type"],
                values["size"],
                values["width"],
                values["height"],
            ),
            f"https://cdn.example.test/att/{i}/ref{i}.png",
        )
        for i in range(1, n + 1)
    )


def video_request(**fields: Any) -> VideoRequest:
    """A `/video` as Discord describes it: valid unless `fields` say otherwise."""
    values: dict[str, Any] = {
        "guild_id": GUILD,
        "channel_id": CHANNEL,
        "user_id": USER,
        "role_ids": (),
        "prompt": "the fox from image 1 runs through the forest of image 2",
        "images": attachments(2),
        "duration": 5,
        "aspect_ratio": "16:9",
        "attachment_ids": (700, 701),
    }
    if "images" in fields and "attachment_ids" not in fields:
        values["attachment_ids"] = ()
    return VideoRequest(**{**values, **fields})


@dataclass
class Env:
    tmp: Path
    clock: FakeClock
    store: Store
    sim: AimlSimulator
    client: AimlClient
    downloader: MediaDownloader
    chat: FakeChat
    config: PollerConfig
    provider: ProviderPort
    stack: contextlib.AsyncExitStack
    pollers: list[Poller] = field(default_factory=list)

    def poller(self, *, on_change: OnChange | None = None, **config: Any) -> Poller:
        """A poller over this world (a fresh one models a restarted process)."""
        poller = Poller(
            on_change=on_change,
            store=self.store,
            provider=self.provider,
            downloader=self.downloader,
            chat=self.chat,
            config=replace(self.config, **config),
            clock=self.clock,
            rand=lambda: 0.5,  # no jitter: schedules are exact
        )
        self.pollers.append(poller)
        return poller

    async def new_job(
        self, prompt: str = "a red fox runs through snow", *, thread: int | None = THREAD, **kw: Any
    ) -> Job:
        new = NewJob(
            guild_id=kw.pop("guild_id", GUILD),
            channel_id=CHANNEL,
            user_id=kw.pop("user_id", USER),
            prompt=prompt,
            duration=kw.pop("duration", 5),
            aspect_ratio="16:9",
            model=MODEL,
            references=kw.pop("refs", references()),
        )
        result = await self.store.jobs.create_reserved(new, QUOTA)
        assert isinstance(result, Reserved), result
        return await self.store.jobs.update_fields(result.job.id, thread_id=thread, status_message_id=CARD)

    async def job(self, job_id: int) -> Job:
        job = await self.store.jobs.get(job_id)
        assert job is not None
        return job

    async def used(self, user_id: int = USER) -> int:
        return (await self.store.quotas.status(GUILD, user_id, QUOTA)).used

    async def drive(self, poller: Poller, job_id: int, *, step: float = 5.0, rounds: int = 200) -> Job:
        """Run rounds, moving time by `step` between them, until the job is terminal."""
        for _ in range(rounds):
            await poller.run_once()
            job = await self.job(job_id)
            if job.status in (JobStatus.DELIVERED, JobStatus.FAILED, JobStatus.EXPIRED, JobStatus.CANCELLED):
                return job
            self.clock.advance(step)
        raise AssertionError(f"job {job_id} did not finish: {await self.job(job_id)}")

    def submits(self) -> int:
        """POSTs the provider received (accepted or not)."""
        return sum(1 for r in self.sim.requests if r.method == "POST")


@contextlib.asynccontextmanager
async def make_env(
    tmp: Path, script: JobScript | None = None, *, real_time: bool = False, **config: Any
) -> AsyncIterator[Env]:
    async with contextlib.AsyncExitStack() as stack:
        clock = FakeClock.real_time() if real_time else FakeClock()  # real time: the `run()` loop sleeps for real
        store = await Store.open(tmp / "db" / "reelbot.db", clock=clock)
        stack.push_async_callback(store.close)
        sim = AimlSimulator(
            KEY, clock=clock, fetch_images=False, default_script=script or JobScript(queued_s=5, generating_s=20)
        )
        await sim.start()
        stack.push_async_callback(sim.stop)
        session = aiohttp.ClientSession(trust_env=False)
        stack.push_async_callback(session.close)
        client = AimlClient(session, sim.base_url, SecretStr(KEY), timeout=5.0)
        downloader = MediaDownloader(allow_private_networks=True, timeout=10.0)
        stack.push_async_callback(downloader.close)
        defaults: dict[str, Any] = {
            "poll_interval": 10.0,
            "job_timeout": 1800.0,
            "media_dir": tmp / "media",
            # The pacer's own tests run it as deployed; here it starts fast so tests spend no real time waiting.
            "provider_start_rate": 10_000.0,
            "stop_grace": 0.5,
        }
        defaults.update(config)
        env = Env(tmp, clock, store, sim, client, downloader, FakeChat(), PollerConfig(**defaults), client, stack)

        async def stop_pollers() -> None:
            for poller in env.pollers:
                await poller.stop()

        stack.push_async_callback(stop_pollers)
        yield env

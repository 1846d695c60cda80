"""Hostile input: whatever members type or attach, and whatever address the provider hands back.

Properties (hypothesis) over the pure checks and the text that is echoed into Discord, SSRF attempts against the
real downloader with a sentinel server that must never be reached, and a few hostile `/video` interactions
through the real bot and the Discord simulator.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.domain.jobs import FailureKind, Job, JobStatus, Reference
from bot.domain.text import escape_markdown, quote_prompt
from bot.domain.validation import (
    ASPECT_RATIOS,
    DURATIONS,
    MAX_PROMPT_CHARS,
    ImageMeta,
    clean_prompt,
    problems_message,
    validate_video_request,
)
from bot.provider.download import DownloadError, MediaDownloader, MediaRefused, MediaTooLarge
from bot.services.presenter import failure_message, render_card, thread_name
from bot.sim.discord import AttachmentSpec
from bot.sim.discord.driver import build_command_interaction
from tests import e2e_world
from tests.e2e_world import World, image

world = e2e_world.world  # the end-to-end fixture: both simulators and a real bot

MENTION = re.compile(r"@(everyone|here)|<@[!&]?\d+>|<#\d+>")
MARKDOWN = set("\\*_~`|>#-[]()<:")
DISCORD_CONTENT_LIMIT = 2000

# Text with everything: control and format characters, lone surrogates (valid in JSON escapes), RTL overrides,
# zero-width joiners, plus the pieces attackers actually use.
any_char = st.characters(codec=None, categories=None)
weapons = st.sampled_from(
    [
        "@everyone",
        "@here",
        "<@&123456789012345678>",
        "<@123456789012345678>",
        "<@!123456789012345678>",
        "<#123456789012345678>",
        "**bold**",
        "# heading",
        "[click](https://evil.example/)",
        "||spoiler||",
        "```",
        "`",
        "> quote",
        "\u202e",
        "\u200b",
        "\x00",
        "\r\n",
        "\\",
        "@\u200beveryone",
        "ｅｖｅｒｙｏｎｅ",
    ]
)
hostile_text = st.lists(st.one_of(st.text(any_char, max_size=20), weapons), max_size=30).map("".join)


def _unescaped_special(text: str) -> list[str]:
    """Markdown characters in `text` not preceded by the backslash that escapes them."""
    found, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            i += 2  # the escape and what it escapes
            continue
        if text[i] in MARKDOWN:
            found.append(text[i])
        i += 1
    return found


# ---------------------------------------------------------------- what is echoed into Discord


@given(hostile_text)
@example("@everyone look at <@&1> **now**")
@example("\\@everyone")
def test_escaped_prompt_can_neither_ping_nor_restyle(text: str) -> None:
    escaped = escape_markdown(text)
    assert not MENTION.search(escaped)
    assert _unescaped_special(escaped) == []


@given(hostile_text, st.integers(min_value=1, max_value=400))
def test_quoted_prompt_is_one_safe_line_of_bounded_length(text: str, limit: int) -> None:
    quoted = quote_prompt(text, limit)
    assert "\n" not in quoted
    assert not MENTION.search(quoted)
    # Escaping can at most double the shortened text (every character escaped, plus the zero-width spaces).
    assert len(quoted) <= 2 * limit + 2


def job_with(prompt: str, last_error: str | None = None, status: JobStatus = JobStatus.QUEUED) -> Job:
    return Job(
        id=7,
        guild_id=1,
        channel_id=2,
        user_id=3,
        prompt=prompt,
        duration=5,
        aspect_ratio="16:9",
        model="m",
        references=(Reference("https://x/1.png", "1.png", "image/png", 1, 400, 400),),
        status=status,
        created_at=0.0,
        updated_at=0.0,
        delivery_nonce="n",
        failure_kind=FailureKind.REJECTED_CONTENT if status is JobStatus.FAILED else None,
        last_error=last_error,
    )


@given(hostile_text.map(clean_prompt).filter(bool), hostile_text)
@settings(suppress_health_check=[HealthCheck.filter_too_much])
def test_cards_threads_and_failure_messages_stay_within_discord_limits_and_never_ping(
    prompt: str, provider_error: str
) -> None:
    card = render_card(job_with(prompt))
    assert len(card.title) <= 256
    assert len(card.description) <= 4096
    for name, value in card.fields:
        assert len(name) <= 256
        assert 0 < len(value) <= 1024
    assert not MENTION.search(card.description)

    name = thread_name(7, prompt)
    assert 1 <= len(name) <= 100
    assert "\n" not in name

    # The provider's error text is untrusted too: it is echoed in the thread and on the card.
    failed = job_with(prompt, last_error=provider_error, status=JobStatus.FAILED)
    message = failure_message(failed)
    assert len(message) <= DISCORD_CONTENT_LIMIT
    assert [m.group(0) for m in MENTION.finditer(message)] == ["<@3>"]  # the requester, and only them
    assert not MENTION.search(render_card(failed).fields[0][1])


# ---------------------------------------------------------------- the checks on what a member sends

image_meta = st.builds(
    ImageMeta,
    position=st.integers(1, 7),
    filename=hostile_text,
    content_type=st.one_of(
        st.none(),
        st.sampled_from(["image/png", "image/jpeg", "image/webp", "image/gif", "IMAGE/PNG; q=1", "text/html"]),
        hostile_text,
    ),
    size=st.integers(-(2**63), 2**63),
    width=st.one_of(st.none(), st.integers(-(2**31), 2**40)),
    height=st.one_of(st.none(), st.integers(-(2**31), 2**40)),
)


@given(
    prompt=hostile_text,
    images=st.lists(image_meta, max_size=9),
    duration=st.integers(-(2**53), 2**53),
    aspect_ratio=st.one_of(st.sampled_from(ASPECT_RATIOS), hostile_text),
)
@example(prompt="x" * 100_000, images=[], duration=0, aspect_ratio="")
@example(
    prompt="x" * 100_000,
    images=[ImageMeta(i, "x" * 100 + ".png", "image/png", 2**62, 299, 2**40) for i in range(1, 8)],
    duration=-(2**53),
    aspect_ratio="bad" * 100,
)
def test_validation_never_crashes_and_every_rule_broken_is_explained_briefly(
    prompt: str, images: list[ImageMeta], duration: int, aspect_ratio: str
) -> None:
    cleaned = clean_prompt(prompt)
    problems = validate_video_request(cleaned, images, duration, aspect_ratio)

    assert all(isinstance(p, str) and p.strip() for p in problems)
    fine = (
        1 <= len(cleaned) <= MAX_PROMPT_CHARS
        and 1 <= len(images) <= 7
        and duration in DURATIONS
        and aspect_ratio in ASPECT_RATIOS
    )
    if not fine:
        assert problems
    # What /video sends back (cogs/video.py) must fit one Discord message, or the member sees nothing at all.
    reply = problems_message(problems)
    assert len(reply) <= DISCORD_CONTENT_LIMIT
    assert reply.endswith("Nothing was charged.")
    if problems:
        assert problems[0] in reply  # the first problem is always named in full
    for problem in problems:
        # Member-supplied names are shown as inline code (backticks replaced), where Discord renders no mention.
        assert not MENTION.search(re.sub(r"`[^`]*`", "", problem))


@given(hostile_text)
def test_cleaned_prompt_has_no_invisible_or_control_characters(text: str) -> None:
    cleaned = clean_prompt(text)
    assert cleaned == cleaned.strip()
    assert not any(ord(c) < 32 and c not in "\n\t" for c in cleaned)
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in cleaned)
    assert "\u202e" not in cleaned
    assert "\u200b" not in cleaned


# ---------------------------------------------------------------- SSRF through the provider's video URL


@dataclass
class Sentinel:
    """A server that must never be reached; `hits` counts every request that got through."""

    host: str
    port: int
    hits: int = 0


@pytest.fixture(scope="module")
def sentinel() -> Iterator[Sentinel]:
    """On 127.0.0.2 (still loopback) so a downloader that treats only 127.0.0.1 as "public" can reach a redirector
    on 127.0.0.1 but must refuse this one. Runs in its own thread/loop: hypothesis tests are synchronous."""
    loop = asyncio.new_event_loop()
    box = Sentinel("127.0.0.2", 0)

    async def handle(request: web.Request) -> web.Response:
        box.hits += 1
        return web.Response(body=b"secret metadata")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, box.host, 0)
    loop.run_until_complete(site.start())
    box.port = int(runner.addresses[0][1])
    yield box
    loop.run_until_complete(runner.cleanup())
    loop.close()


def loopback_spellings(octet: int, port: int) -> list[str]:
    """127.0.0.<octet> written the ways URL parsers and resolvers disagree about."""
    n = (127 << 24) | octet
    return [
        f"http://127.0.0.{octet}:{port}/v.mp4",
        f"http://{n}:{port}/v.mp4",
        f"http://{hex(n)}:{port}/v.mp4",
        f"http://0177.0.0.{octet}:{port}/v.mp4",
        f"http://127.{octet}:{port}/v.mp4" if octet < 256 else "",
        f"http://[::ffff:127.0.0.{octet}]:{port}/v.mp4",
        f"http://[::ffff:7f00:{octet:x}]:{port}/v.mp4",
        f"http://user:pass@127.0.0.{octet}:{port}/v.mp4",
        f"HTTP://127.0.0.{octet}:{port}/v.mp4",
    ]


PRIVATE_LITERALS = [
    "http://10.0.0.1/v.mp4",
    "http://172.16.5.4/v.mp4",
    "http://192.168.1.1/v.mp4",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/v.mp4",
    "http://0.0.0.0/v.mp4",
    "http://[::1]/v.mp4",
    "http://[fe80::1]/v.mp4",
    "http://[fc00::1]/v.mp4",
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:7f00:1::]/",
    "http://224.0.0.1/v.mp4",
    "http://255.255.255.255/v.mp4",
]
OTHER_SCHEMES = [
    "file:///etc/passwd",
    "ftp://example.com/v.mp4",
    "gopher://example.com:70/_GET",
    "data:video/mp4;base64,AAAA",
    "javascript:alert(1)",
    "ws://example.com/v",
    "//example.com/v.mp4",
    "",
    "not a url",
    "http:///v.mp4",
]


def download(url: str, tmp: Path, **kwargs: Any) -> BaseException | int:
    async def go() -> BaseException | int:
        downloader = MediaDownloader(allow_private_networks=False, timeout=3.0, **kwargs)
        try:
            return await downloader.download(url, tmp / "v.mp4", max_bytes=1024 * 1024)
        except (DownloadError, ValueError) as exc:
            return exc
        finally:
            await downloader.close()

    return asyncio.run(go())


def test_loopback_in_every_spelling_is_refused_and_never_reached(sentinel: Sentinel, tmp_path: Path) -> None:
    for url in filter(None, loopback_spellings(2, sentinel.port) + loopback_spellings(1, sentinel.port)):
        outcome = download(url, tmp_path)
        assert isinstance(outcome, DownloadError), (url, outcome)
        assert not isinstance(outcome, MediaTooLarge)
    assert sentinel.hits == 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", PRIVATE_LITERALS + OTHER_SCHEMES)
def test_private_link_local_and_other_scheme_urls_are_refused_before_connecting(url: str, tmp_path: Path) -> None:
    outcome = download(url, tmp_path)
    assert isinstance(outcome, MediaRefused), (url, outcome)


@given(st.ip_addresses())
@settings(max_examples=300, deadline=None)
def test_any_non_global_address_literal_is_refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    host = f"[{address}]" if address.version == 6 else str(address)
    if address.is_global and not (address.version == 6 and address.ipv4_mapped and not address.ipv4_mapped.is_global):
        return  # public addresses are allowed; nothing to check without the internet
    downloader = MediaDownloader(allow_private_networks=False)
    with pytest.raises(MediaRefused):
        downloader._check_url(f"http://{host}/v.mp4")


@pytest.fixture
async def redirector(sentinel: Sentinel) -> AsyncIterator[tuple[str, list[str]]]:
    """A 'public' server (127.0.0.1, allowed by the test policy) that redirects to whatever `targets[0]` says."""
    targets: list[str] = [""]

    async def hop(request: web.Request) -> web.Response:
        raise web.HTTPFound(targets[0])

    app = web.Application()
    app.router.add_get("/hop", hop)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hop", targets
    finally:
        await runner.cleanup()


async def test_redirects_to_private_addresses_or_other_schemes_are_refused(
    redirector: tuple[str, list[str]], sentinel: Sentinel, tmp_path: Path
) -> None:
    start, targets = redirector
    only_127_0_0_1 = lambda ip: str(ip) == "127.0.0.1"  # noqa: E731  (the redirector plays the public CDN)
    hostile = [u for u in loopback_spellings(2, sentinel.port) if u and "127.0.0.1" not in u]
    hostile += ["http://169.254.169.254/latest/meta-data/", "http://[::1]/", "file:///etc/passwd", "gopher://x/"]
    for target in hostile:
        targets[0] = target
        downloader = MediaDownloader(allow_private_networks=False, timeout=3.0, address_allowed=only_127_0_0_1)
        try:
            with pytest.raises(DownloadError) as caught:
                await downloader.download(start, tmp_path / "v.mp4", max_bytes=1024)
        finally:
            await downloader.close()
        assert not isinstance(caught.value, MediaTooLarge), target
    assert sentinel.hits == 0


async def test_endless_and_oversized_bodies_stop_at_the_cap_and_leave_nothing(tmp_path: Path) -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        chunk = b"\0" * 65536
        for _ in range(10_000):  # 640 MiB if nobody stops reading
            await resp.write(chunk)
        return resp

    async def oversized(request: web.Request) -> web.Response:
        return web.Response(body=b"\0" * 10, headers={"Content-Length": str(10**12)})

    app = web.Application()
    app.router.add_get("/endless", endless)
    app.router.add_get("/oversized", oversized)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    downloader = MediaDownloader(allow_private_networks=True, timeout=10.0)
    try:
        for path in ("/endless", "/oversized"):
            with pytest.raises(MediaTooLarge):
                await downloader.download(base + path, tmp_path / "v.mp4", max_bytes=2 * 1024 * 1024)
    finally:
        await downloader.close()
        await runner.cleanup()
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- hostile /video through the real bot

HOSTILE_PROMPTS = [
    "@everyone @here free nitro",
    "<@&{role}> <@{member}> look",
    "**bold** __under__ ~~strike~~ ||spoiler|| [link](https://evil.example) # head\n> quote\n```py\nx```",
    "\u202egnp.exe\u200b\u0000\u0007 a fox",
    "🦊" * 2500,
]


async def test_hostile_prompts_never_ping_and_are_shown_escaped(world: World) -> None:
    await world.start_bot(quota_default_limit=100, max_active_jobs_per_user=100)
    role = next(iter(world.guild.roles))
    for template in HOSTILE_PROMPTS:
        prompt = template.format(role=role, member=world.member)
        handle = await world.video(prompt)
        reply = await handle.wait_response(timeout=5)
        assert not reply.mention_everyone, prompt
        assert reply.mentioned_role_ids == []
        assert reply.mentioned_user_ids == []
        text = reply.content + " ".join(str(e.get("description", "")) for e in reply.embeds)
        assert not MENTION.search(text), text
    # Every public message the bot posted, threads included, pinged nobody but requesters.
    for message in world.discord.messages(world.channel):
        assert not message.mention_everyone
        assert message.mentioned_role_ids == []


async def test_absurd_attachments_get_a_clear_private_answer_and_charge_nothing(world: World) -> None:
    await world.start_bot()
    cases: list[dict[str, AttachmentSpec]] = [
        {"image1": image("a`b`@everyone\n.png", width=10**9, height=1)},
        {"image1": image("zero.png", width=0, height=0)},
        {"image1": image("x" * 5000 + ".png", size=10**15)},
        {"image1": image("page.html", content_type="text/html; charset=<script>")},
        {f"image{i}": image(f"<@&1>{i}.gif", 10, 10**6, content_type="image/gif") for i in range(1, 8)},
        {f"image{i}": image(f"{'long' * 30}{i}.png", 299, 10**6, size=2**40) for i in range(1, 8)},
    ]
    for images in cases:
        handle = await world.video("a cat", images=images)
        reply = await handle.wait_response(timeout=5)
        assert handle.ephemeral
        assert "Nothing was charged" in reply.content
        assert len(reply.content) <= DISCORD_CONTENT_LIMIT
        assert not reply.mention_everyone
        assert reply.mentioned_role_ids == []
    assert world.aiml.submissions == []
    assert "used **0** of **5**" in await world.quota_text()


def _set_option(handle: Any, name: str, value: Any, option_type: int | None = None) -> None:
    options = handle.payload["data"]["options"]
    for option in options:
        if option["name"] == name:
            option["value"] = value
            if option_type is not None:
                option["type"] = option_type
            return
    options.append({"name": name, "type": option_type or 3, "value": value})


@pytest.mark.parametrize(
    ("option", "value", "option_type"),
    [
        ("duration", 7, 4),
        ("duration", "ten", 3),
        ("duration", 2**60, 4),
        ("aspect_ratio", "4:3", 3),
        ("aspect_ratio", 169, 4),
        ("prompt", 12345, 4),
        ("prompt", "x" * 6000, 3),
        ("image1", "999999999999", 11),
    ],
    ids=[
        "duration-7",
        "duration-str",
        "duration-huge",
        "ratio-4:3",
        "ratio-int",
        "prompt-int",
        "prompt-6000",
        "image-ghost",
    ],
)
async def test_wrong_option_types_are_answered_not_crashed_on(
    world: World, option: str, value: Any, option_type: int
) -> None:
    """A client that ignores the command schema (Discord normally enforces it) still gets a private answer."""
    await world.start_bot()
    handle = build_command_interaction(
        world.discord,
        "video",
        user_id=world.member,
        channel_id=world.channel,
        options={"prompt": "a cat"},
        attachments={"image1": image("ok.png")},
        subcommand=None,
    )
    _set_option(handle, option, value, option_type)
    world.discord._dispatch_interaction(handle)
    reply = await handle.wait_response(timeout=5)
    assert handle.ephemeral
    assert reply.content
    assert not reply.mention_everyone
    assert world.aiml.submissions == []
    await asyncio.sleep(0.2)
    assert world.discord.threads(world.channel) == []

"""The simulator's REST surface over plain HTTP: auth, exact headers, interaction callback rules, message
limits, threads and forum posts, mentions, pagination, rate-limit buckets and injected faults."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.sim.discord import DiscordSimulator
from tests.discord_sim_bot import sim_fixture  # noqa: F401

PING = {"name": "ping", "description": "Reply", "type": 1}


class Api:
    """A tiny REST client: returns (status, parsed JSON or None, headers)."""

    def __init__(self, session: aiohttp.ClientSession, sim: DiscordSimulator) -> None:
        self.session = session
        self.sim = sim

    async def call(
        self, method: str, path: str, *, body: Any = None, form: aiohttp.FormData | None = None, auth: bool = True
    ) -> tuple[int, Any, Any]:
        headers = {"Authorization": f"Bot {self.sim.token}"} if auth else {}
        kwargs: dict[str, Any] = {"headers": headers}
        if form is not None:
            kwargs["data"] = form
        elif body is not None:
            kwargs["json"] = body
        async with self.session.request(method, self.sim.rest_url + path, **kwargs) as resp:
            raw = await resp.read()
            data = json.loads(raw) if resp.headers.get("Content-Type") == "application/json" else None
            return resp.status, data, resp.headers

    async def sync(self, *commands: dict[str, Any]) -> None:
        gid = self.sim.guild.id
        status, _, _ = await self.call(
            "PUT", f"/applications/{self.sim.application_id}/guilds/{gid}/commands", body=list(commands)
        )
        assert status == 200


@pytest.fixture
async def api(sim: DiscordSimulator) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, sim)


def files_form(payload: dict[str, Any], files: list[tuple[str, bytes]]) -> aiohttp.FormData:
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("payload_json", json.dumps(payload), content_type="text/plain; charset=utf-8")
    for i, (name, data) in enumerate(files):
        form.add_field(f"files[{i}]", data, filename=name, content_type="application/octet-stream")
    return form


async def test_bot_auth_and_exact_json_headers(api: Api) -> None:
    status, body, _ = await api.call("GET", "/users/@me", auth=False)
    assert (status, body["code"]) == (401, 0)
    status, body, headers = await api.call("GET", "/users/@me")
    assert status == 200
    assert body["id"] == str(api.sim.bot_user_id)
    assert headers["Content-Type"] == "application/json"
    assert "Via" in headers


async def test_callback_rules(api: Api) -> None:
    sim = api.sim
    await api.sync(PING)
    h = await sim.invoke_command("ping", user_id=sim.guild.member_ids[0], channel_id=sim.guild.text_channel_id)
    base = f"/interactions/{h.id}"
    status, body, _ = await api.call("POST", f"{base}/wrong-token/callback", body={"type": 4}, auth=False)
    assert (status, body["code"]) == (404, 10062)
    status, body, _ = await api.call(
        "POST", f"{base}/{h.token}/callback?with_response=true", body={"type": 5}, auth=False
    )
    assert status == 200
    assert body["interaction"]["id"] == str(h.id)
    assert body["interaction"]["response_message_loading"] is True
    assert "resource" not in body  # the document describes resources for types 4, 7 and 12 only
    status, body, _ = await api.call("POST", f"{base}/{h.token}/callback", body={"type": 4}, auth=False)
    assert (status, body["code"]) == (400, 40060)
    # The loading message is visible as "thinking" until the first edit.
    [loading] = sim.messages(sim.guild.text_channel_id)
    assert loading.loading
    hook = f"/webhooks/{sim.application_id}/{h.token}/messages/@original"
    status, body, _ = await api.call("PATCH", hook, body={"content": "done"}, auth=False)
    assert (status, body["content"], body["flags"]) == (200, "done", 0)
    status, body, _ = await api.call("PATCH", f"/webhooks/1/{h.token}/messages/@original", body={}, auth=False)
    assert (status, body["code"]) == (404, 10015)


async def test_plain_callback_returns_204_and_creates_the_reply(api: Api) -> None:
    sim = api.sim
    await api.sync(PING)
    h = await sim.invoke_command("ping", user_id=sim.guild.member_ids[0], channel_id=sim.guild.text_channel_id)
    status, _, _ = await api.call(
        "POST", f"/interactions/{h.id}/{h.token}/callback", body={"type": 4, "data": {"content": "hi"}}, auth=False
    )
    assert status == 204
    reply = await h.wait_response()
    assert (reply.content, reply.type, reply.author_id) == ("hi", 20, sim.bot_user_id)


async def test_message_limits(api: Api) -> None:
    cid = api.sim.guild.text_channel_id
    path = f"/channels/{cid}/messages"
    status, body, _ = await api.call("POST", path, body={"content": "x" * 2001})
    assert (status, body["code"]) == (400, 50035)
    assert "content" in body["errors"]
    status, body, _ = await api.call("POST", path, body={"content": ""})
    assert (status, body["code"]) == (400, 50006)
    eleven = [(f"f{i}.txt", b"x") for i in range(11)]
    status, body, _ = await api.call("POST", path, form=files_form({"content": "many"}, eleven))
    assert (status, body["code"]) == (400, 50035)
    status, body, _ = await api.call("POST", path, body={"content": "x" * 2000})
    assert status == 200
    assert [len(m.content) for m in api.sim.messages(cid)] == [2000]


async def test_oversized_file_is_rejected_and_not_stored(api: Api) -> None:
    sim = api.sim
    cid = sim.guild.text_channel_id
    form = files_form({"content": "big"}, [("big.bin", b"\0" * (sim.guild.filesize_limit + 1))])
    status, body, _ = await api.call("POST", f"/channels/{cid}/messages", form=form)
    assert (status, body["code"]) == (413, 40005)
    assert sim.attachments == {}
    assert sim.messages(cid) == []


async def test_threads_from_messages_and_forum_posts(api: Api) -> None:
    sim = api.sim
    g = sim.guild
    _, msg, _ = await api.call("POST", f"/channels/{g.text_channel_id}/messages", body={"content": "anchor"})
    path = f"/channels/{g.text_channel_id}/messages/{msg['id']}/threads"
    status, thread, _ = await api.call("POST", path, body={"name": "render", "auto_archive_duration": 1440})
    assert (status, thread["id"], thread["type"]) == (201, msg["id"], 11)
    status, body, _ = await api.call("POST", path, body={"name": "again"})
    assert (status, body["code"]) == (400, 160004)
    status, body, _ = await api.call("POST", path.replace(msg["id"], "123"), body={"name": "x"})
    assert (status, body["code"]) == (404, 10008)

    status, body, _ = await api.call("POST", f"/channels/{g.forum_channel_id}/messages", body={"content": "x"})
    assert (status, body["code"]) == (400, 50008)
    form = files_form({"name": "Showcase: cat", "message": {"content": "look"}}, [("cat.mp4", b"mp4")])
    status, post, _ = await api.call("POST", f"/channels/{g.forum_channel_id}/threads", form=form)
    assert status == 201
    assert post["message"]["id"] == post["id"]
    assert [t.name for t in sim.threads(g.forum_channel_id)] == ["Showcase: cat"]
    [starter] = sim.messages(int(post["id"]))
    assert (starter.content, bytes(starter.attachments[0].data)) == ("look", b"mp4")


async def test_mentions_follow_allowed_mentions(api: Api) -> None:
    sim = api.sim
    g = sim.guild
    alice, bob = g.member_ids
    content = f"<@{alice}> <@{bob}> <@&{g.moderator_role_id}> @everyone"
    _, body, _ = await api.call(
        "POST",
        f"/channels/{g.text_channel_id}/messages",
        body={"content": content, "allowed_mentions": {"parse": [], "users": [str(alice)]}},
    )
    msg = sim.message(int(body["id"]))
    assert msg is not None
    assert (msg.mentioned_user_ids, msg.mentioned_role_ids, msg.mention_everyone) == ([alice], [], False)
    _, body, _ = await api.call("POST", f"/channels/{g.text_channel_id}/messages", body={"content": content})
    msg = sim.message(int(body["id"]))
    assert msg is not None
    # Without allowed_mentions everything parses, but @everyone needs MENTION_EVERYONE, which the bot lacks.
    assert (msg.mentioned_user_ids, msg.mentioned_role_ids, msg.mention_everyone) == (
        [alice, bob],
        [g.moderator_role_id],
        False,
    )


async def test_recent_messages_newest_first_with_before(api: Api) -> None:
    cid = api.sim.guild.text_channel_id
    ids = []
    api.sim.rate_limits.clear()
    for i in range(5):
        _, body, _ = await api.call("POST", f"/channels/{cid}/messages", body={"content": str(i)})
        ids.append(body["id"])
    _, page, _ = await api.call("GET", f"/channels/{cid}/messages?limit=2")
    assert [m["content"] for m in page] == ["4", "3"]
    _, page, _ = await api.call("GET", f"/channels/{cid}/messages?limit=10&before={ids[2]}")
    assert [m["content"] for m in page] == ["1", "0"]


async def test_bucket_headers_then_429(api: Api) -> None:
    sim = api.sim
    sim.rate_limits["POST /channels/{channel_id}/messages"] = (2, 30.0)
    path = f"/channels/{sim.guild.text_channel_id}/messages"
    remaining = []
    first_id = ""
    for i in range(2):
        status, body, headers = await api.call("POST", path, body={"content": str(i)})
        assert status == 200
        first_id = first_id or body["id"]
        remaining.append(headers["X-RateLimit-Remaining"])
        assert {"X-RateLimit-Limit", "X-RateLimit-Reset", "X-RateLimit-Reset-After", "X-RateLimit-Bucket"} <= set(
            headers
        )
    assert remaining == ["1", "0"]
    status, body, headers = await api.call("POST", path, body={"content": "over"})
    assert status == 429
    assert body["global"] is False
    assert 0 < body["retry_after"] <= 30
    assert headers["Via"]
    assert headers["X-RateLimit-Scope"] == "user"
    assert len(sim.messages(sim.guild.text_channel_id)) == 2
    # Another channel (here a thread) is another bucket of the same route.
    status, thread, _ = await api.call("POST", f"{path}/{first_id}/threads", body={"name": "t"})
    assert status == 201
    status, _, _ = await api.call("POST", f"/channels/{thread['id']}/messages", body={"content": "in thread"})
    assert status == 200


async def test_global_limit(api: Api) -> None:
    sim = api.sim
    sim.ratelimiter.global_limit = 3
    statuses = [(await api.call("GET", "/users/@me"))[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    status, body, headers = await api.call("GET", "/users/@me")
    assert (status, body["global"], headers["X-RateLimit-Global"]) == (429, True, "true")


async def test_injected_faults(api: Api) -> None:
    sim = api.sim
    sim.inject_fault("GET", "/users/@me", 503, count=2)
    sim.inject_fault("GET", "/oauth2/applications/@me", 429, via=False)
    sim.inject_fault("*", "/gateway/bot", 403, code=50001)
    assert [(await api.call("GET", "/users/@me"))[0] for _ in range(3)] == [503, 503, 200]
    status, _, headers = await api.call("GET", "/oauth2/applications/@me")
    assert status == 429
    assert "Via" not in headers
    status, body, _ = await api.call("GET", "/gateway/bot")
    assert (status, body["code"]) == (403, 50001)
    assert [r.status for r in sim.requests_to("/users/@me")] == [503, 503, 200]


async def test_large_upload_is_streamed_to_disk_not_held_in_memory(api: Api, tmp_path: Path) -> None:
    sim = api.sim
    sim.set_premium_tier(sim.guild.id, 3)
    size = 40 * 1024 * 1024
    source = tmp_path / "render.mp4"
    with source.open("wb") as fh:
        fh.truncate(size)
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("payload_json", json.dumps({"content": "render"}))
    tracemalloc.start()
    try:
        with source.open("rb") as fh:
            form.add_field("files[0]", fh, filename="render.mp4", content_type="application/octet-stream")
            status, body, _ = await api.call("POST", f"/channels/{sim.guild.text_channel_id}/messages", form=form)
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        async with api.session.get(body["attachments"][0]["url"]) as resp:
            received = 0
            async for chunk in resp.content.iter_chunked(1 << 20):
                received += len(chunk)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 200
    assert received == size
    assert body["attachments"][0]["size"] == size
    # Neither the upload nor the CDN download kept the 40 MiB in memory (even once).
    assert upload_peak < size // 4
    assert download_peak < size // 4

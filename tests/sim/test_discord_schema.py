"""Schema fidelity: every JSON response the simulator sends for a route in Discord's OpenAPI document validates
against that route's response schema, and the scenario below exercises every route the simulator implements.

The spec folder comes from REELBOT_SPECS_DIR (set by .ci/run): set but missing → fail; unset → skip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import discord
import jsonschema
import pytest

from bot.sim.discord import AttachmentSpec, DiscordSimulator, RecordedRequest
from bot.sim.discord.server import API_PREFIX
from tests.discord_sim_bot import SimTestBot, running_bot, sim_fixture  # noqa: F401

SPEC_FILE = "discord-openapi.json"
# Implemented routes that the OpenAPI document does not describe (checked elsewhere, not here).
NOT_IN_SPEC = {("POST", "/attachments/refresh-urls")}


def load_spec() -> dict[str, Any]:
    folder = os.environ.get("REELBOT_SPECS_DIR")
    if folder is None:
        pytest.skip("REELBOT_SPECS_DIR is unset: Discord's OpenAPI document is not available to this checkout")
    path = Path(folder) / SPEC_FILE
    if not path.is_file():
        pytest.fail(f"REELBOT_SPECS_DIR is set but {path} does not exist")
    spec: dict[str, Any] = json.loads(path.read_text())
    return spec


def spec_path(record: RecordedRequest) -> str:
    """The spec's path for a logged request (`@original` has its own path in the document)."""
    if record.route.endswith("/messages/{message_id}") and record.path.endswith("/messages/@original"):
        return record.route.replace("{message_id}", "@original")
    return record.route


def response_schema(spec: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any] | None:
    """The JSON schema of that response in the document (None if the route or status is not described)."""
    operation = spec["paths"].get(path, {}).get(method.lower())
    if operation is None:
        return None
    responses = operation["responses"]
    response = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
    if response is None:
        return None
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema: dict[str, Any] | None = response.get("content", {}).get("application/json", {}).get("schema")
    return schema


async def run_everything(sim: DiscordSimulator) -> None:
    """Drive every implemented route, through discord.py and over plain HTTP (errors included)."""
    g = sim.guild
    bot = SimTestBot(g.id)
    async with running_bot(sim, bot):
        for name in ("ping", "menu", "rename", "late"):
            await sim.invoke_command(name, user_id=g.member_ids[0], channel_id=g.text_channel_id)
        h = await sim.invoke_command(
            "video",
            user_id=g.member_ids[0],
            channel_id=g.text_channel_id,
            options={"prompt": "a cat"},
            attachments={"image1": AttachmentSpec("a.png", "image/png", data=b"png", width=2, height=2)},
        )
        await sim.wait_for(lambda: "sent_id" in bot.seen or bot.seen["errors"], timeout=10)
        assert bot.seen["errors"] == []
        menu = next(m for m in sim.messages(g.text_channel_id) if m.content == "Pick one")
        await (await sim.click_button(menu.id, "menu:go", user_id=g.member_ids[1])).wait_response()
        await (await sim.submit_modal("rename:modal", {"rename:name": "N"}, user_id=g.member_ids[0])).wait_response()
        thread = bot.get_channel(bot.seen["thread_id"]) or await bot.fetch_channel(bot.seen["thread_id"])
        assert isinstance(thread, discord.Thread)
        interaction: discord.Interaction = bot.seen["ping_interaction"]
        await interaction.original_response()
        followup = await interaction.followup.send("extra", wait=True)
        await followup.edit(content="extra, edited")
        await interaction.followup.fetch_message(followup.id)
        await followup.delete()
        await interaction.delete_original_response()
        await h.wait_response()

    auth = {"Authorization": f"Bot {sim.token}"}
    base = sim.rest_url
    cid, gid, app = g.text_channel_id, g.id, sim.application_id
    async with aiohttp.ClientSession(headers=auth) as http:

        async def call(method: str, path: str, body: Any = None) -> Any:
            async with http.request(method, base + path, json=body) as resp:
                return await resp.json(content_type=None) if resp.status != 204 else None

        msg = await call("POST", f"/channels/{cid}/messages", {"content": "anchor"})
        await call("GET", "/users/@me")
        await call("GET", f"/users/{g.member_ids[0]}")
        await call("GET", "/users/1")
        await call("GET", "/oauth2/applications/@me")
        await call("GET", "/applications/@me")
        await call("GET", "/gateway")
        await call("GET", "/gateway/bot")
        await call("GET", f"/applications/{app}/commands")
        await call("PUT", f"/applications/{app}/commands", [{"name": "ping", "description": "Reply"}])
        await call("PUT", f"/applications/{app}/commands", [{"name": "Bad Name", "description": "x"}])
        await call("GET", f"/applications/{app}/guilds/{gid}/commands")
        await call("GET", f"/guilds/{gid}")
        await call("GET", f"/guilds/{gid}/channels")
        await call("GET", f"/guilds/{gid}/members/{g.member_ids[0]}")
        await call("POST", f"/channels/{cid}/typing")
        await call("GET", f"/channels/{cid}")
        await call("GET", "/channels/1")
        await call("GET", f"/channels/{cid}/messages?limit=5")
        await call("GET", f"/channels/{cid}/messages/{msg['id']}")
        await call("PATCH", f"/channels/{cid}/messages/{msg['id']}", {"content": "anchor, edited"})
        await call("POST", f"/channels/{cid}/messages", {"content": "x" * 2001})
        thread = await call("POST", f"/channels/{cid}/messages/{msg['id']}/threads", {"name": "t"})
        await call("POST", f"/channels/{cid}/messages/{msg['id']}/threads", {"name": "t"})
        await call("PUT", f"/channels/{thread['id']}/thread-members/@me")
        await call("DELETE", f"/channels/{thread['id']}/thread-members/@me")
        await call("PATCH", f"/channels/{thread['id']}", {"archived": True})
        await call("GET", f"/channels/{thread['id']}")
        await call("POST", f"/channels/{cid}/threads", {"name": "private", "type": 12})
        await call("POST", f"/channels/{g.forum_channel_id}/threads", {"name": "post", "message": {"content": "hi"}})
        await call("POST", "/attachments/refresh-urls", {"attachment_urls": ["http://x/attachments/1/2/a.png"]})
        sim.set_bot_permissions(cid, allow=2**4)  # MANAGE_CHANNELS for the channel edit
        await call("PATCH", f"/channels/{cid}", {"topic": "new topic"})
        await call("DELETE", f"/channels/{cid}/messages/{msg['id']}")
        sim.rate_limits["POST /channels/{channel_id}/messages"] = (1, 30.0)
        await call("POST", f"/channels/{g.forum_channel_id}/messages", {"content": "x"})
        await call("POST", f"/channels/{g.forum_channel_id}/messages", {"content": "x"})
        sim.set_bot_permissions(cid, allow=2**34)  # MANAGE_THREADS to delete the thread
        await call("DELETE", f"/channels/{thread['id']}")


async def test_every_json_response_matches_the_openapi_document(sim: DiscordSimulator) -> None:
    spec = load_spec()
    await run_everything(sim)

    checked: set[tuple[str, str]] = set()
    failures: list[str] = []
    for record in sim.requests:
        if record.route.startswith("/attachments/{"):  # the CDN, not the API
            continue
        path = spec_path(record)
        if (record.method, path) in NOT_IN_SPEC:
            continue
        schema = response_schema(spec, path, record.method, record.status)
        if record.response_json is None:
            if record.status != 204:
                failures.append(f"{record.method} {path} {record.status}: no JSON body")
            checked.add((record.method, record.route))
            continue
        if schema is None:
            failures.append(f"{record.method} {path} {record.status}: not described by the document")
            continue
        validator = jsonschema.Draft202012Validator({**schema, "components": spec["components"]})
        error = jsonschema.exceptions.best_match(validator.iter_errors(record.response_json))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path)
            failures.append(f"{record.method} {path} {record.status} at {where}: {error.message[:300]}")
        checked.add((record.method, record.route))
    assert not failures, "\n".join(failures)

    implemented = {
        (route.method, route.resource.canonical[len(API_PREFIX) :])
        for route in _app_routes(sim)
        if route.resource is not None and route.resource.canonical.startswith(API_PREFIX)
    }
    assert implemented - NOT_IN_SPEC - checked == set()
    assert {r.status for r in sim.requests} >= {200, 201, 204, 400, 404, 429}


def _app_routes(sim: DiscordSimulator) -> list[Any]:
    runner = sim._runner
    assert runner is not None
    app = runner.app
    assert app is not None
    return [r for r in app.router.routes() if r.method != "HEAD"]

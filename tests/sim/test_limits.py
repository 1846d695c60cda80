"""The limits the simulators enforce, as the traffic tests and benchmarks rely on them: Discord's 50 requests per
second per bot with interaction callbacks exempt, 5 thread creations and 5 messages per 5 s per channel; the AI/ML
API's key-wide rate limit answered with 429 and no Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.sim.aimlapi import AimlSimulator
from bot.sim.discord import DiscordSimulator
from bot.sim.discord.ratelimit import DEFAULT_RATE_LIMITS, GLOBAL_LIMIT
from tests.discord_sim_bot import sim_fixture  # noqa: F401

PING = {"name": "ping", "description": "Reply", "type": 1}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession, sim: DiscordSimulator, method: str, path: str, body: Any = None, *, auth: bool = True
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bot {sim.token}"} if auth else {}
    async with http.request(method, sim.rest_url + path, json=body, headers=headers) as resp:
        data = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, data


def test_the_documented_limits_are_the_defaults() -> None:
    assert GLOBAL_LIMIT == 50
    assert DEFAULT_RATE_LIMITS["POST /channels/{channel_id}/messages"] == (5, 5.0)
    assert DEFAULT_RATE_LIMITS["POST /channels/{channel_id}/messages/{message_id}/threads"] == (5, 5.0)


async def test_interaction_callbacks_are_exempt_from_the_global_limit(
    sim: DiscordSimulator, http: aiohttp.ClientSession
) -> None:
    await call(http, sim, "PUT", f"/applications/{sim.application_id}/guilds/{sim.guild.id}/commands", [PING])
    sim.ratelimiter.global_limit = 3
    statuses = [(await call(http, sim, "GET", "/users/@me"))[0] for _ in range(4)]
    assert statuses[-1] == 429  # the bot's global budget is spent
    h = await sim.invoke_command("ping", user_id=sim.guild.member_ids[0], channel_id=sim.guild.text_channel_id)
    body = {"type": 4, "data": {"content": "pong"}}
    status, _ = await call(http, sim, "POST", f"/interactions/{h.id}/{h.token}/callback", body, auth=False)
    assert status == 204
    assert (await h.wait_response()).content == "pong"


async def test_six_thread_creations_in_one_channel_draw_a_429_and_another_channel_is_free(
    sim: DiscordSimulator, http: aiohttp.ClientSession
) -> None:
    channel = sim.guild.text_channel_id
    cards = [(await call(http, sim, "POST", f"/channels/{channel}/messages", {"content": str(i)})) for i in range(5)]
    sim.ratelimiter.reset()  # the five cards used up the message bucket; this is about threads
    statuses = []
    for _, card in cards:
        status, _ = await call(http, sim, "POST", f"/channels/{channel}/messages/{card['id']}/threads", {"name": "t"})
        statuses.append(status)
    _, sixth = await call(http, sim, "POST", f"/channels/{channel}/messages", {"content": "6"})
    status, body = await call(http, sim, "POST", f"/channels/{channel}/messages/{sixth['id']}/threads", {"name": "t"})
    assert statuses == [201] * 5
    assert (status, body["global"]) == (429, False)
    assert 4.0 < body["retry_after"] <= 5.0


async def test_a_sixth_message_in_five_seconds_in_one_channel_draws_a_429(
    sim: DiscordSimulator, http: aiohttp.ClientSession
) -> None:
    channel = sim.guild.text_channel_id
    statuses = [
        (await call(http, sim, "POST", f"/channels/{channel}/messages", {"content": str(i)}))[0] for i in range(6)
    ]
    assert statuses == [200] * 5 + [429]


async def test_the_provider_limits_the_key_rate_with_429s_that_carry_no_retry_after(
    http: aiohttp.ClientSession,
) -> None:
    sim = AimlSimulator("key", requests_per_second=3)
    await sim.start()
    try:
        url = sim.base_url + "/v2/video/generations?generation_id=nope"
        headers = {"Authorization": "Bearer key"}
        answers = []
        for _ in range(5):
            async with http.get(url, headers=headers) as resp:
                answers.append((resp.status, resp.headers.get("Retry-After")))
        await asyncio.sleep(1.05)
        async with http.get(url, headers=headers) as resp:
            later = resp.status
    finally:
        await sim.stop()
    assert answers == [(404, None)] * 3 + [(429, None)] * 2  # unknown id: 404, until the rate says 429
    assert later == 404  # a second later the key may ask again
    assert sim.rate_limited == 2

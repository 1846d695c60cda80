"""The simulator's attachment CDN as a bot that keeps images on Discord meets it: signed URLs that expire (or are
expired on demand, "a month later"), `POST /attachments/refresh-urls` renewing them while the message lives, a
deleted message's files gone for good, and refresh-urls failing or hanging on request."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import discord
import pytest

from bot.sim.discord import AttachmentSpec, DiscordSimulator
from bot.sim.images import make_png
from tests.discord_sim_bot import SimTestBot, live_fixture, sim_fixture  # noqa: F401

Live = tuple[DiscordSimulator, SimTestBot]
FRONT, SIDE = make_png(8, 8), make_png(6, 9)


async def _post_sheet(sim: DiscordSimulator, bot: SimTestBot) -> discord.Message:
    """The bot posts a "character sheet": a message holding the character's images."""
    channel = bot.get_channel(sim.guild.text_channel_id)
    assert isinstance(channel, discord.TextChannel)
    files = [discord.File(io.BytesIO(FRONT), "front.png"), discord.File(io.BytesIO(SIDE), "side.png")]
    return await channel.send("Character: Nimbus", files=files)


async def _refresh(bot: SimTestBot, urls: list[str]) -> dict[str, str]:
    # A Route takes its URL from Route.BASE when built, so build it after the bot was pointed at the simulator.
    route = discord.http.Route("POST", "/attachments/refresh-urls")
    data = await bot.http.request(route, json={"attachment_urls": urls})
    return {pair["original"]: pair["refreshed"] for pair in data["refreshed_urls"]}


async def test_bot_posted_images_expire_on_demand_and_refresh_while_the_message_lives(live: Live) -> None:
    sim, bot = live
    sheet = await _post_sheet(sim, bot)
    urls = [a.url for a in sheet.attachments]
    assert [await a.read() for a in sheet.attachments] == [FRONT, SIDE]
    assert all({"ex", "is", "hm"} <= set(parse_qs(urlsplit(u).query)) for u in urls)

    sim.expire_attachment_urls()  # a month later
    for url in urls:
        with pytest.raises(discord.NotFound):
            await bot.http.get_from_cdn(url)

    fresh = await _refresh(bot, urls)
    assert list(fresh) == urls
    assert set(fresh.values()).isdisjoint(urls)
    assert [await bot.http.get_from_cdn(fresh[u]) for u in urls] == [FRONT, SIDE]
    # Fetching the message again gives working URLs too (Discord signs every URL it hands out).
    again = await sheet.channel.fetch_message(sheet.id)
    assert [await a.read() for a in again.attachments] == [FRONT, SIDE]


async def test_expiring_one_attachment_leaves_the_others(live: Live) -> None:
    sim, bot = live
    sheet = await _post_sheet(sim, bot)
    front, side = sheet.attachments
    sim.expire_attachment_urls(front.id)
    with pytest.raises(discord.NotFound):
        await front.read()
    assert await side.read() == SIDE
    fresh = await _refresh(bot, [front.url])
    assert await bot.http.get_from_cdn(fresh[front.url]) == FRONT


async def test_a_members_command_upload_expires_and_refreshes_too(live: Live) -> None:
    sim, bot = live
    g = sim.guild
    upload = await sim.invoke_command(
        "video",
        user_id=g.member_ids[0],
        channel_id=g.text_channel_id,
        options={"prompt": "a fox"},
        attachments={"image1": AttachmentSpec("fox.png", "image/png", data=FRONT, width=8, height=8)},
    )
    await sim.wait_for(lambda: "sent_id" in bot.seen or bot.seen["errors"], timeout=10)
    [option] = upload.payload["data"]["resolved"]["attachments"].values()
    assert await bot.http.get_from_cdn(option["url"]) == FRONT
    sim.expire_attachment_urls()
    with pytest.raises(discord.NotFound):
        await bot.http.get_from_cdn(option["url"])
    fresh = await _refresh(bot, [option["url"]])
    assert await bot.http.get_from_cdn(fresh[option["url"]]) == FRONT


async def test_a_deleted_messages_images_are_gone_even_after_a_refresh(live: Live) -> None:
    sim, bot = live
    sheet = await _post_sheet(sim, bot)
    urls = [a.url for a in sheet.attachments]
    await sheet.delete()
    sim.clock_offset += 3600  # an hour later, so a newly signed URL differs from the original

    # As on Discord, refresh-urls only re-signs: it answers with a fresh-looking URL...
    fresh = await _refresh(bot, urls)
    assert set(fresh.values()).isdisjoint(urls)
    assert all(urlsplit(new).path == urlsplit(old).path for old, new in fresh.items())
    # ...that the CDN refuses, because the file went with its message.
    for url in fresh.values():
        with pytest.raises(discord.NotFound):
            await bot.http.get_from_cdn(url)
    # The sure sign of "gone": the message itself is unknown.
    with pytest.raises(discord.NotFound) as caught:
        await sheet.channel.fetch_message(sheet.id)
    assert caught.value.code == 10008


async def test_refresh_urls_can_fail_or_hang_on_request(live: Live) -> None:
    sim, bot = live
    sheet = await _post_sheet(sim, bot)
    url = sheet.attachments[0].url

    sim.inject_fault("POST", "/attachments/refresh-urls", 503)
    with pytest.raises(discord.HTTPException) as caught:
        await _refresh(bot, [url])
    assert caught.value.status == 503
    assert url in await _refresh(bot, [url])  # the next call works: "try again", not "gone"

    sim.stall("POST", "/attachments/refresh-urls", 60)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(_refresh(bot, [url]), timeout=0.5)
    assert url in await _refresh(bot, [url])
    assert [r.status for r in sim.requests_to("/attachments/refresh-urls")] == [503, 200, 200]
    # The held request does not hold up the simulator's shutdown (it would wait out the full minute otherwise).
    await asyncio.wait_for(sim.stop(), timeout=10)


async def _raw_refresh(sim: DiscordSimulator, urls: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bot {sim.token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.post(f"{sim.rest_url}/attachments/refresh-urls", json={"attachment_urls": urls}) as resp,
    ):
        return resp.status, json.loads(await resp.read())


async def test_refresh_keeps_other_parameters_and_leaves_other_urls_alone(live: Live) -> None:
    sim, bot = live
    sheet = await _post_sheet(sim, bot)
    sized = sheet.attachments[1].url + "size=64"
    foreign = "https://example.com/attachments/1/2/a.png?ex=1&is=1&hm=0"
    status, body = await _raw_refresh(sim, [sized, foreign])
    assert status == 200
    [first, second] = body["refreshed_urls"]
    assert first["original"] == sized
    assert parse_qs(urlsplit(first["refreshed"]).query)["size"] == ["64"]
    assert await bot.http.get_from_cdn(first["refreshed"]) == SIDE
    assert second == {"original": foreign, "refreshed": foreign}

    for bad in ([], [sized] * 51, [1]):
        status, body = await _raw_refresh(sim, bad)
        assert (status, body["code"]) == (400, 50035)

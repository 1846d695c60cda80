""" "Gone" only when Discord says gone: Retry, Remix and the aspect switch of a job whose uploaded images Discord
deleted tell the member the images are gone; a Discord that fails or hangs while renewing their URLs gets "try
again in a moment". Neither charges anything — through the real discord.py client and the Discord simulator."""

from __future__ import annotations

import pytest

from bot.sim.discord import InteractionHandle, SimMessage
from tests.e2e_world import World

pytestmark = pytest.mark.timeout(60)


def _current(world: World, message_id: int) -> SimMessage:
    message = world.discord.message(message_id, include_ephemeral=True)
    assert message is not None
    return message


async def delivered_card(world: World) -> SimMessage:
    card = await (await world.video()).wait_response(timeout=5)
    await world.discord.wait_for(lambda: "Delivered" in str(_current(world, card.id).embeds), timeout=20)
    return card


async def switch_shape(world: World, card: SimMessage) -> str:
    handle: InteractionHandle = await world.discord.select_option(
        card.id, "reelbot:aspect:1", ["9:16"], user_id=world.member
    )
    reply = await handle.wait_response(timeout=15)
    await world.discord.wait_for(lambda: not _current(world, reply.id).loading, 15)
    assert handle.ephemeral
    return str(_current(world, reply.id).content)


async def test_images_discord_deleted_are_gone_and_nothing_is_charged(world: World) -> None:
    bot = await world.start_bot()
    card = await delivered_card(world)
    job = await bot.intake.recent_jobs(world.guild.id, world.member)
    for reference in job[0].references:
        assert reference.attachment_id is not None
        world.discord.drop_attachment(world.discord.attachments[reference.attachment_id])

    text = await switch_shape(world, card)
    assert "Discord no longer has the reference images" in text
    assert "Nothing was charged" in text
    assert len(world.aiml.submissions) == 1
    assert "used **1** of **5**" in await world.quota_text()


@pytest.mark.parametrize("how", ["error", "stall"])
async def test_discord_failing_to_renew_the_urls_is_try_again_and_nothing_is_charged(world: World, how: str) -> None:
    bot = await world.start_bot()
    card = await delivered_card(world)
    if how == "error":
        world.discord.inject_fault("POST", "/attachments/refresh-urls", 503, count=10)
    else:
        bot.media.timeout = 1.0
        world.discord.stall("POST", "/attachments/refresh-urls", 5.0)

    text = await switch_shape(world, card)
    assert "try again in a moment" in text
    assert "no longer has" not in text
    assert len(world.aiml.submissions) == 1
    assert "used **1** of **5**" in await world.quota_text()

    world.discord.ratelimiter.faults.clear()
    world.discord.stalls.clear()
    assert "Started video #2" in await switch_shape(world, card)

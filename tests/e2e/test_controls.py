"""The card buttons end to end: Cancel, Retry, Remix, the aspect switch — pressed through the Discord simulator
by the owner, by a moderator and by someone else, before and after a restart, and with expired image URLs."""

from __future__ import annotations

from typing import Any

import pytest

from bot.sim.aimlapi import JobScript
from bot.sim.discord import SimMessage
from bot.storage import LedgerKind
from tests.e2e_world import World

pytestmark = pytest.mark.timeout(60)

SLOW = JobScript(queued_s=0.2, generating_s=30.0)  # stays generating long enough to press Cancel
BROKEN = JobScript(submit_status=401)  # the provider refuses the bot's key: a provider-side failure


def custom_ids(message: SimMessage) -> list[str]:
    found: list[str] = []

    def walk(components: list[dict[str, Any]]) -> None:
        for component in components:
            if "custom_id" in component:
                found.append(component["custom_id"])
            walk(component.get("components") or [])

    walk(message.components)
    return found


def current(world: World, message_id: int) -> SimMessage:
    message = world.discord.message(message_id, include_ephemeral=True)
    assert message is not None
    return message


def status_of(world: World, card: SimMessage) -> str:
    message = current(world, card.id)
    fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}
    return str(fields["Status"])


async def wait_status(world: World, card: SimMessage, text: str, timeout: float = 15) -> None:
    await world.discord.wait_for(lambda: text in status_of(world, card), timeout=timeout)


async def start_video(world: World, **options: Any) -> SimMessage:
    handle = await world.video(**options)
    card = await handle.wait_response(timeout=5)
    await world.discord.wait_for(lambda: world.bot is not None and world.thread_of(card) is not None, timeout=5)
    return card


async def press(world: World, card: SimMessage, action: str, job_id: int, user_id: int | None = None) -> str:
    handle = await world.discord.click_button(card.id, f"reelbot:{action}:{job_id}", user_id=user_id or world.member)
    reply = await handle.wait_response(timeout=5)
    await world.discord.wait_for(lambda: not current(world, reply.id).loading, 5)
    assert handle.ephemeral
    return str(current(world, reply.id).content)


def newest_card(world: World) -> SimMessage:
    cards = [m for m in world.discord.messages(world.channel) if m.embeds and "Video #" in m.embeds[0]["title"]]
    return cards[-1]


async def test_owner_cancels_a_generating_job_refunded_and_nothing_is_delivered(world: World) -> None:
    world.aiml.script_next(SLOW)
    await world.start_bot()
    card = await start_video(world)
    assert "reelbot:cancel:1" in custom_ids(card)
    await wait_status(world, card, "Generating")
    assert "used **1** of **5**" in await world.quota_text()

    text = await press(world, card, "cancel", 1)
    assert "cancelled" in text
    assert "refunded" in text
    await wait_status(world, card, "Cancelled")
    assert "used **0** of **5**" in await world.quota_text()
    # The card now offers Retry instead of Cancel; the thread says what happened; no video ever arrives.
    assert custom_ids(current(world, card.id)) == ["reelbot:retry:1", "reelbot:details:1"]
    await world.wait_for_text(card.id, "was cancelled")
    assert world.bot is not None
    await world.bot.poller.run_once()
    assert world.posts_with_files(card.id) == []


async def test_someone_else_cannot_cancel_but_a_moderator_can(world: World) -> None:
    world.aiml.script_next(SLOW)
    await world.start_bot()
    card = await start_video(world)
    bob = world.guild.member_ids[1]
    text = await press(world, card, "cancel", 1, user_id=bob)
    assert "Only the member who started this video, or a moderator" in text
    assert "Cancelled" not in status_of(world, card)

    text = await press(world, card, "cancel", 1, user_id=world.guild.moderator_id)
    assert "cancelled" in text
    await wait_status(world, card, "Cancelled")
    assert world.bot is not None
    [refund] = await world.bot.store.quotas.ledger(world.guild.id, kinds=[LedgerKind.REFUND])
    assert refund.actor_id == world.guild.moderator_id


async def test_buttons_work_after_a_restart(world: World) -> None:
    world.aiml.script_next(SLOW)
    await world.start_bot()
    card = await start_video(world)
    await wait_status(world, card, "Generating")
    await world.stop_bot()
    await world.start_bot()
    text = await press(world, card, "cancel", 1)
    assert "cancelled" in text
    await wait_status(world, card, "Cancelled")


async def test_the_card_keeps_working_buttons_with_every_extension_unloaded(world: World) -> None:
    """The buttons belong to the bot, not to a cog: with no extension loaded the card still updates with its
    buttons, and pressing one works, also in a fresh process that never saw the card."""
    world.aiml.script_next(SLOW)
    bot = await world.start_bot()
    card = await start_video(world)
    await wait_status(world, card, "Generating")
    for extension in list(bot.extensions):
        await bot.unload_extension(extension)
    assert not bot.cogs

    text = await press(world, card, "cancel", 1)
    assert "cancelled" in text
    await wait_status(world, card, "Cancelled")
    assert custom_ids(current(world, card.id)) == ["reelbot:retry:1", "reelbot:details:1"]

    await world.stop_bot()
    bot = await world.start_bot()
    for extension in list(bot.extensions):
        await bot.unload_extension(extension)
    assert "Started video #2" in await press(world, card, "retry", 1)


async def test_free_retry_after_a_provider_failure_with_expired_image_urls(world: World) -> None:
    world.aiml.script_next(BROKEN)
    await world.start_bot()
    card = await start_video(world)
    await wait_status(world, card, "Failed")
    assert "used **0** of **5**" in await world.quota_text()
    original_urls = [r.url for r in (await world.bot.store.jobs.get(1)).references]  # type: ignore[union-attr]

    # Two days later the signed URLs Discord gave with the command have expired; a restart happened too.
    await world.stop_bot()
    world.discord.clock_offset = 2 * 86400
    await world.start_bot()
    text = await press(world, card, "retry", 1)
    assert "Started video #2" in text
    assert "free" in text
    retry_card = newest_card(world)
    assert retry_card.id != card.id
    await world.discord.wait_for(lambda: bool(world.posts_with_files(retry_card.id)), timeout=20)
    # The provider got refreshed URLs (and could fetch them); the retry cost nothing.
    body = world.aiml.submissions[-1]
    assert isinstance(body["image_list"], list)
    assert len(body["image_list"]) == 2
    assert set(body["image_list"]).isdisjoint(original_urls)
    assert "used **0** of **5**" in await world.quota_text()

    # One retry per failed job.
    text = await press(world, card, "retry", 1)
    assert "already retried as job #2" in text


async def test_remix_with_a_new_prompt_and_switch_aspect_ratio(world: World) -> None:
    await world.start_bot()
    card = await start_video(world)
    await wait_status(world, card, "Delivered")
    assert custom_ids(current(world, card.id)) == ["reelbot:remix:1", "reelbot:details:1", "reelbot:aspect:1"]

    bob = world.guild.member_ids[1]
    refused = await world.discord.click_button(card.id, "reelbot:remix:1", user_id=bob)
    assert "Only the member" in (await refused.wait_response(timeout=5)).content

    opened = await world.discord.click_button(card.id, "reelbot:remix:1", user_id=world.member)
    await opened.wait_ack(timeout=5)
    assert opened.modal is not None
    submitted = await world.discord.submit_modal(
        "reelbot:remix-modal:1", {"prompt": "the fox from image 1 dances in the snow"}, user_id=world.member
    )
    await submitted.wait_response(timeout=5)
    await world.discord.wait_for(lambda: len(world.aiml.submissions) == 2, timeout=10)
    assert world.aiml.submissions[-1]["prompt"] == "the fox from image 1 dances in the snow"

    handle = await world.discord.select_option(card.id, "reelbot:aspect:1", ["9:16"], user_id=world.member)
    await handle.wait_response(timeout=5)
    await world.discord.wait_for(lambda: len(world.aiml.submissions) == 3, timeout=10)
    assert world.aiml.submissions[-1]["aspect_ratio"] == "9:16"
    assert world.aiml.submissions[-1]["prompt"] == "the fox from image 1 runs through the forest of image 2"
    assert "used **3** of **5**" in await world.quota_text()

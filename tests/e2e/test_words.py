"""Blocked words end to end (`/videomod words add | remove | list`): a prompt with a blocked word is refused
before anything is charged, also when the word hides behind a zero-width space, look-alike letters or
full-width forms, and the refusal never repeats the word; moderators see the list behind spoilers."""

from __future__ import annotations

import pytest

from bot.storage import LedgerKind
from tests.e2e_world import World

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    "prompt",
    [
        "the fox from image 1 eats a Marzipan cake",
        "the fox from image 1 eats a mar\u200bzipan cake",  # a zero-width space inside the word
        "the fox from image 1 eats a m\u0430rzip\u0430n cake",  # Cyrillic а instead of Latin a
        "the fox from image 1 eats a ｍａｒｚｉｐａｎ cake",  # full-width letters
        "the fox from image 1 eats a marzi\u00adpan cake",  # a soft hyphen
    ],
    ids=["plain", "zero-width-space", "cyrillic", "full-width", "soft-hyphen"],
)
async def test_a_blocked_word_in_any_spelling_is_refused_before_anything_is_charged(world: World, prompt: str) -> None:
    await world.start_bot()
    assert "blocked the word or phrase ||marzipan||" in await world.mod("words add", text="marzipan")
    handle = await world.video(prompt)
    reply = await handle.wait_response(timeout=5)
    assert handle.ephemeral
    assert "contains a word or phrase this server does not allow" in reply.content
    assert "Nothing was charged" in reply.content
    assert "marzipan" not in reply.content.lower()
    assert "zipan" not in reply.content.lower()
    assert world.aiml.submissions == []
    assert world.discord.threads(world.channel) == []
    assert "used **0** of **5**" in await world.quota_text()


async def test_whole_words_only_and_the_list_can_be_changed(world: World) -> None:
    await world.start_bot()
    await world.mod("words add", text="cake")
    await world.mod("words add", text="Hot Dog")
    assert "blocked already" in await world.mod("words add", text="CAKE")
    assert "needs at least one letter or digit" in await world.mod("words add", text="!!!")

    listed = await world.mod("words list")
    assert "2 blocked word(s)" in listed
    assert "||cake||" in listed
    assert "||Hot Dog||" in listed

    card = await (await world.video("the fox from image 1 eats a cupcake next to a hot-dogs stand")).wait_response(5)
    assert card.embeds  # "cupcake" and "hot-dogs" are other words
    refused = await world.video("the fox from image 1 eats a HOT  dog")
    assert "does not allow" in (await refused.wait_response(timeout=5)).content

    assert "allowed the word or phrase ||cake|| again" in await world.mod("words remove", text="Cake")
    assert "was not blocked" in await world.mod("words remove", text="cake")
    card = await (await world.video("the fox from image 1 eats a cake")).wait_response(timeout=5)
    assert card.embeds
    assert world.bot is not None
    changes = [r for r in await world.bot.store.quotas.ledger(world.guild.id) if r.kind is LedgerKind.GUILD_SETTING]
    assert [r.actor_id for r in changes] == [world.guild.moderator_id] * 3

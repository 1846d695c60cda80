"""Characters and styles in team channels, end to end: a video with a character and a style in a channel with a
budget and approvals (charged to the budget, waiting for Approve, its cast on the card and in Details, kept by
the aspect switch, which waits for approval again); blocked words in a character's name or in the prompt of a
video with characters, and an empty budget, refused at once, before any character sheet is read — through the
real discord.py client and both simulators."""

from __future__ import annotations

import pytest

from bot.sim.discord import InteractionHandle, SimMessage
from tests.e2e.test_characters import create, private_text, sheets
from tests.e2e_world import World, image

pytestmark = pytest.mark.timeout(90)

NOIR = "black and white, film grain"


def current(world: World, message_id: int) -> SimMessage:
    message = world.discord.message(message_id, include_ephemeral=True)
    assert message is not None
    return message


def fields(message: SimMessage) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message.embeds[0]["fields"]}


def custom_ids(message: SimMessage) -> list[str]:
    return [c["custom_id"] for row in message.components for c in row.get("components", []) if "custom_id" in c]


async def press(world: World, message: SimMessage, custom_id: str, user_id: int) -> SimMessage:
    """Press a button and return the private answer (after a deferral, the message that replaced it)."""
    handle = await world.discord.click_button(message.id, custom_id, user_id=user_id)
    reply = await handle.wait_response(timeout=5)
    await world.discord.wait_for(lambda: not current(world, reply.id).loading, 5)
    assert handle.ephemeral
    return current(world, reply.id)


async def card_of(world: World, handle: InteractionHandle) -> SimMessage:
    """The public card `/video` with characters answers with (deferred first, then edited into the card)."""
    reply = await handle.wait_response(timeout=15)
    assert not handle.ephemeral
    await world.discord.wait_for(lambda: bool(current(world, reply.id).embeds), 15)
    return current(world, reply.id)


async def test_a_character_video_in_a_team_channel_is_charged_to_the_budget_waits_and_keeps_its_cast(
    world: World,
) -> None:
    await world.start_bot()
    moderator, bob = world.guild.moderator_id, world.guild.member_ids[1]
    assert "Saved **Fox**" in await create(world, "Fox")
    await world.mod("style set", name="Noir", text=NOIR)
    await world.mod("budget", channel=world.channel, videos=3)
    await world.mod("approvals", channel=world.channel, enabled=True)

    handle = await world.video(
        "@Fox runs through the forest of image 1", images={"image1": image()}, character1="Fox", style="Noir"
    )
    card = await card_of(world, handle)
    on_card = fields(card)
    assert "Waiting for a moderator" in on_card["Status"]
    assert on_card["Characters"] == "`@Element1` **Fox**"
    assert on_card["Style"] == "**Noir**"
    assert on_card["Team budget"].startswith("2 of 3 videos left this month")
    assert "Your quota" not in on_card
    assert custom_ids(card) == ["reelbot:approve:1", "reelbot:reject:1", "reelbot:cancel:1", "reelbot:details:1"]
    assert world.bot is not None
    await world.bot.poller.run_once()
    assert world.aiml.submissions == []  # nothing is made before Approve

    # Details, asked by anyone: the cast and the style by name (never the style's text), and who pays.
    details = await press(world, card, "reelbot:details:1", bob)
    shown = fields(details)
    assert (shown["Characters"], shown["Style"]) == ("`@Element1` **Fox**", "**Noir**")
    assert shown["Approval"] == "waiting for a moderator"
    assert f"charged to the team budget of <#{world.channel}>" in shown["Requested by"]
    assert NOIR not in str(details.embeds)

    assert "Approved" in (await press(world, card, "reelbot:approve:1", moderator)).content
    await world.discord.wait_for(lambda: "Delivered" in fields(current(world, card.id))["Status"], timeout=20)
    first = world.aiml.submissions[-1]
    assert first["prompt"] == f"@Element1 runs through the forest of image 1\n\n{NOIR}"
    assert len(first["elements"]) == 1  # type: ignore[arg-type]

    # Days later (every signed URL expired) the aspect switch: the same cast and style, read fresh from the
    # sheet, charged to the budget again, and waiting for a moderator again — which the member is told.
    world.discord.expire_attachment_urls()
    switched = await world.discord.select_option(card.id, "reelbot:aspect:1", ["9:16"], user_id=world.member)
    told = await private_text(world, switched)
    assert "Started video #2" in told
    assert "It waits for a moderator's approval." in told
    [second_card] = [
        m for m in world.discord.messages(world.channel) if m.embeds and "Video #2" in m.embeds[0]["title"]
    ]
    assert fields(second_card)["Characters"] == "`@Element1` **Fox**"
    assert fields(second_card)["Team budget"].startswith("1 of 3 videos left")
    assert len(world.aiml.submissions) == 1
    assert "Approved" in (await press(world, second_card, "reelbot:approve:2", moderator)).content
    await world.discord.wait_for(lambda: len(world.aiml.submissions) == 2, timeout=10)
    second = world.aiml.submissions[-1]
    assert second["aspect_ratio"] == "9:16"
    assert second["prompt"] == first["prompt"]
    assert second["elements"][0]["frontal_image_url"] != first["elements"][0]["frontal_image_url"]  # type: ignore[index]
    assert "used **0** of **5**" in await world.quota_text()  # the member's own quota was never touched


async def test_blocked_words_in_a_characters_name_or_the_prompt_are_refused_before_any_sheet_is_read(
    world: World,
) -> None:
    await world.start_bot()
    assert "Saved **Marzipan Fox**" in await create(world, "Marzipan Fox")  # saved before the word was blocked
    assert "Saved **Robot**" in await create(world, "Robot")
    await world.mod("words add", text="marzipan")

    # A new character may not carry the word: its name would be on a public sheet and on every card.
    refused = await create(world, "MARZIPAN cat")
    assert "does not allow" in refused
    assert "marzipan" not in refused.lower()
    assert len(sheets(world)) == 2

    # An older one is refused in /video before any sheet is read, named by its place only.
    handle = await world.video(
        "@Robot meets a friend in image 1", images={"image1": image()}, character1="Robot", character2="Marzipan Fox"
    )
    text = await private_text(world, handle)
    assert handle.ephemeral
    assert world.discord.requests_to("/attachments/refresh-urls") == []
    assert "Character 2 of this video has a name with a word or phrase this server does not allow" in text
    assert "marzipan" not in text.lower()

    # The member's prompt, with characters, is checked the same way: a zero-width space does not hide the word.
    handle = await world.video("@Robot eats mar\u200bzipan in image 1", images={"image1": image()}, character1="Robot")
    text = await private_text(world, handle)
    assert handle.ephemeral
    assert world.discord.requests_to("/attachments/refresh-urls") == []
    assert "Your prompt contains a word or phrase this server does not allow" in text
    assert "zipan" not in text.lower()
    assert "Nothing was charged" in text

    assert world.aiml.submissions == []
    assert "used **0** of **5**" in await world.quota_text()


async def test_an_empty_team_budget_refuses_a_character_video_before_any_sheet_is_read(world: World) -> None:
    await world.start_bot()
    await create(world, "Fox")
    await world.mod("budget", channel=world.channel, videos=0)
    handle = await world.video(character1="Fox")
    text = await private_text(world, handle)
    assert handle.ephemeral
    assert world.discord.requests_to("/attachments/refresh-urls") == []  # the budget is checked before the sheets
    assert text.startswith("This channel's team budget is used up for now.")
    assert "Nothing was charged" in text
    assert world.aiml.submissions == []

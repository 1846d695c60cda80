"""Styles and channel defaults end to end: moderators set them with `/videomod`, members pick them in `/video`
(with autocomplete), the provider gets the style's text while the card shows only its name, a style that pushes
the prompt over the limit is refused before charging, and a channel's defaults apply when the member does not
choose — through the real discord.py client and both simulators."""

from __future__ import annotations

from typing import Any

import pytest

from bot.sim.discord import InteractionHandle, SimError, SimMessage
from tests.e2e_world import World, image

pytestmark = pytest.mark.timeout(90)

NOIR = "black and white, film grain, hard shadows"


async def answer(world: World, handle: InteractionHandle) -> str:
    reply = await handle.wait_response(timeout=10)
    await world.discord.wait_for(lambda: not _current(world, reply.id).loading, 10)
    assert handle.ephemeral
    return str(_current(world, reply.id).content)


def _current(world: World, message_id: int) -> SimMessage:
    message = world.discord.message(message_id, include_ephemeral=True)
    assert message is not None
    return message


async def video(world: World, prompt: str = "a fox runs through the forest of image 1", **options: Any) -> SimMessage:
    handle = await world.video(prompt, images={"image1": image()}, **options)
    card = await handle.wait_response(timeout=10)
    assert not handle.ephemeral, card.content
    await world.discord.wait_for(lambda: "Delivered" in fields(_current(world, card.id))["Status"], timeout=20)
    return card


def fields(card: SimMessage) -> dict[str, str]:
    return {f["name"]: f["value"] for f in card.embeds[0]["fields"]}


async def test_a_style_reaches_the_provider_by_text_and_the_card_by_name(world: World) -> None:
    await world.start_bot()
    assert "Done: added the style **Noir**" in await world.mod("style set", name="Noir", text=NOIR)
    assert "Done: changed the style **noir**" in await world.mod("style set", name="noir", text=NOIR + ", rain")

    handle = await world.discord.autocomplete(
        "video", user_id=world.member, channel_id=world.channel, focused="style", value="no"
    )
    [choice] = await handle.wait_choices()
    assert choice["value"] == "noir"  # the name as last spelt by a moderator
    card = await video(world, style=choice["value"])
    body = world.aiml.submissions[-1]
    assert body["prompt"] == f"a fox runs through the forest of image 1\n\n{NOIR}, rain"
    assert fields(card)["Style"] == "**noir**"
    assert NOIR not in str(card.embeds)  # the card quotes the member's prompt only
    assert card.embeds[0]["description"] == "> a fox runs through the forest of image 1"


async def test_an_unknown_style_and_a_style_over_the_prompt_limit_are_refused_before_charging(world: World) -> None:
    await world.start_bot()
    await world.mod("style set", name="Noir", text=NOIR)
    gif = image("cat.gif", content_type="image/gif")
    handle = await world.video(style="Sepia", character1="Nobody", images={"image1": gif})
    text = await answer(world, handle)
    # Every problem at once: the style, the character, and the image.
    assert "no style called **Sepia**" in text
    assert "no character called **Nobody**" in text
    assert "Image 1 (`cat.gif`) is `image/gif`" in text

    prompt = "a fox " * 410  # 2460 characters: fine alone, over 2500 with the style's text
    handle = await world.video(prompt.strip(), style="Noir")
    text = await answer(world, handle)
    assert "With the style **Noir** added, the prompt is" in text
    assert "the limit is 2500" in text
    assert "Nothing was charged" in text
    assert world.aiml.submissions == []
    assert "used **0** of **5**" in await world.quota_text()


async def test_channel_defaults_apply_when_the_member_does_not_choose_and_clear_with_no_options(world: World) -> None:
    await world.start_bot()
    await world.mod("style set", name="Noir", text=NOIR)
    text = await world.mod("channel-defaults", channel=world.channel, style="Noir", duration=10, aspect_ratio="9:16")
    assert f"set the /video defaults of <#{world.channel}>: style **Noir**, 10 s, 9:16" in text

    card = await video(world)
    body = world.aiml.submissions[-1]
    assert (body["duration"], body["aspect_ratio"]) == (10, "9:16")
    assert str(body["prompt"]).endswith(NOIR)
    assert fields(card)["Style"] == "**Noir**"

    # The member's own choices win; `none` leaves the channel's style out (offered first in autocomplete).
    handle = await world.discord.autocomplete(
        "video", user_id=world.member, channel_id=world.channel, focused="style", value=""
    )
    first = (await handle.wait_choices())[0]
    assert first["value"] == "none"
    assert "No style" in first["name"]
    card = await video(world, style="none", duration=5, aspect_ratio="1:1")
    body = world.aiml.submissions[-1]
    assert (body["duration"], body["aspect_ratio"]) == (5, "1:1")
    assert body["prompt"] == "a fox runs through the forest of image 1"
    assert "Style" not in fields(card)

    assert "cleared the /video defaults" in await world.mod("channel-defaults", channel=world.channel)
    await video(world)
    body = world.aiml.submissions[-1]
    assert (body["duration"], body["aspect_ratio"], body["prompt"]) == (
        5,
        "16:9",
        "a fox runs through the forest of image 1",
    )


async def test_removing_a_style_takes_it_off_the_channels_and_members_cannot_manage_styles(world: World) -> None:
    await world.start_bot()
    await world.mod("style set", name="Noir", text=NOIR)
    await world.mod("channel-defaults", channel=world.channel, style="Noir")
    text = await world.mod("style remove", name="Noir")
    assert "removed the style **Noir**" in text
    assert f"no longer the default in <#{world.channel}>" in text
    await video(world)
    assert world.aiml.submissions[-1]["prompt"] == "a fox runs through the forest of image 1"

    with pytest.raises(SimError):  # hidden from members (default_member_permissions)
        await world.discord.invoke_command(
            "videomod", subcommand="style set", user_id=world.member, channel_id=world.channel,
            options={"name": "Mine", "text": "x"},
        )  # fmt: skip
    assert "cannot be called that" in await world.mod("style set", name="None", text="anything")
    assert "no style called **Noir**" in await world.mod("style remove", name="Noir")

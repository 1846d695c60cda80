"""Characters end to end, as members and moderators use them: save, list, share, use in `/video` (also after
Discord's URLs expired), a deleted character sheet, Discord not answering, too many images plus characters, and
autocomplete — through the real discord.py client, the Discord simulator and the AI/ML API simulator."""

from __future__ import annotations

from typing import Any

import pytest

from bot.sim.aimlapi import JobScript
from bot.sim.discord import AttachmentSpec, InteractionHandle, Perm, SimMessage
from tests.e2e_world import World, image

pytestmark = pytest.mark.timeout(90)

SLOW = JobScript(queued_s=0.2, generating_s=30.0)


async def create(
    world: World,
    name: str = "Fox",
    *,
    user_id: int | None = None,
    angles: int = 2,
    **options: Any,
) -> str:
    """Run `/character create` and return the (private) answer."""
    files: dict[str, AttachmentSpec] = {"frontal": image(f"{name.lower()}-front.png")}
    for n in range(1, angles + 1):
        files[f"reference{n}"] = image(f"{name.lower()}-{n}.png", 900, 900)
    handle = await world.discord.invoke_command(
        "character",
        subcommand="create",
        user_id=user_id or world.member,
        channel_id=world.channel,
        options={"name": name, **options},
        attachments=files,
    )
    return await private_text(world, handle)


async def private_text(world: World, handle: InteractionHandle, timeout: float = 15) -> str:
    """The member's private answer: the reply; or after a deferral the followup that replaced "thinking…", or,
    when a public deferral was withdrawn, the private followup sent instead."""

    def answer() -> SimMessage | None:
        if handle.response_type == 4:
            return handle.response
        if handle.response_type == 5:
            original = handle.response
            if original is None:  # withdrawn: the answer is a followup of its own
                return next(iter(handle.followups), None)
            if handle.original_edits > 0 and not original.loading:
                return original
        return None

    message: SimMessage = await world.discord.wait_for(answer, timeout)
    assert message.ephemeral, message.content
    return str(message.content)


def _current(world: World, message_id: int) -> SimMessage:
    message = world.discord.message(message_id, include_ephemeral=True)
    assert message is not None
    return message


def sheets(world: World) -> list[SimMessage]:
    return [m for m in world.discord.messages(world.channel) if m.embeds and m.embeds[0]["title"].startswith("🎭")]


def cards(world: World) -> list[SimMessage]:
    return [m for m in world.discord.messages(world.channel) if m.embeds and "Video #" in m.embeds[0]["title"]]


def fields(message: SimMessage) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message.embeds[0]["fields"]}


async def command(world: World, command_name: str, subcommand: str | None = None, **kw: Any) -> str:
    user_id = kw.pop("user_id", world.member)
    handle = await world.discord.invoke_command(
        command_name, subcommand=subcommand, user_id=user_id, channel_id=world.channel, options=kw or None
    )
    return await private_text(world, handle)


async def suggestions(world: World, focused: str, typed: str, **filled: Any) -> list[dict[str, Any]]:
    handle = await world.discord.autocomplete(
        "video",
        user_id=filled.pop("user_id", world.member),
        channel_id=world.channel,
        focused=focused,
        value=typed,
        options=filled,
    )
    return await handle.wait_choices(timeout=5)


async def delivered(world: World, card: SimMessage) -> None:
    await world.discord.wait_for(lambda: "Delivered" in fields(_current(world, card.id))["Status"], timeout=20)


async def test_a_member_saves_a_character_and_uses_it_twice_also_after_the_urls_expired(world: World) -> None:
    bot = await world.start_bot()
    text = await create(world, "Fox")
    assert "Saved **Fox**" in text
    [sheet] = sheets(world)
    assert [a.filename for a in sheet.attachments] == ["front.png", "angle-1.png", "angle-2.png"]
    assert sheet.author_id == world.discord.bot_user.id
    [fox] = await bot.characters.visible(world.guild.id, world.member)
    assert (fox.id, fox.attachment_ids) == (sheet.id, tuple(a.id for a in sheet.attachments))  # ids, nothing else

    # First use: typed by name. The card and the thread say who is @Element1; the provider gets one element.
    handle = await world.video("@Fox runs through the forest of image 1", images={"image1": image()}, character1="Fox")
    card = await handle.wait_response(timeout=15)
    assert not handle.ephemeral
    assert fields(card)["Characters"] == "`@Element1` **Fox**"
    await delivered(world, card)
    note = await world.wait_for_text(card.id, "Characters in this video")
    assert "`@Element1` **Fox**" in note.content
    first = world.aiml.submissions[-1]
    assert first["prompt"] == "@Element1 runs through the forest of image 1"
    [element] = first["elements"]  # type: ignore[misc]
    sheet_urls = {a.id: a for a in sheet.attachments}
    assert f"/{sheet.attachments[0].id}/front.png" in element["frontal_image_url"]
    assert len(element["reference_image_urls"]) == 2
    assert all(str(sheet.channel_id) in url for url in element["reference_image_urls"])
    assert len(sheet_urls) == 3

    # A month later every URL Discord ever signed has expired; picked from the list this time. It still works:
    # the sheet is read again and the provider gets freshly signed URLs (the simulator fetches them).
    world.discord.expire_attachment_urls()
    [choice] = await suggestions(world, "character1", "fo")
    assert choice["value"] == f"#{fox.id}"
    handle = await world.video(
        "@fox jumps over the river in image 1", images={"image1": image()}, character1=choice["value"]
    )
    second_card = await handle.wait_response(timeout=15)
    await delivered(world, second_card)
    second = world.aiml.submissions[-1]
    assert second["prompt"] == "@Element1 jumps over the river in image 1"
    assert second["elements"][0]["frontal_image_url"] != element["frontal_image_url"]  # type: ignore[index]
    assert "used **2** of **5**" in await world.quota_text()


async def test_list_share_and_delete_with_members_and_moderators(world: World) -> None:
    bot = await world.start_bot()
    alice, bob = world.guild.member_ids[0], world.guild.member_ids[1]
    moderator = world.guild.moderator_id

    refused = await create(world, "Castle", shared=True)
    assert "Only moderators can share" in refused
    assert sheets(world) == []  # nothing posted, nothing saved

    assert "Saved **Castle**" in await create(world, "Castle", shared=True, user_id=moderator)
    assert "Saved **Fox**" in await create(world, "Fox")
    assert "Saved **Robot**" in await create(world, "Robot", user_id=bob)
    assert "already a character called **fox**" in (await create(world, "fox")).lower()

    listed = await command(world, "character", "list")
    assert "**Fox**" in listed
    assert "**Castle**" in listed
    assert "Robot" not in listed  # bob's own
    assert "(1 of 25)" in listed

    labels = [c["name"] for c in await suggestions(world, "character1", "")]
    assert labels == ["Fox · yours · front + 2 angles", "Castle · shared · front + 2 angles"]
    fox_value = (await suggestions(world, "character1", "fox"))[0]["value"]
    others = await suggestions(world, "character2", "", character1=fox_value)
    assert [c["name"].split(" · ")[0] for c in others] == ["Castle"]  # already picked ones are left out
    assert await suggestions(world, "character1", "rob") == []  # nobody else's characters

    handle = await world.video(user_id=bob, character1="Fox")
    text = await private_text(world, handle)
    assert "no character called **Fox**" in text
    assert "Nothing was charged" in text
    assert "used **0** of **5**" in await world.quota_text(bob)

    assert "only moderators can delete it" in await command(world, "character", "delete", name="Castle", user_id=alice)
    castle_sheet = next(s for s in sheets(world) if "Castle" in s.embeds[0]["title"])
    assert "Deleted **Castle**" in await command(world, "character", "delete", name="castle", user_id=moderator)
    assert world.discord.message(castle_sheet.id) is None  # the sheet, and with it the images, are gone
    assert [c.name for c in await bot.characters.visible(world.guild.id, alice)] == ["Fox"]


async def test_a_deleted_character_sheet_is_gone_nothing_is_charged_and_it_leaves_the_list(world: World) -> None:
    bot = await world.start_bot()
    await create(world, "Fox")
    [sheet] = sheets(world)
    world.discord.delete_message(sheet)  # a moderator deletes the message in Discord

    handle = await world.video(character1="Fox")
    text = await private_text(world, handle)
    assert "**Fox** is gone" in text
    assert "Nothing was charged" in text
    assert cards(world) == []  # the public "thinking…" message was withdrawn, no card
    assert world.aiml.submissions == []
    assert "used **0** of **5**" in await world.quota_text()
    assert await bot.characters.visible(world.guild.id, world.member) == []


@pytest.mark.parametrize("how", ["error", "stall"])
async def test_discord_not_answering_is_try_again_and_nothing_is_charged(world: World, how: str) -> None:
    bot = await world.start_bot()
    await create(world, "Fox")
    route = "/channels/{channel_id}/messages/{message_id}"
    if how == "error":
        world.discord.inject_fault("GET", route, 503, count=10)
    else:
        bot.media.timeout = 1.0
        world.discord.stall("GET", route, 5.0)

    handle = await world.video(character1="Fox")
    text = await private_text(world, handle)
    assert "did not answer in time" in text
    assert "try again in a moment" in text
    assert "gone" not in text
    assert cards(world) == []
    assert "used **0** of **5**" in await world.quota_text()
    assert len(await bot.characters.visible(world.guild.id, world.member)) == 1  # still there

    world.discord.ratelimiter.faults.clear()
    world.discord.stalls.clear()
    handle = await world.video(character1="Fox")
    card = await handle.wait_response(timeout=15)
    assert "Fox" in fields(card)["Characters"]


async def test_too_many_images_plus_characters_is_refused_at_once_and_charges_nothing(world: World) -> None:
    await world.start_bot()
    await create(world, "Fox")
    await create(world, "Owl")
    images = {f"image{n}": image(f"{n}.png") for n in range(1, 7)}
    handle = await world.video(images=images, character1="Fox", character2="Owl")
    text = await private_text(world, handle)
    assert handle.response_type == 5  # the answer came at once ("thinking…"), then the refusal in private
    assert handle.ephemeral
    assert world.discord.requests_to("/attachments/refresh-urls") == []  # refused before any sheet was read
    assert "6 images and 2 characters make 8 references" in text
    assert "at most 7" in text
    assert world.aiml.submissions == []
    assert "used **0** of **5**" in await world.quota_text()

    images.pop("image6")
    handle = await world.video(images=images, character1="Fox", character2="Owl")
    card = await handle.wait_response(timeout=15)
    await delivered(world, card)
    body = world.aiml.submissions[-1]
    assert (len(body["image_list"]), len(body["elements"])) == (5, 2)  # type: ignore[arg-type]


async def test_a_character_image_breaking_the_rules_is_named_and_nothing_is_saved(world: World) -> None:
    await world.start_bot()
    handle = await world.discord.invoke_command(
        "character",
        subcommand="create",
        user_id=world.member,
        channel_id=world.channel,
        options={"name": "Tiny"},
        attachments={"frontal": image("front.png"), "reference1": image("side.png", 200, 200)},
    )
    text = await private_text(world, handle)
    assert "I could not save this character" in text
    assert "Angle 1 (`side.png`) is 200×200 px" in text
    assert "Nothing was saved" in text
    assert sheets(world) == []


async def test_a_character_with_four_angles_sends_three(world: World) -> None:
    await world.start_bot()
    text = await create(world, "Fox", angles=4)
    assert "uses the first 3 of its 4 angles" in text
    handle = await world.video(character1="Fox")
    await delivered(world, await handle.wait_response(timeout=15))
    assert len(world.aiml.submissions[-1]["elements"][0]["reference_image_urls"]) == 3  # type: ignore[index]


async def test_remix_and_retry_keep_the_cast_and_the_style(world: World) -> None:
    await world.start_bot()
    moderator = world.guild.moderator_id
    await create(world, "Fox")
    assert "added the style **Noir**" in await command(
        world, "videomod", "style set", name="Noir", text="black and white, film grain", user_id=moderator
    )
    handle = await world.video(
        "@Fox in the forest of image 1", images={"image1": image()}, character1="Fox", style="Noir"
    )
    card = await handle.wait_response(timeout=15)
    await delivered(world, card)
    job_id = int(card.embeds[0]["title"].split("#")[1])

    opened = await world.discord.click_button(card.id, f"reelbot:remix:{job_id}", user_id=world.member)
    await opened.wait_ack(timeout=5)
    submitted = await world.discord.submit_modal(
        f"reelbot:remix-modal:{job_id}", {"prompt": "@Fox dances in the snow"}, user_id=world.member
    )
    assert "Started video" in await private_text(world, submitted)
    await world.discord.wait_for(lambda: len(world.aiml.submissions) == 2, timeout=10)
    remix = world.aiml.submissions[-1]
    assert remix["prompt"] == "@Element1 dances in the snow\n\nblack and white, film grain"
    assert len(remix["elements"]) == 1  # type: ignore[arg-type]
    remix_card = cards(world)[-1]
    assert fields(remix_card)["Characters"] == "`@Element1` **Fox**"
    assert fields(remix_card)["Style"] == "**Noir**"


async def test_a_channel_where_the_sheet_cannot_be_posted_is_refused_naming_the_permission(world: World) -> None:
    await world.start_bot()
    world.discord.set_bot_permissions(world.channel, deny=Perm.ATTACH_FILES | Perm.READ_MESSAGE_HISTORY)
    text = await create(world, "Fox")
    assert "I cannot post the character sheet here: I am missing **Attach Files, Read Message History**" in text
    assert sheets(world) == []

"""`CharacterLibrary` and `StyleBook` on a real store, without Discord: what `/character` and `/videomod style`
refuse and why, which character a typed name or a picked suggestion means, the suggestions while typing, reading
a job's characters from their sheets, and the settings a `/video` gets from its options and its channel."""

from __future__ import annotations

import pytest

from bot.domain.cast import CastMember, Character
from bot.domain.styles import StyleChoice
from bot.domain.validation import ImageMeta
from bot.services.characters import CharacterLibrary, CharacterLimits, NewCharacter
from bot.services.media import MediaForbidden, MediaUnavailable, Unavailable
from bot.services.styles import StyleBook, VideoSettings
from bot.storage import Store
from tests.fakes import FakeMedia

GUILD, CHANNEL = 10, 20
ALICE, BOB, MOD = 100, 101, 102


def picture(n: int, **meta: object) -> ImageMeta:
    values: dict[str, object] = {"content_type": "image/png", "size": 50_000, "width": 1024, "height": 768}
    values.update(meta)
    return ImageMeta(n, f"img{n}.png", **values)  # type: ignore[arg-type]


def new(name: str = "Fox", owner: int = ALICE, *, shared: bool = False, angles: int = 2, **kw: object) -> NewCharacter:
    images = tuple(picture(n) for n in range(angles + 1))
    return NewCharacter(GUILD, CHANNEL, owner, name, shared, kw.pop("by_moderator", owner == MOD), images)  # type: ignore[arg-type]


_sheets = iter(range(5_000, 9_000, 10))


async def saved(library: CharacterLibrary, request: NewCharacter) -> Character:
    assert await library.check_new(request) == []
    sheet = next(_sheets)
    character = await library.save(request, sheet, [sheet + 1 + n for n in range(len(request.images))])
    assert isinstance(character, Character), character
    return character


@pytest.fixture
def library(store: Store) -> CharacterLibrary:
    return CharacterLibrary(store, CharacterLimits(per_member=2, shared_per_server=1))


async def test_every_problem_with_a_new_character_is_named_at_once(library: CharacterLibrary) -> None:
    bad = NewCharacter(
        GUILD, CHANNEL, ALICE, "@Fox", True, False, (picture(0, content_type="image/gif"), picture(1, width=200))
    )
    problems = await library.check_new(bad)
    assert any("name may use letters" in p for p in problems)
    assert any(p.startswith("Front view (`img0.png`) is `image/gif`") for p in problems)
    assert any(p.startswith("Angle 1 (`img1.png`) is 200×768 px") for p in problems)
    assert any("Only moderators can share" in p for p in problems)


async def test_names_taken_and_limits_are_refused_before_anything_is_posted(library: CharacterLibrary) -> None:
    await saved(library, new("Fox"))
    assert "already a character called **fox** among your characters" in (await library.check_new(new("fox")))[0]
    await saved(library, new("Owl"))
    assert "You already have 2 characters" in (await library.check_new(new("Cat")))[0]
    await saved(library, new("Castle", MOD, shared=True))
    assert "already shares 1 characters" in (await library.check_new(new("Tower", MOD, shared=True)))[0]
    # A save racing past the check is refused by the store, for the caller to take the sheet down.
    assert "already" in str(await library.save(new("Cat"), 1, [2, 3]))


async def test_a_typed_name_means_ones_own_first_and_a_picked_suggestion_means_exactly_that(
    library: CharacterLibrary,
) -> None:
    mine = await saved(library, new("Fox"))
    shared = await saved(library, new("Fox", MOD, shared=True))
    bobs = await saved(library, new("Robot", BOB))
    assert await library.find(GUILD, ALICE, " fox ") == mine
    assert await library.find(GUILD, ALICE, "@Fox") == mine
    assert await library.find(GUILD, ALICE, f"#{shared.id}") == shared
    assert await library.find(GUILD, BOB, "fox") == shared
    assert await library.find(GUILD, ALICE, f"#{bobs.id}") is None  # someone else's, even by its id
    assert await library.find(GUILD + 1, ALICE, "Fox") is None
    problems = await library.cast_for(GUILD, ALICE, ["Fox", "Nobody"])
    assert problems == [
        "There is no character called **Nobody** that you can use here. Pick one from the list, "
        "or save it with `/character create`."
    ]
    cast = await library.cast_for(GUILD, ALICE, [f"#{shared.id}", "fox"])
    assert [c.message_id for c in cast if isinstance(c, CastMember)] == [shared.id, mine.id]


async def test_suggestions_match_as_typed_leave_out_picked_ones_and_stop_at_25(store: Store) -> None:
    library = CharacterLibrary(store, CharacterLimits(per_member=40))
    for n in range(30):
        await saved(library, new(f"Hero {n:02}"))
    await saved(library, new("Superhero"))
    found = await library.suggest(GUILD, ALICE, "")
    assert len(found) == 25
    hits = await library.suggest(GUILD, ALICE, "hero 1")
    assert [s.label.split(" · ")[0] for s in hits] == [f"Hero 1{n}" for n in range(10)]
    starts_first = await library.suggest(GUILD, ALICE, "hero", exclude=[])
    assert starts_first[0].label.startswith("Hero 00")
    ordered = [s.label.split(" · ")[0] for s in await library.suggest(GUILD, ALICE, "erhero")]
    assert ordered == ["Superhero"]
    picked = found[0].value
    assert picked not in [s.value for s in await library.suggest(GUILD, ALICE, "", exclude=[picked])]
    assert all(len(s.label) <= 100 and len(s.value) <= 100 for s in found)


async def test_delete_own_ones_and_shared_ones_only_as_a_moderator(library: CharacterLibrary) -> None:
    fox = await saved(library, new("Fox"))
    castle = await saved(library, new("Castle", MOD, shared=True))
    assert "only moderators can delete it" in str(await library.delete(GUILD, ALICE, "Castle", moderator=False))
    assert "no character called" in str(await library.delete(GUILD, BOB, "Fox", moderator=True))
    assert await library.delete(GUILD, ALICE, "Fox", moderator=False) == fox
    assert await library.delete(GUILD, ALICE, f"#{castle.id}", moderator=True) == castle
    assert await library.visible(GUILD, ALICE) == []
    deletable = await library.deletable_suggestions(GUILD, ALICE, "", moderator=False)
    assert deletable == []


async def test_reading_sheets_gives_fresh_urls_and_tells_gone_from_try_again(library: CharacterLibrary) -> None:
    fox = await saved(library, new("Fox"))
    owl = await saved(library, new("Owl"))
    media = FakeMedia()
    media.add_sheet(fox.id, fox.attachment_ids)
    media.add_sheet(owl.id, owl.attachment_ids[:2])  # one of the owl's images was taken off its sheet
    cast = [CastMember.of(fox), CastMember.of(owl)]

    only_fox = await library.fresh_cast(media, GUILD, cast[:1])
    assert isinstance(only_fox, tuple)
    assert only_fox[0].frontal_url.endswith(f"/{fox.attachment_ids[0]}/sheet{fox.id}-{fox.attachment_ids[0]}.png?v=1")
    assert len(only_fox[0].angle_urls) == 2

    media.sheet_failures[fox.id] = MediaForbidden(CHANNEL)
    blocked = await library.fresh_cast(media, GUILD, cast)
    assert isinstance(blocked, Unavailable)
    assert (blocked.character, blocked.gone) == ("Fox", False)
    media.sheet_failures[fox.id] = MediaUnavailable("timeout")
    assert not (await library.fresh_cast(media, GUILD, cast[:1])).gone  # type: ignore[union-attr]
    assert len(await library.visible(GUILD, ALICE)) == 2

    media.sheet_failures.clear()
    gone = await library.fresh_cast(media, GUILD, cast)
    assert isinstance(gone, Unavailable)
    assert (gone.character, gone.gone) == ("Owl", True)
    assert [c.name for c in await library.visible(GUILD, ALICE)] == ["Fox"]


async def test_style_rules(store: Store) -> None:
    styles = StyleBook(store)
    assert "cannot be called that" in str(await styles.set(GUILD, "NONE", "x", actor_id=MOD))
    assert "name may use letters" in str(await styles.set(GUILD, "*bold*", "x", actor_id=MOD))
    assert "1–500 characters" in str(await styles.set(GUILD, "Noir", "\u200b ", actor_id=MOD))
    assert "no style called **Noir**" in str(await styles.remove(GUILD, "Noir", actor_id=MOD))
    assert "no style called" in str(
        await styles.set_channel_defaults(GUILD, CHANNEL, style="Noir", duration=None, aspect_ratio=None, actor_id=MOD)
    )


async def test_a_video_gets_the_members_choice_else_the_channels_else_the_bots(store: Store) -> None:
    styles = StyleBook(store)
    await styles.set(GUILD, "Noir", "black and white", actor_id=MOD)
    await styles.set(GUILD, "Pastel", "soft pastel colours", actor_id=MOD)
    plain = VideoSettings(None, 5, "16:9")
    assert await styles.for_video(GUILD, CHANNEL, style=None, duration=None, aspect_ratio=None) == plain

    await styles.set_channel_defaults(GUILD, CHANNEL, style="noir", duration=10, aspect_ratio=None, actor_id=MOD)
    noir = StyleChoice("Noir", "black and white")
    assert await styles.for_video(GUILD, CHANNEL, style=None, duration=None, aspect_ratio=None) == VideoSettings(
        noir, 10, "16:9"
    )
    assert await styles.for_video(GUILD, CHANNEL, style="pastel", duration=5, aspect_ratio="1:1") == VideoSettings(
        StyleChoice("Pastel", "soft pastel colours"), 5, "1:1"
    )
    assert (await styles.for_video(GUILD, CHANNEL, style="None", duration=None, aspect_ratio=None)) == VideoSettings(
        None, 10, "16:9"
    )
    assert await styles.for_video(GUILD, CHANNEL + 1, style=None, duration=None, aspect_ratio=None) == plain
    assert "no style called **Sepia**" in str(
        await styles.for_video(GUILD, CHANNEL, style="Sepia", duration=None, aspect_ratio=None)
    )
    labels = [s.value for s in await styles.suggest(GUILD, CHANNEL, "")]
    assert labels == ["none", "Noir", "Pastel"]
    assert [s.value for s in await styles.suggest(GUILD, CHANNEL + 1, "")] == ["Noir", "Pastel"]
    assert [s.value for s in await styles.suggest(GUILD, CHANNEL, "tel")] == ["Pastel"]


async def test_characters_are_saved_only_where_moderators_allow_videos(library: CharacterLibrary, store: Store) -> None:
    await store.guilds.allow_channel(GUILD, CHANNEL + 5, actor_id=MOD)
    problems = await library.check_new(new("Fox"))
    assert problems == [f"Characters are saved where videos are made on this server: use <#{CHANNEL + 5}>."]

"""The store's characters, styles and channel defaults, on every backend: names unique per owner and among shared
ones whatever the case, limits that hold under concurrent saves, per-server visibility, only ids kept, styles
that leave the channels they were the default of, and every moderator change in the ledger."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.domain.cast import CastMember, Character
from bot.domain.styles import MAX_STYLES, ChannelDefaults
from bot.storage import LedgerKind, NotSaved, Store, TooManyStyles
from tests.fakes import video_request
from tests.pg import RawRefused, RawSql

GUILD, OTHER_GUILD, CHANNEL = 10, 11, 20
ALICE, BOB, MOD = 100, 101, 102

_ids = iter(range(1_000_000, 2_000_000, 10))


def character(name: str, owner: int = ALICE, *, shared: bool = False, guild: int = GUILD) -> Character:
    sheet = next(_ids)
    return Character(sheet, guild, owner, name, shared, CHANNEL, (sheet + 1, sheet + 2), 0.0)


async def save(store: Store, c: Character, personal: int = 25, shared: int = 100) -> Character | NotSaved:
    return await store.characters.create(c, personal_limit=personal, shared_limit=shared)


async def test_a_character_keeps_only_ids_and_is_seen_by_its_owner_on_its_server(store: Store, raw: RawSql) -> None:
    fox = await save(store, character("Fox"))
    assert isinstance(fox, Character)
    assert fox.created_at == store.clock()
    [row] = await raw.fetch(
        "SELECT id, guild_id, owner_id, name, name_key, shared, channel_id, attachment_ids FROM characters"
    )
    assert row == (fox.id, GUILD, ALICE, "Fox", "fox", 0, CHANNEL, json.dumps(list(fox.attachment_ids)))
    assert await store.characters.visible_to(GUILD, ALICE) == [fox]
    assert await store.characters.visible_to(GUILD, BOB) == []
    assert await store.characters.visible_to(OTHER_GUILD, ALICE) == []
    assert await store.characters.get(OTHER_GUILD, fox.id) is None


async def test_names_are_unique_per_owner_and_among_shared_ones_whatever_the_case(store: Store) -> None:
    assert isinstance(await save(store, character("Fox")), Character)
    assert await save(store, character("FOX")) is NotSaved.NAME_TAKEN
    assert isinstance(await save(store, character("Fox", BOB)), Character)  # bob's own Fox
    assert isinstance(await save(store, character("Fox", MOD, shared=True)), Character)  # the server's Fox
    assert await save(store, character("fox", BOB, shared=True)) is NotSaved.NAME_TAKEN
    assert isinstance(await save(store, character("Fox", guild=OTHER_GUILD)), Character)
    assert await store.characters.name_taken(GUILD, ALICE, "fOx", shared=False)
    assert not await store.characters.name_taken(GUILD, ALICE, "Owl", shared=True)
    # Alice sees her own Fox first, then the shared one.
    assert [(c.name, c.shared) for c in await store.characters.visible_to(GUILD, ALICE)] == [
        ("Fox", False),
        ("Fox", True),
    ]


async def test_limits_hold_when_saves_race(store: Store) -> None:
    results = await asyncio.gather(*(save(store, character(f"C{n}"), personal=3) for n in range(8)))
    assert sum(isinstance(r, Character) for r in results) == 3
    assert results.count(NotSaved.PERSONAL_LIMIT) == 5
    shared = await asyncio.gather(*(save(store, character(f"S{n}", MOD, shared=True), shared=2) for n in range(5)))
    assert sum(isinstance(r, Character) for r in shared) == 2
    assert await store.characters.counts(GUILD, ALICE) == (3, 2)


async def test_sharing_and_removing_a_shared_character_are_in_the_ledger(store: Store) -> None:
    castle = await save(store, character("Castle", MOD, shared=True))
    assert isinstance(castle, Character)
    own = await save(store, character("Fox"))
    assert isinstance(own, Character)
    assert await store.characters.delete(GUILD, own.id, actor_id=ALICE) == own
    assert await store.characters.delete(GUILD, castle.id, actor_id=MOD) == castle
    assert await store.characters.delete(GUILD, castle.id, actor_id=MOD) is None
    rows = await store.quotas.ledger(GUILD, kinds=[LedgerKind.GUILD_SETTING])
    assert [json.loads(r.detail or "{}") for r in sorted(rows, key=lambda r: r.id)] == [
        {"shared_character": "Castle", "saved": True},
        {"shared_character": "Castle", "saved": False},
    ]
    assert {r.actor_id for r in rows} == {MOD}


async def test_a_job_keeps_its_characters_and_style(store: Store, intake: object) -> None:
    from bot.domain.styles import StyleChoice
    from bot.services.intake import Intake
    from bot.storage import Reserved

    assert isinstance(intake, Intake)
    cast = (CastMember("Fox", CHANNEL, 5, (6, 7), "https://f", ("https://a", "https://b")),)
    outcome = await intake.start(video_request(characters=cast, style=StyleChoice("Noir", "grainy")))
    assert isinstance(outcome, Reserved)
    job = await store.jobs.get(outcome.job.id)
    assert job is not None
    assert job.characters == cast
    assert (job.prompt, job.style_name, job.style_text) == (outcome.job.prompt, "Noir", "grainy")


async def test_styles_upsert_list_and_cap(store: Store) -> None:
    _, created = await store.styles.set(GUILD, "Noir", "black and white", actor_id=MOD)
    assert created
    again, created = await store.styles.set(GUILD, "NOIR", "black and white, grainy", actor_id=MOD)
    assert not created
    assert (again.name, again.text) == ("NOIR", "black and white, grainy")
    assert [s.name for s in await store.styles.for_guild(GUILD)] == ["NOIR"]
    assert await store.styles.for_guild(OTHER_GUILD) == []
    assert (await store.styles.get(GUILD, "noir")) == again
    for n in range(MAX_STYLES - 1):
        await store.styles.set(GUILD, f"s{n}", "x", actor_id=MOD)
    with pytest.raises(TooManyStyles):
        await store.styles.set(GUILD, "one too many", "x", actor_id=MOD)
    await store.styles.set(GUILD, "noir", "changed", actor_id=MOD)  # changing one is still fine


async def test_channel_defaults_set_clear_and_lose_a_removed_style(store: Store) -> None:
    await store.styles.set(GUILD, "Noir", "black and white", actor_id=MOD)
    empty = await store.styles.channel_defaults(GUILD, CHANNEL)
    assert empty.empty
    defaults = ChannelDefaults(GUILD, CHANNEL, "noir", 10, "9:16")
    saved = await store.styles.set_channel_defaults(defaults, actor_id=MOD)
    assert (saved.style, saved.duration, saved.aspect_ratio) == ("Noir", 10, "9:16")  # the style as spelt
    other = await store.styles.set_channel_defaults(ChannelDefaults(GUILD, CHANNEL + 1, "Noir"), actor_id=MOD)
    assert other.style == "Noir"

    removed = await store.styles.remove(GUILD, "NOIR", actor_id=MOD)
    assert removed is not None
    assert removed[1] == [CHANNEL, CHANNEL + 1]
    assert await store.styles.channel_defaults(GUILD, CHANNEL) == ChannelDefaults(GUILD, CHANNEL, None, 10, "9:16")
    assert (await store.styles.channel_defaults(GUILD, CHANNEL + 1)).empty
    assert await store.styles.remove(GUILD, "Noir", actor_id=MOD) is None

    cleared = await store.styles.set_channel_defaults(ChannelDefaults(GUILD, CHANNEL), actor_id=MOD)
    assert cleared.empty
    kinds = {r.kind for r in await store.quotas.ledger(GUILD)}
    assert kinds == {LedgerKind.GUILD_SETTING}
    assert len(await store.quotas.ledger(GUILD)) == 5  # the style, two channels, the removal, the clearing


async def test_the_database_refuses_bad_defaults_and_style_text(store: Store, raw: RawSql) -> None:
    with pytest.raises(RawRefused):
        await raw.execute(
            "INSERT INTO channel_defaults (guild_id, channel_id, duration, updated_at) VALUES (?, ?, ?, ?)",
            1,
            2,
            7,
            0.0,
        )
    with pytest.raises(RawRefused):
        await raw.execute(
            "INSERT INTO styles (guild_id, name_key, name, text, updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            1, "x", "x", "y" * 501, 1, 0.0,
        )  # fmt: skip

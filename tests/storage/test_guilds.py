"""Guild settings and the key/value meta table, on each backend of REELBOT_TEST_BACKENDS."""

from __future__ import annotations

import json

import pytest

from bot.storage import GuildConfig, LedgerKind, Store

GUILD, OTHER, MOD = 1, 2, 99


async def test_unconfigured_guild_gets_defaults(store: Store) -> None:
    config = await store.guilds.get(GUILD)
    assert config == GuildConfig(guild_id=GUILD)
    assert (config.default_limit, config.paused, config.mod_log_channel_id) == (None, False, None)
    assert (config.moderator_role_id, config.price_per_second, config.allowed_channel_ids) == (None, None, frozenset())
    assert config.channel_allowed(12345)


async def test_update_changes_only_named_fields_and_is_audited(store: Store) -> None:
    config = await store.guilds.update(GUILD, actor_id=MOD, reason="launch", paused=True, price_per_second=0.084)
    assert (config.paused, config.price_per_second) == (True, 0.084)
    config = await store.guilds.update(GUILD, actor_id=MOD, mod_log_channel_id=555, moderator_role_id=777)
    assert (config.paused, config.price_per_second, config.mod_log_channel_id, config.moderator_role_id) == (
        True,
        0.084,
        555,
        777,
    )
    config = await store.guilds.update(GUILD, actor_id=MOD, paused=False, mod_log_channel_id=None)
    assert (config.paused, config.mod_log_channel_id) == (False, None)
    rows = await store.quotas.ledger(GUILD, kinds=[LedgerKind.GUILD_SETTING])
    assert len(rows) == 3
    assert (rows[0].actor_id, rows[0].reason) == (MOD, "launch")
    assert json.loads(rows[0].detail or "") == {"paused": True, "price_per_second": 0.084}
    assert await store.guilds.get(OTHER) == GuildConfig(guild_id=OTHER)


async def test_update_refuses_unknown_or_invalid_fields(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown"):
        await store.guilds.update(GUILD, actor_id=MOD, colour="red")
    with pytest.raises(ValueError, match="negative"):
        await store.guilds.update(GUILD, actor_id=MOD, default_limit=-1)
    with pytest.raises(ValueError, match="nothing"):
        await store.guilds.update(GUILD, actor_id=MOD)
    assert await store.quotas.ledger(GUILD) == []


async def test_guild_default_set_by_quotas_shows_in_config(store: Store) -> None:
    await store.quotas.set_guild_default(GUILD, 4, actor_id=MOD)
    assert (await store.guilds.get(GUILD)).default_limit == 4


async def test_allowed_channels(store: Store) -> None:
    config = await store.guilds.allow_channel(GUILD, 10, actor_id=MOD)
    config = await store.guilds.allow_channel(GUILD, 11, actor_id=MOD, reason="art channel")
    assert config.allowed_channel_ids == {10, 11}
    assert config.channel_allowed(10)
    assert not config.channel_allowed(12)
    assert (await store.guilds.get(OTHER)).channel_allowed(12)  # another guild is unaffected
    await store.guilds.allow_channel(GUILD, 10, actor_id=MOD)  # twice is harmless
    await store.guilds.disallow_channel(GUILD, 10, actor_id=MOD)
    config = await store.guilds.disallow_channel(GUILD, 11, actor_id=MOD)
    assert config.allowed_channel_ids == frozenset()
    assert config.channel_allowed(12)  # none left: everywhere again
    kinds = [r.kind for r in await store.quotas.ledger(GUILD)]
    assert kinds == [LedgerKind.CHANNEL_ALLOW] * 3 + [LedgerKind.CHANNEL_DISALLOW] * 2


async def test_meta_roundtrip(store: Store) -> None:
    assert await store.get_meta("commands") is None
    await store.set_meta("commands", "v1")
    await store.set_meta("commands", "v2")
    assert await store.get_meta("commands") == "v2"

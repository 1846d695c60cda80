"""Ready-made guilds for tests: the standard test guild, and guilds whose ids land on a chosen gateway shard.

Discord routes a guild's events to shard `(guild_id >> 22) % shard_count`; the `>> 22` drops the worker,
process and increment bits of the snowflake, so the shard depends only on the id's timestamp part. Channel,
role and member-role ids are the guild id plus small offsets (same timestamp part, same shard), and every guild
has the same four member users (owner, moderator, alice, bob), as people are in several servers on Discord.
"""

from __future__ import annotations

from .state import (
    EVERYONE_PERMISSIONS,
    MODERATOR_PERMISSIONS,
    ChannelType,
    SimChannel,
    SimGuild,
    SimMember,
    SimRole,
    SimUser,
)

__all__ = ["default_guild", "guild_on_shard", "shard_of"]

# Fixed ids keep the default fixtures readable in logs; they are valid snowflakes from early 2025.
_BASE = 1_325_000_000_000_000_000
_DEFAULT_GUILD_ID = _BASE + 1


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard that carries a guild's events (Discord's sharding formula)."""
    return (guild_id >> 22) % shard_count


def default_guild(guild_id: int = _DEFAULT_GUILD_ID, name: str = "Reelbot Test Guild") -> SimGuild:
    """The standard test guild: #general, #showcase (forum), an owner, a moderator (with the Moderator role),
    and two ordinary members, alice and bob. Boost tier 0. The simulator adds the bot member itself.

    Another `guild_id` gives a guild of the same shape with its own channel and role ids (users are shared)."""
    gid = guild_id
    text_id, forum_id = gid + 9, gid + 10
    mod_role_id = gid + 19
    owner = SimUser(_BASE + 100, "owner", global_name="Guild Owner")
    moderator = SimUser(_BASE + 101, "mod", global_name="Moderator")
    alice = SimUser(_BASE + 102, "alice", global_name="Alice")
    bob = SimUser(_BASE + 103, "bob", global_name="Bob")
    roles = {
        gid: SimRole(gid, "@everyone", EVERYONE_PERMISSIONS, position=0),
        mod_role_id: SimRole(mod_role_id, "Moderator", MODERATOR_PERMISSIONS, position=2),
    }
    channels = {
        text_id: SimChannel(text_id, gid, ChannelType.GUILD_TEXT, "general", position=0, topic="Say hi"),
        forum_id: SimChannel(forum_id, gid, ChannelType.GUILD_FORUM, "showcase", position=1),
    }
    members = {
        u.id: SimMember(u, roles=[mod_role_id] if u is moderator else []) for u in (owner, moderator, alice, bob)
    }
    return SimGuild(
        id=gid,
        name=name,
        owner_id=owner.id,
        roles=roles,
        channels=channels,
        members=members,
        premium_tier=0,
        text_channel_id=text_id,
        forum_channel_id=forum_id,
        moderator_id=moderator.id,
        moderator_role_id=mod_role_id,
        member_ids=[alice.id, bob.id],
    )


def guild_on_shard(shard_id: int, shard_count: int, index: int = 0) -> SimGuild:
    """A standard-shaped guild whose events go to `shard_id` of `shard_count`; `index` tells apart several
    guilds on the same shard (each gets its own ids and name)."""
    if not 0 <= shard_id < shard_count:
        raise ValueError(f"shard {shard_id} does not exist among {shard_count}")
    # Timestamp parts after the default guild's (so no id collides with it): one block of `shard_count`
    # consecutive values per index, and within the block the value that lands on the shard.
    stamp = (_BASE >> 22) + 1 + index * shard_count
    stamp += (shard_id - stamp) % shard_count
    gid = (stamp << 22) + 1
    guild = default_guild(gid, name=f"Shard {shard_id} Guild {index + 1}")
    assert shard_of(gid, shard_count) == shard_id
    return guild

"""Discord's permission algorithm: base permissions from roles, then channel overwrites.

Threads take their permissions from the parent channel, as on Discord.
"""

from __future__ import annotations

from .state import ALL_PERMISSIONS, Perm, SimChannel, SimGuild

__all__ = ["base_permissions", "channel_permissions"]


def base_permissions(guild: SimGuild, user_id: int) -> int:
    """Guild-level permissions of a member (owner and administrators get everything)."""
    if user_id == guild.owner_id:
        return ALL_PERMISSIONS
    member = guild.members.get(user_id)
    if member is None:
        return 0
    perms = guild.roles[guild.id].permissions
    for role_id in member.roles:
        role = guild.roles.get(role_id)
        if role is not None:
            perms |= role.permissions
    if perms & Perm.ADMINISTRATOR:
        return ALL_PERMISSIONS
    return perms


def channel_permissions(guild: SimGuild, channel: SimChannel, user_id: int) -> int:
    """Permissions of a member in a channel (or a thread, via its parent)."""
    base = base_permissions(guild, user_id)
    if base == ALL_PERMISSIONS:
        return base
    target = channel
    if channel.is_thread and channel.parent_id is not None and channel.parent_id in guild.channels:
        target = guild.channels[channel.parent_id]
    perms = base
    everyone = target.overwrites.get(guild.id)
    if everyone is not None:
        perms = (perms & ~everyone.deny) | everyone.allow
    member = guild.members.get(user_id)
    role_ids = set(member.roles) if member else set()
    allow = deny = 0
    for ow in target.overwrites.values():
        if ow.type == 0 and ow.id in role_ids:
            allow |= ow.allow
            deny |= ow.deny
    perms = (perms & ~deny) | allow
    own = target.overwrites.get(user_id)
    if own is not None and own.type == 1:
        perms = (perms & ~own.deny) | own.allow
    # Without VIEW_CHANNEL a member has no permission at all in the channel.
    if not perms & Perm.VIEW_CHANNEL:
        return 0
    return perms

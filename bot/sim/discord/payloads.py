"""JSON payloads in Discord's wire shapes (users, members, roles, channels, threads, messages, guilds).

Every builder emits the fields discord.py reads unconditionally *and* the fields the OpenAPI response schemas
require, so that both the real client and the schema-fidelity test are satisfied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .state import (
    ChannelType,
    SimAttachment,
    SimChannel,
    SimGuild,
    SimMember,
    SimMessage,
    SimRole,
    SimUser,
    iso_time,
)

if TYPE_CHECKING:
    from .core import SimCore

__all__ = [
    "attachment_json",
    "channel_json",
    "guild_create_json",
    "guild_json",
    "guild_update_json",
    "member_json",
    "message_json",
    "role_json",
    "thread_json",
    "user_json",
]


def user_json(user: SimUser) -> dict[str, Any]:
    """A user object."""
    data: dict[str, Any] = {
        "id": str(user.id),
        "username": user.username,
        "discriminator": "0",
        "global_name": user.global_name,
        "avatar": None,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
        "collectibles": None,
        "primary_guild": None,
    }
    if user.bot:
        data["bot"] = True
    return data


def member_json(member: SimMember, *, with_user: bool = True, permissions: int | None = None) -> dict[str, Any]:
    """A guild member object (optionally with the `permissions` Discord adds inside interactions)."""
    data: dict[str, Any] = {
        "nick": member.nick,
        "avatar": None,
        "banner": None,
        "roles": [str(r) for r in member.roles],
        "joined_at": iso_time(member.joined_at),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "flags": 0,
        "communication_disabled_until": None,
    }
    if with_user:
        data["user"] = user_json(member.user)
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def role_json(role: SimRole) -> dict[str, Any]:
    """A role object."""
    return {
        "id": str(role.id),
        "name": role.name,
        "description": None,
        "permissions": str(role.permissions),
        "position": role.position,
        "color": role.color,
        "colors": {"primary_color": role.color, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "managed": role.managed,
        "mentionable": False,
        "icon": None,
        "unicode_emoji": None,
        "flags": 0,
    }


def channel_json(channel: SimChannel) -> dict[str, Any]:
    """A guild channel (text, announcement or forum); threads go through `thread_json`."""
    if channel.is_thread:
        return thread_json(channel)
    data: dict[str, Any] = {
        "id": str(channel.id),
        "type": channel.type,
        "guild_id": str(channel.guild_id),
        "name": channel.name,
        "position": channel.position,
        "parent_id": str(channel.parent_id) if channel.parent_id else None,
        "permission_overwrites": [
            {"id": str(o.id), "type": o.type, "allow": str(o.allow), "deny": str(o.deny)}
            for o in channel.overwrites.values()
        ],
        "nsfw": False,
        "flags": 0,
        "last_message_id": str(channel.last_message_id) if channel.last_message_id else None,
        "rate_limit_per_user": 0,
        "topic": channel.topic,
        "default_auto_archive_duration": 1440,
        "default_thread_rate_limit_per_user": 0,
    }
    if channel.type == ChannelType.GUILD_FORUM:
        data.update(
            available_tags=[],
            default_reaction_emoji=None,
            default_sort_order=None,
            default_forum_layout=0,
            default_tag_setting="match_some",
        )
    return data


def thread_json(thread: SimChannel, *, me_id: int | None = None) -> dict[str, Any]:
    """A thread channel; `me_id` adds the `member` object Discord includes for the caller when it is joined."""
    data: dict[str, Any] = {
        "id": str(thread.id),
        "type": thread.type,
        "guild_id": str(thread.guild_id),
        "parent_id": str(thread.parent_id) if thread.parent_id else None,
        "owner_id": str(thread.owner_id) if thread.owner_id else None,
        "name": thread.name,
        "last_message_id": str(thread.last_message_id) if thread.last_message_id else None,
        "message_count": thread.message_count,
        "member_count": len(thread.member_ids),
        "total_message_sent": thread.total_message_sent,
        "rate_limit_per_user": 0,
        "flags": 0,
        "thread_metadata": {
            "archived": thread.archived,
            "auto_archive_duration": thread.auto_archive_duration,
            "archive_timestamp": iso_time(thread.archive_timestamp),
            "locked": thread.locked,
            "create_timestamp": iso_time(thread.create_timestamp),
        },
    }
    if thread.type == ChannelType.PRIVATE_THREAD:
        data["thread_metadata"]["invitable"] = thread.invitable
    if thread.applied_tags or thread.parent_id is not None:
        data["applied_tags"] = [str(t) for t in thread.applied_tags]
    if me_id is not None and me_id in thread.member_ids:
        data["member"] = {
            "id": str(thread.id),
            "user_id": str(me_id),
            "join_timestamp": iso_time(thread.create_timestamp),
            "flags": 0,
        }
    return data


def attachment_json(sim: SimCore, att: SimAttachment) -> dict[str, Any]:
    """An attachment with a freshly signed CDN URL (as Discord signs on every fetch)."""
    att.url = sim.cdn.sign(att)
    data: dict[str, Any] = {
        "id": str(att.id),
        "filename": att.filename,
        "size": att.size,
        "url": att.url,
        "proxy_url": att.url,
    }
    if att.content_type:
        data["content_type"] = att.content_type
    if att.width is not None and att.height is not None:
        data["width"] = att.width
        data["height"] = att.height
    if att.description is not None:
        data["description"] = att.description
    if att.ephemeral:
        data["ephemeral"] = True
    return data


def message_json(sim: SimCore, msg: SimMessage) -> dict[str, Any]:
    """A message object."""
    author = sim.users.get(msg.author_id)
    author_data = user_json(author) if author else {"id": str(msg.author_id)}
    data: dict[str, Any] = {
        "id": str(msg.id),
        "channel_id": str(msg.channel_id),
        "type": msg.type,
        "content": msg.content,
        "author": author_data,
        "attachments": [attachment_json(sim, a) for a in msg.attachments],
        "embeds": msg.embeds,
        "components": msg.components,
        "mentions": [user_json(sim.users[u]) for u in msg.mentioned_user_ids if u in sim.users],
        "mention_roles": [str(r) for r in msg.mentioned_role_ids],
        "mention_everyone": msg.mention_everyone,
        "pinned": msg.pinned,
        "tts": msg.tts,
        "timestamp": iso_time(msg.created_at),
        "edited_timestamp": iso_time(msg.edited_at) if msg.edited_at is not None else None,
        "flags": msg.flags,
    }
    if msg.nonce is not None:
        data["nonce"] = msg.nonce
    if msg.webhook_id is not None:
        data["webhook_id"] = str(msg.webhook_id)
    if msg.application_id is not None:
        data["application_id"] = str(msg.application_id)
    if msg.message_reference is not None:
        data["message_reference"] = msg.message_reference
    if msg.interaction_metadata is not None:
        data["interaction_metadata"] = msg.interaction_metadata
    if msg.interaction_id is not None and msg.interaction_name is not None and msg.interaction_user_id is not None:
        # The deprecated `interaction` object, still sent for slash-command replies.
        user = sim.users.get(msg.interaction_user_id)
        data["interaction"] = {
            "id": str(msg.interaction_id),
            "type": msg.interaction_type or 2,
            "name": msg.interaction_name,
            "user": user_json(user) if user else {"id": str(msg.interaction_user_id)},
        }
    if msg.thread_id is not None:
        thread = sim.channels.get(msg.thread_id)
        if thread is not None:
            data["thread"] = thread_json(thread)
    return data


def guild_json(guild: SimGuild) -> dict[str, Any]:
    """The guild fields REST (GET /guilds/{id}) and the gateway (GUILD_CREATE) share."""
    return {
        "id": str(guild.id),
        "name": guild.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(guild.owner_id),
        "premium_tier": guild.premium_tier,
        "premium_subscription_count": [0, 2, 7, 14][min(max(guild.premium_tier, 0), 3)],
        "verification_level": 0,
        "default_message_notifications": 1,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "afk_channel_id": None,
        "afk_timeout": 300,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "preferred_locale": "en-US",
        "max_members": 500000,
        "vanity_url_code": None,
        "application_id": None,
        "features": [],
        "roles": [role_json(r) for r in guild.roles.values()],
        "emojis": [],
        "stickers": [],
        "premium_progress_bar_enabled": False,
    }


def guild_update_json(guild: SimGuild) -> dict[str, Any]:
    """The GUILD_UPDATE payload: the gateway's guild object without GUILD_CREATE's channel/member lists."""
    return guild_json(guild) | {
        "unavailable": False,
        "large": False,
        "member_count": len(guild.members),
        "system_channel_id": str(guild.text_channel_id) if guild.text_channel_id else None,
        "joined_at": iso_time(1_735_689_600.0),
    }


def guild_create_json(sim: SimCore, guild: SimGuild) -> dict[str, Any]:
    """The GUILD_CREATE payload: everything discord.py needs to cache the guild, channels, members, threads."""
    channels = [channel_json(c) for c in guild.channels.values() if not c.is_thread]
    threads = [thread_json(c, me_id=sim.bot_user.id) for c in guild.channels.values() if c.is_thread and not c.archived]
    return guild_update_json(guild) | {
        "channels": channels,
        "threads": threads,
        "members": [member_json(m) for m in guild.members.values()],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }

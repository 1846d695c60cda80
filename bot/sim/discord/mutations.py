"""`StateChanges`: every change to the simulated Discord that members could notice, with its gateway event.

REST handlers and test controls both go through these methods, so a message posted by the bot and one deleted by
a test control emit the same MESSAGE_CREATE / MESSAGE_DELETE and wake the same `wait_for` predicates.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from .core import SimCore
from .gateway import Intent
from .payloads import channel_json, member_json, message_json, thread_json
from .state import SimAttachment, SimChannel, SimGuild, SimMessage

__all__ = ["StateChanges"]


class StateChanges(SimCore):
    """Messages, attachments, threads and channels: create, update, delete, each dispatched to the gateway."""

    def _message_event(self, msg: SimMessage) -> dict[str, Any]:
        data = message_json(self, msg)
        if msg.guild_id is not None:
            data["guild_id"] = str(msg.guild_id)
            guild = self.guild_by_id.get(msg.guild_id)
            member = guild.members.get(msg.author_id) if guild else None
            if member is not None and msg.webhook_id is None:
                data["member"] = member_json(member, with_user=False)
        return data

    def add_message(self, msg: SimMessage) -> None:
        """Store a new message, update channel/thread counters, unarchive a thread, dispatch MESSAGE_CREATE."""
        self._messages[msg.id] = msg
        self._channel_messages[msg.channel_id].append(msg.id)
        channel = self.channels.get(msg.channel_id)
        if channel is not None and not msg.ephemeral:
            channel.last_message_id = msg.id
            if channel.is_thread:
                channel.message_count += 1
                channel.total_message_sent += 1
                if channel.archived:
                    # "The API will automatically unarchive a thread when sending a message in that thread".
                    channel.archived = False
                    channel.archive_timestamp = self.now()
                    self.thread_updated(channel)
        if not msg.ephemeral:
            self.gateway.dispatch(
                "MESSAGE_CREATE", self._message_event(msg), guild_id=msg.guild_id, intent=Intent.GUILD_MESSAGES
            )
        self.notify()

    def drop_attachment(self, att: SimAttachment) -> None:
        """Forget an attachment (its CDN URL then 404s) and delete its spooled file."""
        self.attachments.pop(att.id, None)
        if isinstance(att.content, Path):
            att.content.unlink(missing_ok=True)

    def message_updated(self, msg: SimMessage) -> None:
        """Dispatch MESSAGE_UPDATE for an edited message."""
        if not msg.ephemeral:
            self.gateway.dispatch(
                "MESSAGE_UPDATE", self._message_event(msg), guild_id=msg.guild_id, intent=Intent.GUILD_MESSAGES
            )
        self.notify()

    def delete_message(self, msg: SimMessage) -> None:
        """Remove a message and its attachments; dispatch MESSAGE_DELETE."""
        self._messages.pop(msg.id, None)
        with contextlib.suppress(ValueError):
            self._channel_messages[msg.channel_id].remove(msg.id)
        for att in msg.attachments:
            self.drop_attachment(att)
        if not msg.ephemeral:
            data: dict[str, Any] = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
            if msg.guild_id is not None:
                data["guild_id"] = str(msg.guild_id)
            self.gateway.dispatch("MESSAGE_DELETE", data, guild_id=msg.guild_id, intent=Intent.GUILD_MESSAGES)
        self.notify()

    def create_thread(
        self,
        guild: SimGuild,
        parent: SimChannel,
        *,
        thread_id: int,
        name: str,
        type: int,
        auto_archive_duration: int,
        message_id: int | None,
        applied_tags: list[int] | None = None,
    ) -> SimChannel:
        """Create a thread owned by the bot and dispatch THREAD_CREATE."""
        now = self.now()
        thread = SimChannel(
            id=thread_id,
            guild_id=guild.id,
            type=type,
            name=name,
            parent_id=parent.id,
            owner_id=self.bot_user.id,
            auto_archive_duration=auto_archive_duration,
            archive_timestamp=now,
            create_timestamp=now,
            message_id=message_id,
            applied_tags=list(applied_tags or []),
            member_ids={self.bot_user.id},
        )
        guild.channels[thread.id] = thread
        self.channels[thread.id] = thread
        data = thread_json(thread, me_id=self.bot_user.id) | {"newly_created": True}
        self.gateway.dispatch("THREAD_CREATE", data, guild_id=guild.id, intent=Intent.GUILDS)
        self.notify()
        return thread

    def thread_updated(self, thread: SimChannel) -> None:
        """Dispatch THREAD_UPDATE."""
        self.gateway.dispatch(
            "THREAD_UPDATE", thread_json(thread, me_id=self.bot_user.id), guild_id=thread.guild_id, intent=Intent.GUILDS
        )
        self.notify()

    def channel_updated(self, channel: SimChannel) -> None:
        """Dispatch CHANNEL_UPDATE (or THREAD_UPDATE)."""
        if channel.is_thread:
            self.thread_updated(channel)
            return
        self.gateway.dispatch("CHANNEL_UPDATE", channel_json(channel), guild_id=channel.guild_id, intent=Intent.GUILDS)
        self.notify()

    def delete_channel(self, channel_id: int) -> None:
        """Delete a channel or thread with its messages (and the threads under a channel)."""
        guild, channel = self.locate_channel(channel_id)
        for child in [c for c in guild.channels.values() if c.parent_id == channel_id and c.is_thread]:
            self.delete_channel(child.id)
        for mid in list(self._channel_messages.get(channel_id, [])):
            msg = self._messages.pop(mid, None)
            for att in msg.attachments if msg else []:
                self.drop_attachment(att)
        self._channel_messages.pop(channel_id, None)
        guild.channels.pop(channel_id, None)
        self.channels.pop(channel_id, None)
        if channel.is_thread:
            data = {
                "id": str(channel.id),
                "guild_id": str(guild.id),
                "parent_id": str(channel.parent_id),
                "type": channel.type,
            }
            self.gateway.dispatch("THREAD_DELETE", data, guild_id=guild.id, intent=Intent.GUILDS)
        else:
            self.gateway.dispatch("CHANNEL_DELETE", channel_json(channel), guild_id=guild.id, intent=Intent.GUILDS)
        self.notify()

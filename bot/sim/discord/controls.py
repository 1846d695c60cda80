"""`Controls`: what a test can do to the simulated Discord that no bot request does — change permissions, roles
and the boost tier, archive, lock or delete threads, expire CDN URLs, hold or fail requests, drop sockets.
"""

from __future__ import annotations

import asyncio

from .app import Stall
from .gateway import Intent
from .mutations import StateChanges
from .payloads import guild_update_json, member_json, role_json
from .ratelimit import Fault
from .state import Overwrite, SimGuild, SimMember

__all__ = ["Controls"]


class Controls(StateChanges):
    """Test controls (see the module docstring). Each one dispatches the gateway event Discord would send."""

    def set_premium_tier(self, guild_id: int, tier: int) -> None:
        """Change the boost tier (and so the upload limit); dispatches GUILD_UPDATE."""
        guild = self.guild_by_id[guild_id]
        guild.premium_tier = tier
        self.gateway.dispatch("GUILD_UPDATE", guild_update_json(guild), guild_id=guild_id, intent=Intent.GUILDS)
        self.notify()

    def _set_overwrite(self, channel_id: int, target_id: int, kind: int, allow: int | None, deny: int | None) -> None:
        _, channel = self.locate_channel(channel_id)
        target = self.channels[channel.parent_id] if channel.is_thread and channel.parent_id else channel
        if allow is None and deny is None:
            target.overwrites.pop(target_id, None)
        else:
            target.overwrites[target_id] = Overwrite(target_id, kind, allow or 0, deny or 0)
        self.channel_updated(target)

    def set_bot_permissions(self, channel_id: int, allow: int | None = None, deny: int | None = None) -> None:
        """Set (or with both None remove) the bot's member overwrite on a channel (a thread's parent)."""
        self._set_overwrite(channel_id, self.bot_user.id, 1, allow, deny)

    def set_member_permissions(
        self, channel_id: int, user_id: int, allow: int | None = None, deny: int | None = None
    ) -> None:
        """Set (or remove) a member overwrite on a channel."""
        self._set_overwrite(channel_id, user_id, 1, allow, deny)

    def set_role_permissions(self, guild_id: int, role_id: int, permissions: int) -> None:
        """Change a role's guild-wide permissions (role id == guild id is @everyone); dispatches the update."""
        guild = self.guild_by_id[guild_id]
        guild.roles[role_id].permissions = permissions
        self.gateway.dispatch(
            "GUILD_ROLE_UPDATE",
            {"guild_id": str(guild_id), "role": role_json(guild.roles[role_id])},
            guild_id=guild_id,
            intent=Intent.GUILDS,
        )
        self.notify()

    def _member_updated(self, guild: SimGuild, member: SimMember) -> None:
        data = member_json(member) | {"guild_id": str(guild.id)}
        self.gateway.dispatch("GUILD_MEMBER_UPDATE", data, guild_id=guild.id, intent=Intent.GUILD_MEMBERS)
        self.notify()

    def give_role(self, user_id: int, role_id: int, guild_id: int | None = None) -> None:
        """Add a role to a member (e.g. the moderator role)."""
        guild = self.guild_by_id[guild_id] if guild_id else self.guild
        member = guild.members[user_id]
        if role_id not in member.roles:
            member.roles.append(role_id)
        self._member_updated(guild, member)

    def take_role(self, user_id: int, role_id: int, guild_id: int | None = None) -> None:
        """Remove a role from a member."""
        guild = self.guild_by_id[guild_id] if guild_id else self.guild
        member = guild.members[user_id]
        if role_id in member.roles:
            member.roles.remove(role_id)
        self._member_updated(guild, member)

    def archive_thread(self, thread_id: int) -> None:
        """Archive a thread (as auto-archive would); dispatches THREAD_UPDATE."""
        _, thread = self.locate_channel(thread_id)
        thread.archived = True
        thread.archive_timestamp = self.now()
        self.thread_updated(thread)

    def lock_thread(self, thread_id: int, locked: bool = True) -> None:
        """Lock (or unlock) a thread; dispatches THREAD_UPDATE."""
        _, thread = self.locate_channel(thread_id)
        thread.locked = locked
        self.thread_updated(thread)

    def inject_fault(
        self,
        method: str,
        route: str,
        status: int,
        *,
        count: int = 1,
        retry_after: float = 0.5,
        global_: bool = False,
        code: int | None = None,
        via: bool = True,
    ) -> None:
        """Fail the next `count` requests matching method ("*" for any) and route (template such as
        "/channels/{channel_id}/messages", or a literal path) with `status`: 429 (bucket, or global with
        `global_`), 5xx, 403, 413, … `via=False` sends a 429 without `Via` (discord.py then gives up)."""
        self.ratelimiter.faults.append(
            Fault(method.upper() if method != "*" else "*", route, status, count, retry_after, global_, code, via)
        )

    def stall(self, method: str, route: str, seconds: float, *, count: int = 1) -> None:
        """Hold the next `count` requests matching method ("*" for any) and route (template or literal path, as
        for `inject_fault`) for `seconds` before answering, so the client's own timeout fires first. Combine with
        `inject_fault` for a slow failure."""
        self.stalls.append(Stall(method.upper() if method != "*" else "*", route, seconds, count))

    def expire_attachment_urls(self, attachment_id: int | None = None) -> None:
        """Make every CDN URL issued so far stop working ("a month later"), or only those of one attachment.

        The attachments themselves stay: `POST /attachments/refresh-urls`, or fetching the message again, gives
        working URLs while the message exists. URLs signed after this call work as usual."""
        self.cdn.revoke(attachment_id)
        self.notify()

    def disconnect_clients(self, code: int = 4000) -> asyncio.Task[None]:
        """Close every gateway socket (sessions are kept, so the client RESUMEs). Returns the closing task;
        awaiting it is optional."""
        task = asyncio.get_running_loop().create_task(self.gateway.disconnect_all(code))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

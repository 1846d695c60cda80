"""`Invocations`: what a member does in the Discord client — run a slash command, type into an autocomplete
option, click a button, pick from a select menu, submit a modal.

Each builds the INTERACTION_CREATE payload (driver.py) and dispatches it to the gateway shard that carries the
guild, then returns an `InteractionHandle` that follows the bot's answer.
"""

from __future__ import annotations

import logging
from typing import Any

from .driver import (
    build_autocomplete_interaction,
    build_command_interaction,
    build_component_interaction,
    build_modal_interaction,
)
from .handle import InteractionHandle, SimError
from .mutations import StateChanges
from .state import AttachmentSpec

__all__ = ["Invocations"]

log = logging.getLogger(__name__)


class Invocations(StateChanges):
    """The driver API (see the module docstring)."""

    def _dispatch_interaction(self, handle: InteractionHandle) -> InteractionHandle:
        handle.created_at = self.now()
        self.interactions[handle.id] = handle
        self.interactions_by_token[handle.token] = handle
        if not any(s.conn is not None for s in self.gateway.sessions.values()):
            log.warning("interaction %s dispatched with no gateway client connected", handle.id)
        self.gateway.dispatch("INTERACTION_CREATE", handle.payload, guild_id=handle.guild_id)
        self.notify()
        return handle

    async def invoke_command(
        self,
        name: str,
        *,
        user_id: int,
        channel_id: int,
        options: dict[str, Any] | None = None,
        attachments: dict[str, AttachmentSpec] | None = None,
        subcommand: str | None = None,
    ) -> InteractionHandle:
        """A member runs `/name` (optionally `/name subcommand` or `/name group subcommand`).

        Option types come from the synced schema; raises SimError where the Discord client would refuse."""
        handle = build_command_interaction(
            self,
            name,
            user_id=user_id,
            channel_id=channel_id,
            options=options,
            attachments=attachments,
            subcommand=subcommand,
        )
        return self._dispatch_interaction(handle)

    async def autocomplete(
        self,
        name: str,
        *,
        user_id: int,
        channel_id: int,
        focused: str,
        value: str,
        options: dict[str, Any] | None = None,
        subcommand: str | None = None,
    ) -> InteractionHandle:
        """A member types `value` into the option `focused` of `/name` (with `options` already filled in); the
        client asks the bot for suggestions. `await handle.wait_choices()` returns what the bot answered."""
        handle = build_autocomplete_interaction(
            self,
            name,
            user_id=user_id,
            channel_id=channel_id,
            focused=focused,
            value=value,
            options=options,
            subcommand=subcommand,
        )
        return self._dispatch_interaction(handle)

    async def click_button(self, message_id: int, custom_id: str, *, user_id: int) -> InteractionHandle:
        """A member clicks a button on a message (ephemeral messages included)."""
        msg = self.message(message_id, include_ephemeral=True)
        if msg is None:
            raise SimError(f"message {message_id} does not exist")
        return self._dispatch_interaction(
            build_component_interaction(self, msg, custom_id, user_id=user_id, values=None)
        )

    async def select_option(
        self, message_id: int, custom_id: str, values: list[str], *, user_id: int
    ) -> InteractionHandle:
        """A member picks values in a select menu."""
        msg = self.message(message_id, include_ephemeral=True)
        if msg is None:
            raise SimError(f"message {message_id} does not exist")
        return self._dispatch_interaction(
            build_component_interaction(self, msg, custom_id, user_id=user_id, values=values)
        )

    async def submit_modal(
        self, custom_id: str, values: dict[str, Any], *, user_id: int, channel_id: int | None = None
    ) -> InteractionHandle:
        """A member submits the modal most recently shown to them with this custom_id."""
        handle = build_modal_interaction(self, custom_id, values, user_id=user_id, channel_id=channel_id)
        return self._dispatch_interaction(handle)

"""`InteractionHandle`: one interaction a member started, followed from dispatch through the bot's responses.

Tests get a handle from every driver action (`invoke_command`, `click_button`, `autocomplete`, …) and wait on it
for what the member would see: the reply, the followups, the modal, or the autocomplete suggestions.
"""

from __future__ import annotations

import base64
import secrets
from typing import TYPE_CHECKING, Any

from .payloads import user_json
from .state import SimMessage

if TYPE_CHECKING:
    from .core import SimCore

__all__ = ["InteractionHandle", "InteractionType", "SimError"]


class SimError(Exception):
    """A driver action that the Discord client itself would refuse (unsynced command, bad option, …)."""


class InteractionType:
    """Interaction types."""

    APPLICATION_COMMAND = 2
    MESSAGE_COMPONENT = 3
    AUTOCOMPLETE = 4
    MODAL_SUBMIT = 5


class InteractionHandle:
    """One interaction as the simulator sees it, from dispatch through the bot's responses."""

    def __init__(
        self,
        sim: SimCore,
        *,
        id: int,
        type: int,
        user_id: int,
        channel_id: int,
        guild_id: int | None,
        name: str,
        attachment_size_limit: int,
        source_message_id: int | None = None,
    ) -> None:
        self.sim = sim
        self.id = id
        self.type = type
        self.token = "aW50ZXJhY3Rpb246" + base64.urlsafe_b64encode(secrets.token_bytes(48)).decode().rstrip("=")
        self.user_id = user_id
        self.channel_id = channel_id
        self.guild_id = guild_id
        self.name = name
        self.attachment_size_limit = attachment_size_limit
        self.source_message_id = source_message_id
        self.created_at = sim.now()
        self.payload: dict[str, Any] = {}
        self.response_type: int | None = None
        self.acknowledged_at: float | None = None
        self.callback_ephemeral = False  # the initial response was private
        self.original_message_id: int | None = None
        self.original_edits = 0
        self.first_edit_at: float | None = None  # when the original response was first edited (a deferral's answer)
        self.followup_ids: list[int] = []
        self.modal: dict[str, Any] | None = None
        self.trigger: InteractionHandle | None = None  # for a modal submit: the interaction that showed it
        # autocomplete: the option being typed into, its type, and the suggestions the bot answered with
        self.focused_option: str | None = None
        self.focused_type: int | None = None
        self.autocomplete_choices: list[dict[str, Any]] | None = None

    def __repr__(self) -> str:
        return f"<InteractionHandle id={self.id} name={self.name!r} response_type={self.response_type}>"

    def metadata(self) -> dict[str, Any]:
        """The `interaction_metadata` Discord attaches to messages this interaction created."""
        user = self.sim.users.get(self.user_id)
        meta: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "user": user_json(user) if user else {"id": str(self.user_id)},
            "authorizing_integration_owners": {"0": str(self.guild_id)} if self.guild_id else {},
        }
        if self.type == InteractionType.APPLICATION_COMMAND:
            meta["name"] = self.name
        if self.original_message_id is not None:
            meta["original_response_message_id"] = str(self.original_message_id)
        if self.type == InteractionType.MESSAGE_COMPONENT and self.source_message_id is not None:
            meta["interacted_message_id"] = str(self.source_message_id)
        if self.type == InteractionType.MODAL_SUBMIT:
            trigger = (
                self.trigger.metadata()
                if self.trigger
                else {
                    "id": str(self.id),
                    "type": InteractionType.APPLICATION_COMMAND,
                    "user": meta["user"],
                    "authorizing_integration_owners": meta["authorizing_integration_owners"],
                }
            )
            meta["triggering_interaction_metadata"] = trigger
        return meta

    @property
    def response(self) -> SimMessage | None:
        """The original response message, if any."""
        if self.original_message_id is None:
            return None
        return self.sim.message(self.original_message_id, include_ephemeral=True)

    def original_edited(self) -> None:
        self.original_edits += 1
        if self.first_edit_at is None:
            self.first_edit_at = self.sim.now()

    @property
    def shown_at(self) -> float | None:
        """When the member saw the answer itself: the reply, or the deferred message's first edit."""
        return self.first_edit_at if self.response_type in (5, 6) else self.acknowledged_at

    @property
    def withdrawn(self) -> bool:
        """The bot deferred in public, then deleted its "thinking…" message (to answer privately instead)."""
        return self.response_type in (5, 6) and self.original_message_id is not None and self.response is None

    @property
    def ephemeral(self) -> bool:
        """Whether the member's answer is private: the initial response was, or a public deferral was withdrawn
        and a private followup came in its place."""
        if self.withdrawn:
            return any(m.ephemeral for m in self.followups)
        return self.callback_ephemeral

    @property
    def followups(self) -> list[SimMessage]:
        """Messages sent through the followup endpoint (still existing ones)."""
        found = (self.sim.message(m, include_ephemeral=True) for m in self.followup_ids)
        return [m for m in found if m is not None]

    async def wait_ack(self, timeout: float = 5.0) -> int:  # noqa: ASYNC109
        """Wait until the bot acknowledged the interaction; returns the callback type."""
        await self.sim.wait_for(lambda: self.response_type is not None, timeout=timeout)
        assert self.response_type is not None
        return self.response_type

    async def wait_response(self, timeout: float = 5.0) -> SimMessage:  # noqa: ASYNC109
        """The answer the member sees: the reply (type 4), the updated message (7), or after a defer (5, 6) the
        message once the bot first edited it, or the first followup when the bot withdrew its deferral. Raises
        SimError for a modal or autocomplete response."""

        def answer() -> SimMessage | None:
            if self.response_type in (4, 7):
                return self.response
            if self.response_type in (5, 6):
                if self.withdrawn:
                    return next(iter(self.followups), None)
                return self.response if self.original_edits > 0 else None
            return None

        await self.sim.wait_for(lambda: answer() is not None or self.response_type in (8, 9), timeout=timeout)
        if self.response_type in (8, 9):
            raise SimError(f"the bot answered with callback type {self.response_type}, not a message")
        msg = answer()
        assert msg is not None
        return msg

    async def wait_choices(self, timeout: float = 5.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
        """The suggestions the bot answered an autocomplete interaction with (callback type 8), as Discord
        stores them: `{"name", "value"[, "name_localizations"]}`. Raises SimError for any other answer."""
        await self.sim.wait_for(lambda: self.response_type is not None, timeout=timeout)
        if self.response_type != 8 or self.autocomplete_choices is None:
            raise SimError(f"the bot answered with callback type {self.response_type}, not autocomplete choices")
        return list(self.autocomplete_choices)

    async def wait_followups(self, n: int, timeout: float = 5.0) -> list[SimMessage]:  # noqa: ASYNC109
        """Wait until at least `n` followup messages exist; returns them oldest first."""
        await self.sim.wait_for(lambda: len(self.followups) >= n, timeout=timeout)
        return self.followups

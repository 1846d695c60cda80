"""Interaction REST: the callback, `@original` and followups on the interaction-token webhook.

Rules enforced: the first callback must arrive within `interaction_deadline` (3 s) → else 404/10062; a second
callback → 400/40060; the token works for `token_lifetime` (15 min) → else 401/50027. An autocomplete interaction
takes only suggestions (type 8: at most 25 choices, names of 1–100 characters, values of the option's type), so it
cannot be deferred or answered with a message. After a type-5 defer the first followup edits the loading message
instead of creating one (Discord's documented behaviour).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .handle import InteractionHandle, InteractionType
from .http_util import empty_response, json_response, read_body, sim_of
from .messages import (
    SETTABLE_FLAGS,
    apply_edit,
    build_attachments,
    compute_mentions,
    form_error,
    number_components,
    validate_message,
)
from .payloads import message_json
from .state import ApiError, SimMessage

if TYPE_CHECKING:
    from .server import DiscordSimulator

__all__ = ["ROUTES"]

_TRUE = ("1", "true", "True")
MAX_CHOICES = 25
MAX_CHOICE_NAME = 100  # also the longest string value ("up to 100 characters if string")
MAX_INT = 2**53 - 1


def _unknown_interaction() -> ApiError:
    return ApiError(404, 10062, "Unknown interaction")


def _new_interaction_message(
    sim: DiscordSimulator,
    h: InteractionHandle,
    data: dict[str, Any],
    uploads: list[Any],
    *,
    channel_id: int,
    flags: int,
    followup: bool,
) -> SimMessage:
    guild, _ = sim.locate_channel(channel_id)
    content = data.get("content") or ""
    allowed = data.get("allowed_mentions")
    users, roles, everyone = compute_mentions(guild, content, allowed)
    is_command = h.type == InteractionType.APPLICATION_COMMAND
    msg = SimMessage(
        id=sim.new_id(),
        channel_id=channel_id,
        author_id=sim.bot_user.id,
        content=content,
        embeds=list(data.get("embeds") or []),
        components=number_components(data.get("components") or []),
        flags=flags,
        allowed_mentions=allowed,
        mentioned_user_ids=users,
        mentioned_role_ids=roles,
        mention_everyone=everyone,
        created_at=sim.now(),
        # Slash-command replies are CHAT_INPUT_COMMAND (20); followups and component replies are DEFAULT (0).
        type=20 if is_command and not followup else 0,
        guild_id=guild.id,
        webhook_id=sim.application_id,
        application_id=sim.application_id,
        interaction_id=h.id,
        interaction_user_id=h.user_id,
        interaction_name=h.name if is_command else None,
        interaction_type=h.type,
        interaction_metadata=h.metadata(),
        tts=bool(data.get("tts")),
    )
    msg.attachments = build_attachments(sim, channel_id, data, uploads)
    return msg


async def callback(request: web.Request) -> web.StreamResponse:
    """POST /interactions/{interaction_id}/{interaction_token}/callback"""
    sim = sim_of(request)
    h = sim.interactions_by_token.get(request.match_info["interaction_token"])
    if h is None or str(h.id) != request.match_info["interaction_id"]:
        raise _unknown_interaction()
    if h.response_type is not None:
        raise ApiError(400, 40060, "Interaction has already been acknowledged.")
    if sim.now() - h.created_at > sim.interaction_deadline:
        raise _unknown_interaction()
    parsed = await read_body(request, size_limit=h.attachment_size_limit)
    body = parsed.obj
    rtype = body.get("type")
    data = body.get("data") or {}
    if not isinstance(data, dict):
        raise ApiError(400, 50035, "Invalid Form Body")
    if h.type == InteractionType.AUTOCOMPLETE and rtype != 8:
        # Suggestions are the only answer: no message, no defer (Discord: "In type: Value must be one of {8}.").
        raise form_error("type", "BASE_TYPE_CHOICES", "Value must be one of {8}.")
    is_component = h.type == InteractionType.MESSAGE_COMPONENT or (
        h.type == InteractionType.MODAL_SUBMIT and h.source_message_id is not None
    )
    message: SimMessage | None = None
    if rtype == 4:
        validate_message(data, parsed.uploads, creating=True)
        flags = int(data.get("flags") or 0) & SETTABLE_FLAGS
        message = _new_interaction_message(
            sim, h, data, parsed.uploads, channel_id=h.channel_id, flags=flags, followup=False
        )
        h.original_message_id = message.id
    elif rtype == 5:
        flags = (int(data.get("flags") or 0) & (SimMessage.EPHEMERAL)) | SimMessage.LOADING
        message = _new_interaction_message(sim, h, {}, [], channel_id=h.channel_id, flags=flags, followup=False)
        h.original_message_id = message.id
    elif rtype in (6, 7) and is_component:
        h.original_message_id = h.source_message_id
        if rtype == 7:
            source = sim.message(h.source_message_id or 0, include_ephemeral=True)
            if source is None:
                raise ApiError(404, 10008, "Unknown Message")
            apply_edit(sim, source, data, parsed.uploads)
            sim.message_updated(source)
            h.original_edited()
    elif rtype == 8 and h.type == InteractionType.AUTOCOMPLETE:
        if "data" not in body:
            raise form_error("data", "BASE_TYPE_REQUIRED", "This field is required")
        h.autocomplete_choices = _checked_choices(data.get("choices"), h.focused_type or 3)
    elif rtype == 9 and h.type != InteractionType.MODAL_SUBMIT:
        if not data.get("custom_id") or not data.get("title") or not data.get("components"):
            raise ApiError(400, 50035, "Invalid Form Body")
        h.modal = data
    else:
        raise ApiError(
            400,
            50035,
            "Invalid Form Body",
            {"type": {"_errors": [{"code": 50035, "message": "Invalid interaction response type"}]}},
        )
    h.response_type = int(rtype)
    h.acknowledged_at = sim.now()
    if message is not None:
        h.callback_ephemeral = message.ephemeral
        sim.add_message(message)
    sim.notify()
    if request.query.get("with_response") not in _TRUE:
        return empty_response()
    info: dict[str, Any] = {"id": str(h.id), "type": h.type}
    body_out: dict[str, Any] = {"interaction": info}
    if h.response_type in (4, 5, 7) and h.original_message_id is not None:
        original = sim.message(h.original_message_id, include_ephemeral=True)
        info["response_message_id"] = str(h.original_message_id)
        info["response_message_loading"] = h.response_type == 5
        info["response_message_ephemeral"] = bool(original and original.ephemeral)
        # The document describes a `resource` only for messages sent or updated (4, 7) and activities (12).
        if h.response_type in (4, 7) and original is not None:
            body_out["resource"] = {"type": h.response_type, "message": message_json(sim, original)}
    return json_response(body_out)


def _checked_choices(choices: Any, option_type: int) -> list[dict[str, Any]]:
    """Autocomplete suggestions as Discord accepts them: at most 25, each a name of 1–100 characters and a value
    of the focused option's type (a string of at most 100 characters, an integer, or a number)."""
    if choices is None:
        return []
    if not isinstance(choices, list):
        raise form_error("data.choices", "BASE_TYPE_ARRAY", "Must be an array.")
    if len(choices) > MAX_CHOICES:
        raise form_error("data.choices", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer in length.")
    for i, choice in enumerate(choices):
        where = f"data.choices.{i}"
        if not isinstance(choice, dict):
            raise form_error(where, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        name = choice.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_CHOICE_NAME:
            raise form_error(f"{where}.name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        for locale, text in (choice.get("name_localizations") or {}).items():
            if not isinstance(text, str) or not 1 <= len(text) <= MAX_CHOICE_NAME:
                raise form_error(
                    f"{where}.name_localizations.{locale}",
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
        if "value" not in choice:
            raise form_error(f"{where}.value", "BASE_TYPE_REQUIRED", "This field is required")
        value = choice["value"]
        if option_type == 3:
            if not isinstance(value, str):
                raise form_error(f"{where}.value", "STRING_TYPE_CONVERT", "Could not interpret value as string.")
            if len(value) > MAX_CHOICE_NAME:
                raise form_error(f"{where}.value", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        elif option_type == 4 and (isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_INT):
            raise form_error(f"{where}.value", "NUMBER_TYPE_COERCE", f"Value {json.dumps(value)} is not int.")
        elif option_type == 10 and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise form_error(f"{where}.value", "NUMBER_TYPE_COERCE", f"Value {json.dumps(value)} is not a number.")
    return [dict(c) for c in choices]


def _handle_for_webhook(request: web.Request) -> InteractionHandle:
    sim = sim_of(request)
    if request.match_info["webhook_id"] != str(sim.application_id):
        raise ApiError(404, 10015, "Unknown Webhook")
    h = sim.interactions_by_token.get(request.match_info["webhook_token"])
    if h is None or sim.now() - h.created_at > sim.token_lifetime:
        raise ApiError(401, 50027, "Invalid Webhook Token")
    return h


def _owned_message(request: web.Request, h: InteractionHandle) -> SimMessage:
    sim = sim_of(request)
    raw = request.match_info["message_id"]
    if raw == "@original":
        mid = h.original_message_id
    else:
        try:
            mid = int(raw)
        except ValueError as exc:
            raise ApiError(404, 10008, "Unknown Message") from exc
        if mid not in h.followup_ids and mid != h.original_message_id:
            mid = None
    msg = sim.message(mid, include_ephemeral=True) if mid is not None else None
    if msg is None:
        raise ApiError(404, 10008, "Unknown Message")
    return msg


async def get_webhook_message(request: web.Request) -> web.StreamResponse:
    """GET /webhooks/{webhook_id}/{webhook_token}/messages/{message_id} (incl. @original)"""
    h = _handle_for_webhook(request)
    return json_response(message_json(sim_of(request), _owned_message(request, h)))


async def edit_webhook_message(request: web.Request) -> web.StreamResponse:
    """PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id} (incl. @original)"""
    sim = sim_of(request)
    h = _handle_for_webhook(request)
    msg = _owned_message(request, h)
    parsed = await read_body(request, size_limit=h.attachment_size_limit)
    apply_edit(sim, msg, parsed.obj, parsed.uploads)
    if msg.id == h.original_message_id:
        h.original_edited()
    sim.message_updated(msg)
    return json_response(message_json(sim, msg))


async def delete_webhook_message(request: web.Request) -> web.StreamResponse:
    """DELETE /webhooks/{webhook_id}/{webhook_token}/messages/{message_id} (incl. @original)"""
    sim = sim_of(request)
    h = _handle_for_webhook(request)
    sim.delete_message(_owned_message(request, h))
    return empty_response()


async def execute_webhook(request: web.Request) -> web.StreamResponse:
    """POST /webhooks/{webhook_id}/{webhook_token}: an interaction followup."""
    sim = sim_of(request)
    h = _handle_for_webhook(request)
    if h.response_type is None:
        raise ApiError(404, 10015, "Unknown Webhook")
    parsed = await read_body(request, size_limit=h.attachment_size_limit)
    data = parsed.obj
    validate_message(data, parsed.uploads, creating=True)
    original = sim.message(h.original_message_id, include_ephemeral=True) if h.original_message_id else None
    if h.response_type == 5 and original is not None and original.loading:
        apply_edit(sim, original, data, parsed.uploads)
        h.original_edited()
        h.followup_ids.append(original.id)
        sim.message_updated(original)
        msg = original
    else:
        channel_id = h.channel_id
        thread_id = request.query.get("thread_id")
        if thread_id is not None:
            target = sim.channels.get(int(thread_id)) if thread_id.isdigit() else None
            if target is None or target.parent_id != h.channel_id:
                raise ApiError(400, 50035, "Invalid Form Body")
            channel_id = target.id
        flags = int(data.get("flags") or 0) & SETTABLE_FLAGS
        msg = _new_interaction_message(sim, h, data, parsed.uploads, channel_id=channel_id, flags=flags, followup=True)
        h.followup_ids.append(msg.id)
        sim.add_message(msg)
    if request.query.get("wait") not in _TRUE:
        return empty_response()
    return json_response(message_json(sim, msg))


ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/interactions/{interaction_id}/{interaction_token}/callback", callback),
    ("POST", "/webhooks/{webhook_id}/{webhook_token}", execute_webhook),
    ("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", get_webhook_message),
    ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", edit_webhook_message),
    ("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", delete_webhook_message),
]

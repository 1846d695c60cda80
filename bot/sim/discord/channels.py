"""Channel REST (bot token): channels, messages, threads, thread membership.

Permission checks follow Discord: VIEW_CHANNEL (else 403/50001), SEND_MESSAGES — or SEND_MESSAGES_IN_THREADS in
a thread — and ATTACH_FILES for files (else 403/50013), CREATE_PUBLIC_THREADS for threads. A message into an
archived, unlocked thread unarchives it; a locked thread needs MANAGE_THREADS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .http_util import ParsedBody, empty_response, json_response, read_body, sim_of
from .messages import (
    SETTABLE_FLAGS,
    apply_edit,
    build_attachments,
    compute_mentions,
    form_error,
    number_components,
    validate_message,
)
from .payloads import channel_json, message_json, thread_json
from .permissions import channel_permissions
from .state import ApiError, ChannelType, Perm, SimChannel, SimGuild, SimMessage

if TYPE_CHECKING:
    from .server import DiscordSimulator

__all__ = ["ROUTES", "post_message"]

NONCE_WINDOW = 300.0  # "checked for uniqueness in the past few minutes"
ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)


def _channel(request: web.Request, key: str = "channel_id") -> tuple[SimGuild, SimChannel]:
    sim = sim_of(request)
    try:
        cid = int(request.match_info[key])
    except ValueError as exc:
        raise ApiError(404, 10003, "Unknown Channel") from exc
    return sim.locate_channel(cid)  # 404/10003 for an unknown id too


def _bot_perms(sim: DiscordSimulator, guild: SimGuild, channel: SimChannel) -> int:
    perms = channel_permissions(guild, channel, sim.bot_user.id)
    if not perms & Perm.VIEW_CHANNEL:
        raise ApiError(403, 50001, "Missing Access")
    return perms


def _require(perms: int, bit: int) -> None:
    if not perms & bit:
        raise ApiError(403, 50013, "Missing Permissions")


def _message_in(sim: DiscordSimulator, channel: SimChannel, raw: str) -> SimMessage:
    try:
        mid = int(raw)
    except ValueError as exc:
        raise ApiError(404, 10008, "Unknown Message") from exc
    msg = sim.message(mid)
    if msg is None or msg.channel_id != channel.id:
        raise ApiError(404, 10008, "Unknown Message")
    return msg


def _check_postable(channel: SimChannel, perms: int) -> None:
    """Can the bot post into this channel or thread right now?"""
    if channel.type == ChannelType.GUILD_FORUM:
        raise ApiError(400, 50008, "Cannot send messages in a non-text channel")
    if channel.is_thread:
        _require(perms, Perm.SEND_MESSAGES_IN_THREADS)
        if channel.locked and not perms & Perm.MANAGE_THREADS:
            if channel.archived:
                raise ApiError(400, 50083, "Thread is archived")
            raise ApiError(403, 160005, "Thread is locked")
    else:
        _require(perms, Perm.SEND_MESSAGES)


def post_message(
    sim: DiscordSimulator,
    guild: SimGuild,
    channel: SimChannel,
    body: dict[str, Any],
    parsed: ParsedBody,
    perms: int,
) -> SimMessage:
    """Create a bot message (after the caller's permission checks); handles nonce dedup and replies."""
    validate_message(body, parsed.uploads, creating=True)
    if parsed.uploads:
        _require(perms, Perm.ATTACH_FILES)
    nonce = body.get("nonce")
    if nonce is not None and body.get("enforce_nonce"):
        seen = sim.nonces.get((sim.bot_user.id, str(nonce)))
        if seen is not None and sim.now() - seen[0] <= NONCE_WINDOW:
            original = sim.message(seen[1])
            if original is not None:
                sim.nonce_hits += 1
                return original
    reply_author: int | None = None
    reference = body.get("message_reference")
    if isinstance(reference, dict) and reference.get("message_id"):
        ref_msg = sim.message(int(reference["message_id"]))
        if ref_msg is None:
            if reference.get("fail_if_not_exists", True):
                raise form_error("message_reference", "REPLIES_UNKNOWN_MESSAGE", "Unknown message")
            reference = None
        else:
            reply_author = ref_msg.author_id
            reference = {
                "type": 0,
                "message_id": str(ref_msg.id),
                "channel_id": str(ref_msg.channel_id),
                "guild_id": str(guild.id),
            }
    else:
        reference = None
    content = body.get("content") or ""
    allowed = body.get("allowed_mentions")
    users, roles, everyone = compute_mentions(guild, content, allowed, reply_author)
    if everyone and not perms & Perm.MENTION_EVERYONE:
        everyone = False
    msg = SimMessage(
        id=sim.new_id(),
        channel_id=channel.id,
        author_id=sim.bot_user.id,
        content=content,
        embeds=list(body.get("embeds") or []),
        components=number_components(body.get("components") or []),
        nonce=nonce,
        flags=int(body.get("flags") or 0) & SETTABLE_FLAGS & ~SimMessage.EPHEMERAL,
        allowed_mentions=allowed,
        mentioned_user_ids=users,
        mentioned_role_ids=roles,
        mention_everyone=everyone,
        created_at=sim.now(),
        type=19 if reference else 0,
        guild_id=guild.id,
        tts=bool(body.get("tts")),
        message_reference=reference,
    )
    msg.attachments = build_attachments(sim, channel.id, body, parsed.uploads)
    if nonce is not None and body.get("enforce_nonce"):
        sim.nonces[(sim.bot_user.id, str(nonce))] = (sim.now(), msg.id)
    sim.add_message(msg)
    return msg


async def create_message(request: web.Request) -> web.StreamResponse:
    """POST /channels/{channel_id}/messages"""
    sim = sim_of(request)
    guild, channel = _channel(request)
    perms = _bot_perms(sim, guild, channel)
    _check_postable(channel, perms)
    parsed = await read_body(request, size_limit=guild.filesize_limit)
    msg = post_message(sim, guild, channel, parsed.obj, parsed, perms)
    return json_response(message_json(sim, msg))


async def get_channel(request: web.Request) -> web.StreamResponse:
    """GET /channels/{channel_id}"""
    sim = sim_of(request)
    guild, channel = _channel(request)
    _bot_perms(sim, guild, channel)
    if channel.is_thread:
        return json_response(thread_json(channel, me_id=sim.bot_user.id))
    return json_response(channel_json(channel))


async def edit_channel(request: web.Request) -> web.StreamResponse:
    """PATCH /channels/{channel_id}: thread name/archived/locked/auto_archive_duration, channel name/topic."""
    sim = sim_of(request)
    guild, channel = _channel(request)
    perms = _bot_perms(sim, guild, channel)
    body = (await read_body(request)).obj
    if channel.is_thread:
        manage = bool(perms & Perm.MANAGE_THREADS)
        if "locked" in body and bool(body["locked"]) != channel.locked and not manage:
            raise ApiError(403, 50013, "Missing Permissions")
        if channel.locked and not manage:
            raise ApiError(403, 50013, "Missing Permissions")
        if "name" in body:
            name = str(body["name"] or "")
            if not 1 <= len(name) <= 100:
                raise form_error("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
            if channel.owner_id != sim.bot_user.id and not manage:
                raise ApiError(403, 50013, "Missing Permissions")
            channel.name = name
        if "auto_archive_duration" in body:
            if body["auto_archive_duration"] not in ARCHIVE_DURATIONS:
                raise form_error(
                    "auto_archive_duration", "BASE_TYPE_CHOICES", "Value must be one of (60, 1440, 4320, 10080)."
                )
            channel.auto_archive_duration = int(body["auto_archive_duration"])
        if "archived" in body:
            channel.archived = bool(body["archived"])
            channel.archive_timestamp = sim.now()
        if "locked" in body:
            channel.locked = bool(body["locked"])
        sim.thread_updated(channel)
        return json_response(thread_json(channel, me_id=sim.bot_user.id))
    _require(perms, Perm.MANAGE_CHANNELS)
    if "name" in body:
        channel.name = str(body["name"])
    if "topic" in body:
        channel.topic = body["topic"]
    sim.channel_updated(channel)
    return json_response(channel_json(channel))


async def delete_channel(request: web.Request) -> web.StreamResponse:
    """DELETE /channels/{channel_id}"""
    sim = sim_of(request)
    guild, channel = _channel(request)
    perms = _bot_perms(sim, guild, channel)
    _require(perms, Perm.MANAGE_THREADS if channel.is_thread else Perm.MANAGE_CHANNELS)
    data = thread_json(channel) if channel.is_thread else channel_json(channel)
    sim.delete_channel(channel.id)
    return json_response(data)


async def list_messages(request: web.Request) -> web.StreamResponse:
    """GET /channels/{channel_id}/messages?limit=&before=&after=&around= (newest first)"""
    sim = sim_of(request)
    guild, channel = _channel(request)
    perms = _bot_perms(sim, guild, channel)
    if not perms & Perm.READ_MESSAGE_HISTORY:
        return json_response([])
    try:
        limit = int(request.query.get("limit", "50"))
        before = int(request.query["before"]) if "before" in request.query else None
        after = int(request.query["after"]) if "after" in request.query else None
        around = int(request.query["around"]) if "around" in request.query else None
    except ValueError as exc:
        raise form_error("limit", "NUMBER_TYPE_COERCE", "Value is not int.") from exc
    if not 1 <= limit <= 100:
        raise form_error("limit", "NUMBER_TYPE_MAX", "int value should be between 1 and 100.")
    msgs = sim.messages(channel.id)  # oldest first
    if around is not None:
        older = [m for m in msgs if m.id <= around][-((limit + 1) // 2) :]
        newer = [m for m in msgs if m.id > around][: limit - len(older)]
        picked = older + newer
    elif after is not None:
        picked = [m for m in msgs if m.id > after][:limit]
    else:
        picked = [m for m in msgs if before is None or m.id < before][-limit:]
    return json_response([message_json(sim, m) for m in reversed(picked)])


async def get_message(request: web.Request) -> web.StreamResponse:
    """GET /channels/{channel_id}/messages/{message_id}"""
    sim = sim_of(request)
    guild, channel = _channel(request)
    perms = _bot_perms(sim, guild, channel)
    _require(perms, Perm.READ_MESSAGE_HISTORY)
    return json_response(message_json(sim, _message_in(sim, channel, request.match_info["message_id"])))


async def edit_message(request: web.Request) -> web.StreamResponse:
    """PATCH /channels/{channel_id}/messages/{message_id} (own messages; others only flags)"""
    sim = sim_of(request)
    guild, channel = _channel(request)
    _bot_perms(sim, guild, channel)
    msg = _message_in(sim, channel, request.match_info["message_id"])
    parsed = await read_body(request, size_limit=guild.filesize_limit)
    body = parsed.obj
    if msg.author_id != sim.bot_user.id and (set(body) - {"flags"} or parsed.uploads):
        raise ApiError(403, 50005, "Cannot edit a message authored by another user")
    apply_edit(sim, msg, body, parsed.uploads)
    sim.message_updated(msg)
    return json_response(message_json(sim, msg))


async def delete_message(request: web.Request) -> web.StreamResponse:
    """DELETE /channels/{channel_id}/messages/{message_id}"""
    sim = sim_of(request)
    guild, channel = _channel(request)
    perms = _bot_perms(sim, guild, channel)
    msg = _message_in(sim, channel, request.match_info["message_id"])
    if msg.author_id != sim.bot_user.id:
        _require(perms, Perm.MANAGE_MESSAGES)
    sim.delete_message(msg)
    return empty_response()


def _thread_settings(body: dict[str, Any]) -> tuple[str, int]:
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise form_error("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    duration = body.get("auto_archive_duration") or 4320
    if duration not in ARCHIVE_DURATIONS:
        raise form_error("auto_archive_duration", "BASE_TYPE_CHOICES", "Value must be one of (60, 1440, 4320, 10080).")
    return name, int(duration)


async def thread_from_message(request: web.Request) -> web.StreamResponse:
    """POST /channels/{channel_id}/messages/{message_id}/threads → 201 thread with id == message id."""
    sim = sim_of(request)
    guild, channel = _channel(request)
    perms = _bot_perms(sim, guild, channel)
    if channel.type not in (ChannelType.GUILD_TEXT, ChannelType.GUILD_ANNOUNCEMENT):
        raise ApiError(400, 50024, "Cannot execute action on this channel type")
    msg = _message_in(sim, channel, request.match_info["message_id"])
    _require(perms, Perm.CREATE_PUBLIC_THREADS)
    name, duration = _thread_settings((await read_body(request)).obj)
    if msg.thread_id is not None or msg.id in sim.channels:
        raise ApiError(400, 160004, "A thread has already been created for this message")
    thread_type = (
        ChannelType.ANNOUNCEMENT_THREAD if channel.type == ChannelType.GUILD_ANNOUNCEMENT else ChannelType.PUBLIC_THREAD
    )
    thread = sim.create_thread(
        guild, channel, thread_id=msg.id, name=name, type=thread_type, auto_archive_duration=duration, message_id=msg.id
    )
    msg.thread_id = thread.id
    sim.message_updated(msg)
    return json_response(thread_json(thread, me_id=sim.bot_user.id), status=201)


async def thread_without_message(request: web.Request) -> web.StreamResponse:
    """POST /channels/{channel_id}/threads: a thread in a text channel, or a post (with message) in a forum."""
    sim = sim_of(request)
    guild, channel = _channel(request)
    perms = _bot_perms(sim, guild, channel)
    if channel.type == ChannelType.GUILD_FORUM:
        _require(perms, Perm.SEND_MESSAGES)
        parsed = await read_body(request, size_limit=guild.filesize_limit)
        body = parsed.obj
        name, duration = _thread_settings(body)
        message_body = body.get("message")
        if not isinstance(message_body, dict):
            raise form_error("message", "BASE_TYPE_REQUIRED", "This field is required")
        validate_message(message_body, parsed.uploads, creating=True)
        if parsed.uploads:
            _require(perms, Perm.ATTACH_FILES)
        thread_id = sim.new_id()
        thread = sim.create_thread(
            guild,
            channel,
            thread_id=thread_id,
            name=name,
            type=ChannelType.PUBLIC_THREAD,
            auto_archive_duration=duration,
            message_id=thread_id,
            applied_tags=[int(t) for t in body.get("applied_tags") or []],
        )
        # The starter message has the thread's id, as on Discord.
        starter = SimMessage(
            id=thread_id,
            channel_id=thread.id,
            author_id=sim.bot_user.id,
            content=message_body.get("content") or "",
            embeds=list(message_body.get("embeds") or []),
            components=number_components(message_body.get("components") or []),
            created_at=sim.now(),
            guild_id=guild.id,
            allowed_mentions=message_body.get("allowed_mentions"),
        )
        starter.attachments = build_attachments(sim, thread.id, message_body, parsed.uploads)
        sim.add_message(starter)
        data = thread_json(thread, me_id=sim.bot_user.id)
        data["message"] = message_json(sim, starter)
        return json_response(data, status=201)
    if channel.type not in (ChannelType.GUILD_TEXT, ChannelType.GUILD_ANNOUNCEMENT):
        raise ApiError(400, 50024, "Cannot execute action on this channel type")
    body = (await read_body(request)).obj
    name, duration = _thread_settings(body)
    thread_type = int(body.get("type") or ChannelType.PRIVATE_THREAD)
    if thread_type not in (ChannelType.PUBLIC_THREAD, ChannelType.PRIVATE_THREAD, ChannelType.ANNOUNCEMENT_THREAD):
        raise form_error("type", "BASE_TYPE_CHOICES", "Value must be one of (10, 11, 12).")
    _require(
        perms, Perm.CREATE_PRIVATE_THREADS if thread_type == ChannelType.PRIVATE_THREAD else Perm.CREATE_PUBLIC_THREADS
    )
    thread = sim.create_thread(
        guild,
        channel,
        thread_id=sim.new_id(),
        name=name,
        type=thread_type,
        auto_archive_duration=duration,
        message_id=None,
    )
    thread.invitable = bool(body.get("invitable", True))
    return json_response(thread_json(thread, me_id=sim.bot_user.id), status=201)


async def join_thread(request: web.Request) -> web.StreamResponse:
    """PUT /channels/{channel_id}/thread-members/@me"""
    sim = sim_of(request)
    guild, channel = _channel(request)
    _bot_perms(sim, guild, channel)
    if not channel.is_thread:
        raise ApiError(400, 50024, "Cannot execute action on this channel type")
    channel.member_ids.add(sim.bot_user.id)
    return empty_response()


async def leave_thread(request: web.Request) -> web.StreamResponse:
    """DELETE /channels/{channel_id}/thread-members/@me"""
    sim = sim_of(request)
    _, channel = _channel(request)
    if not channel.is_thread:
        raise ApiError(400, 50024, "Cannot execute action on this channel type")
    channel.member_ids.discard(sim.bot_user.id)
    return empty_response()


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/channels/{channel_id}", get_channel),
    ("PATCH", "/channels/{channel_id}", edit_channel),
    ("DELETE", "/channels/{channel_id}", delete_channel),
    ("GET", "/channels/{channel_id}/messages", list_messages),
    ("POST", "/channels/{channel_id}/messages", create_message),
    ("GET", "/channels/{channel_id}/messages/{message_id}", get_message),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}", edit_message),
    ("DELETE", "/channels/{channel_id}/messages/{message_id}", delete_message),
    ("POST", "/channels/{channel_id}/messages/{message_id}/threads", thread_from_message),
    ("POST", "/channels/{channel_id}/threads", thread_without_message),
    ("PUT", "/channels/{channel_id}/thread-members/@me", join_thread),
    ("DELETE", "/channels/{channel_id}/thread-members/@me", leave_thread),
]

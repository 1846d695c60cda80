"""Message rules shared by channel posts and interaction responses: validation, attachments, mentions, edits."""

from __future__ import annotations

import copy
import re
import struct
from typing import TYPE_CHECKING, Any

from .http_util import Upload, guess_content_type
from .state import ApiError, SimAttachment, SimGuild, SimMessage

if TYPE_CHECKING:
    from .server import DiscordSimulator

__all__ = [
    "MAX_CONTENT",
    "MAX_EMBEDS",
    "MAX_FILES",
    "apply_edit",
    "build_attachments",
    "compute_mentions",
    "form_error",
    "number_components",
    "validate_message",
]

MAX_CONTENT = 2000
MAX_FILES = 10
MAX_EMBEDS = 10
MAX_NONCE = 25
# Flags a sender may set on a message: SUPPRESS_EMBEDS, EPHEMERAL (interactions only), SUPPRESS_NOTIFICATIONS,
# IS_COMPONENTS_V2.
SETTABLE_FLAGS = (1 << 2) | (1 << 6) | (1 << 12) | (1 << 15)

_USER_MENTION = re.compile(r"<@!?(\d{15,21})>")
_ROLE_MENTION = re.compile(r"<@&(\d{15,21})>")


def form_error(field: str, code: str, message: str) -> ApiError:
    """400/50035 Invalid Form Body with Discord's nested `errors` object; a dotted `field` such as
    `data.choices.0.name` nests one level per part, as Discord does.

    Discord writes a symbolic code (`code`, e.g. BASE_TYPE_MAX_LENGTH) into each field error, but the OpenAPI
    document types `Error.code` as an integer; the simulator follows the document and puts the symbol into the
    message so discord.py's flattened error text still names it."""
    errors: dict[str, Any] = {}
    node = errors
    *parents, leaf = field.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = {"_errors": [{"code": 50035, "message": f"{message} ({code})"}]}
    return ApiError(400, 50035, "Invalid Form Body", errors)


def validate_message(body: dict[str, Any], uploads: list[Upload], *, creating: bool) -> None:
    """Discord's limits: 2000 characters, 10 embeds, 10 files, a 25-character nonce, no empty message."""
    content = body.get("content")
    if content is not None and not isinstance(content, str):
        raise form_error("content", "STRING_TYPE_CONVERT", "Could not interpret value as string.")
    if content is not None and len(content) > MAX_CONTENT:
        raise form_error("content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length.")
    embeds = body.get("embeds") or []
    if not isinstance(embeds, list) or len(embeds) > MAX_EMBEDS:
        raise form_error("embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")
    if len(uploads) > MAX_FILES:
        raise form_error("attachments", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FILES} or fewer in length.")
    nonce = body.get("nonce")
    if nonce is not None and len(str(nonce)) > MAX_NONCE:
        raise form_error("nonce", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_NONCE} or fewer in length.")
    if creating and not (
        content or embeds or uploads or body.get("components") or body.get("sticker_ids") or body.get("poll")
    ):
        raise ApiError(400, 50006, "Cannot send an empty message")


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG or GIF (Discord reports them for images)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", bytes(data[16:24]))
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", bytes(data[6:10]))
        return int(width), int(height)
    return None


def build_attachments(
    sim: DiscordSimulator, channel_id: int, body: dict[str, Any], uploads: list[Upload]
) -> list[SimAttachment]:
    """Turn uploaded parts into stored attachments, honouring `attachments[].filename/description`."""
    meta: dict[str, dict[str, Any]] = {}
    for entry in body.get("attachments") or []:
        if isinstance(entry, dict) and "id" in entry:
            meta[str(entry["id"])] = entry
    out: list[SimAttachment] = []
    for up in uploads:
        info = meta.get(str(up.index), {})
        filename = str(info.get("filename") or up.filename)
        att = SimAttachment(
            id=sim.new_id(),
            filename=filename,
            size=up.size,
            content_type=guess_content_type(filename) or up.content_type,
            content=up.path,
            channel_id=channel_id,
            description=info.get("description"),
        )
        dims = _image_size(att.head(24))
        if dims is not None:
            att.width, att.height = dims
        sim.attachments[att.id] = att
        out.append(att)
    return out


def compute_mentions(
    guild: SimGuild | None,
    content: str,
    allowed: dict[str, Any] | None,
    reply_author_id: int | None = None,
) -> tuple[list[int], list[int], bool]:
    """Users, roles and @everyone that Discord would actually ping, given `allowed_mentions`.

    Without `allowed_mentions` every mention in the content pings (and a reply pings its author).
    """
    if allowed is None:
        parse = {"users", "roles", "everyone"}
        allowed_users: set[int] = set()
        allowed_roles: set[int] = set()
        replied_user = True
    else:
        parse = {str(p) for p in allowed.get("parse") or []}
        allowed_users = {int(u) for u in allowed.get("users") or []}
        allowed_roles = {int(r) for r in allowed.get("roles") or []}
        replied_user = bool(allowed.get("replied_user", False))
    users: list[int] = []
    for raw in _USER_MENTION.findall(content):
        uid = int(raw)
        if ("users" in parse or uid in allowed_users) and uid not in users:
            users.append(uid)
    if reply_author_id is not None and replied_user and reply_author_id not in users:
        users.append(reply_author_id)
    roles: list[int] = []
    for raw in _ROLE_MENTION.findall(content):
        rid = int(raw)
        if guild is not None and rid not in guild.roles:
            continue
        if ("roles" in parse or rid in allowed_roles) and rid not in roles:
            roles.append(rid)
    everyone = ("@everyone" in content or "@here" in content) and "everyone" in parse
    return users, roles, everyone


def number_components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every component a numeric `id` (depth-first from 1) where the sender left it out, as Discord does."""
    used: set[int] = set()

    def collect(items: list[Any]) -> None:
        for item in items:
            if isinstance(item, dict):
                if isinstance(item.get("id"), int):
                    used.add(item["id"])
                for key in ("components", "accessory", "component", "items"):
                    child = item.get(key)
                    collect(child if isinstance(child, list) else [child])

    counter = 0

    def assign(items: list[Any]) -> None:
        nonlocal counter
        for item in items:
            if not isinstance(item, dict):
                continue
            if not isinstance(item.get("id"), int):
                counter += 1
                while counter in used:
                    counter += 1
                item["id"] = counter
            for key in ("components", "accessory", "component"):
                child = item.get(key)
                assign(child if isinstance(child, list) else [child])

    out = copy.deepcopy(components)  # never alias the caller's payload
    collect(out)
    assign(out)
    return out


def apply_edit(sim: DiscordSimulator, msg: SimMessage, body: dict[str, Any], uploads: list[Upload]) -> None:
    """Apply a PATCH body: content, embeds, components, flags, and the attachment list semantics.

    If `attachments` is given, existing attachments not listed are removed; new uploads are appended.
    Mentions are resolved against the guild of the message's channel (404/10003 if the channel is gone).
    """
    guild, _ = sim.locate_channel(msg.channel_id)
    validate_message(body, uploads, creating=False)
    content = (body.get("content") or "") if "content" in body else msg.content
    embeds = list(body.get("embeds") or []) if "embeds" in body else msg.embeds
    components = number_components(body.get("components") or []) if "components" in body else msg.components
    kept = msg.attachments
    if "attachments" in body:
        keep = {str(a.get("id")) for a in body.get("attachments") or [] if isinstance(a, dict)}
        kept = [a for a in msg.attachments if str(a.id) in keep]
    # Check before changing anything, so a rejected edit leaves the message as it was.
    if not (content or embeds or kept or uploads or components):
        raise ApiError(400, 50006, "Cannot send an empty message")
    for gone in msg.attachments:
        if gone not in kept:
            sim.drop_attachment(gone)
    msg.content, msg.embeds, msg.components = content, embeds, components
    msg.attachments = kept + build_attachments(sim, msg.channel_id, body, uploads)
    if "allowed_mentions" in body:
        msg.allowed_mentions = body["allowed_mentions"]
    if "flags" in body and body["flags"] is not None:
        # Only SUPPRESS_EMBEDS can be toggled by an edit; EPHEMERAL and the rest are fixed at creation.
        msg.flags = (msg.flags & ~(1 << 2)) | (int(body["flags"]) & (1 << 2))
    users, roles, everyone = compute_mentions(guild, msg.content, msg.allowed_mentions)
    msg.mentioned_user_ids, msg.mentioned_role_ids, msg.mention_everyone = users, roles, everyone
    msg.flags &= ~SimMessage.LOADING
    msg.edited_at = sim.now()

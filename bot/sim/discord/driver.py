"""The test driver: what a member does in the Discord client (run a slash command, type into an autocomplete
option, click, submit a modal).

Each action builds the INTERACTION_CREATE payload Discord would send (options typed from the *synced* command
schema, `resolved` users/members/roles/channels/attachments, permissions, `attachment_size_limit`), dispatches it
over the gateway and returns an `InteractionHandle` that follows the bot's response.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .handle import InteractionHandle, InteractionType, SimError
from .payloads import attachment_json, channel_json, member_json, message_json, role_json, user_json
from .permissions import base_permissions, channel_permissions
from .state import ALL_PERMISSIONS, AttachmentSpec, Perm, SimAttachment, SimChannel, SimGuild, SimMessage

if TYPE_CHECKING:
    from .core import SimCore

__all__ = [
    "build_autocomplete_interaction",
    "build_command_interaction",
    "build_component_interaction",
    "build_modal_interaction",
]


def _new_handle(
    sim: SimCore,
    kind: int,
    guild: SimGuild,
    channel: SimChannel,
    *,
    user_id: int,
    name: str,
    source: int | None = None,
) -> InteractionHandle:
    """A fresh handle for an interaction by `user_id` in `channel`, sized to the guild's upload limit."""
    return InteractionHandle(
        sim,
        id=sim.new_id(),
        type=kind,
        user_id=user_id,
        channel_id=channel.id,
        guild_id=guild.id,
        name=name,
        attachment_size_limit=guild.filesize_limit,
        source_message_id=source,
    )


def _member_and_perms(guild: SimGuild, channel: SimChannel, user_id: int) -> dict[str, Any]:
    member = guild.members.get(user_id)
    if member is None:
        raise SimError(f"user {user_id} is not a member of guild {guild.id}")
    return member_json(member, permissions=channel_permissions(guild, channel, user_id))


def _channel_payload(guild: SimGuild, channel: SimChannel, user_id: int) -> dict[str, Any]:
    data = channel_json(channel)
    data["permissions"] = str(channel_permissions(guild, channel, user_id))
    return data


def _base_payload(sim: SimCore, handle: InteractionHandle, guild: SimGuild, channel: SimChannel) -> dict[str, Any]:
    return {
        "id": str(handle.id),
        "application_id": str(sim.application_id),
        "type": handle.type,
        "token": handle.token,
        "version": 1,
        "guild_id": str(guild.id),
        "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
        "channel_id": str(channel.id),
        "channel": _channel_payload(guild, channel, handle.user_id),
        "member": _member_and_perms(guild, channel, handle.user_id),
        "app_permissions": str(channel_permissions(guild, channel, sim.bot_user.id)),
        "entitlements": [],
        "authorizing_integration_owners": {"0": str(guild.id)},
        "context": 0,
        "locale": "en-US",
        "guild_locale": "en-US",
        "attachment_size_limit": handle.attachment_size_limit,
    }


def _find_command(sim: SimCore, name: str, guild_id: int) -> tuple[dict[str, Any], bool]:
    for cmd in sim.guild_commands.get(guild_id, []):
        if cmd["name"] == name and cmd.get("type", 1) == 1:
            return cmd, True
    for cmd in sim.global_commands:
        if cmd["name"] == name and cmd.get("type", 1) == 1:
            return cmd, False
    raise SimError(f"/{name} is not synced (for guild {guild_id} or globally); the client would not offer it")


def _resolve_value(
    sim: SimCore,
    guild: SimGuild,
    opt: dict[str, Any],
    value: Any,
    resolved: dict[str, dict[str, Any]],
    user_id: int,
) -> Any:
    otype = opt["type"]
    name = opt["name"]
    if otype == 3:
        return str(value)
    if otype == 4:
        return int(value)
    if otype == 10:
        return float(value)
    if otype == 5:
        return bool(value)
    if otype in (6, 9) and int(value) in sim.users:
        uid = int(value)
        resolved.setdefault("users", {})[str(uid)] = user_json(sim.users[uid])
        member = guild.members.get(uid)
        if member is not None:
            perms = base_permissions(guild, uid)
            resolved.setdefault("members", {})[str(uid)] = member_json(member, with_user=False, permissions=perms)
        return str(uid)
    if otype in (8, 9) and int(value) in guild.roles:
        rid = int(value)
        resolved.setdefault("roles", {})[str(rid)] = role_json(guild.roles[rid])
        return str(rid)
    if otype == 7 and int(value) in guild.channels:
        ch = guild.channels[int(value)]
        data = {
            "id": str(ch.id),
            "name": ch.name,
            "type": ch.type,
            "permissions": str(channel_permissions(guild, ch, user_id)),
        }
        if ch.parent_id:
            data["parent_id"] = str(ch.parent_id)
        if ch.is_thread:
            data["thread_metadata"] = {
                "archived": ch.archived,
                "locked": ch.locked,
                "auto_archive_duration": ch.auto_archive_duration,
                "archive_timestamp": channel_json(ch)["thread_metadata"]["archive_timestamp"],
            }
        resolved.setdefault("channels", {})[str(ch.id)] = data
        return str(ch.id)
    raise SimError(f"option {name!r} (type {otype}) got {value!r}, which does not resolve in this guild")


def _build_options(
    sim: SimCore,
    guild: SimGuild,
    channel: SimChannel,
    schema: list[dict[str, Any]],
    values: dict[str, Any],
    attachments: dict[str, AttachmentSpec],
    resolved: dict[str, dict[str, Any]],
    user_id: int,
) -> list[dict[str, Any]]:
    known = {o["name"]: o for o in schema}
    for name in list(values) + list(attachments):
        if name not in known:
            raise SimError(f"unknown option {name!r}; the command has {sorted(known)}")
    out: list[dict[str, Any]] = []
    for opt in schema:
        name = opt["name"]
        if name in attachments:
            if opt["type"] != 11:
                raise SimError(f"option {name!r} is not an attachment option")
            spec = attachments[name]
            att = SimAttachment(
                id=sim.new_id(),
                filename=spec.filename,
                size=spec.size if spec.size is not None else len(spec.data),
                content_type=spec.content_type,
                content=spec.data,
                channel_id=channel.id,
                width=spec.width,
                height=spec.height,
                description=spec.description,
                ephemeral=True,
            )
            sim.attachments[att.id] = att
            resolved.setdefault("attachments", {})[str(att.id)] = attachment_json(sim, att)
            out.append({"name": name, "type": 11, "value": str(att.id)})
        elif name in values:
            value = _resolve_value(sim, guild, opt, values[name], resolved, user_id)
            out.append({"name": name, "type": opt["type"], "value": value})
        elif opt.get("required"):
            raise SimError(f"required option {name!r} is missing")
    return out


def _usable_command(
    sim: SimCore, name: str, user_id: int, channel_id: int
) -> tuple[SimGuild, SimChannel, dict[str, Any], bool]:
    """The guild, channel and synced command a member may run there (SimError where the client would not
    offer the command); the flag says whether it is a guild command."""
    guild, channel = sim.locate_channel(channel_id)
    command, is_guild_command = _find_command(sim, name, guild.id)
    needed = command.get("default_member_permissions")
    if needed not in (None, ""):
        needed_bits = int(needed)
        have = base_permissions(guild, user_id)
        if have != ALL_PERMISSIONS and (needed_bits == 0 or have & needed_bits != needed_bits):
            raise SimError(f"member {user_id} may not use /{name} (needs permissions {needed_bits})")
    if not channel_permissions(guild, channel, user_id) & Perm.USE_APPLICATION_COMMANDS:
        raise SimError(f"member {user_id} cannot use application commands in channel {channel_id}")
    return guild, channel, command, is_guild_command


def _descend(
    name: str, command: dict[str, Any], subcommand: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The option schema of `/name subcommand` and the (empty) subcommand wrappers to nest the options in."""
    schema: list[dict[str, Any]] = command.get("options") or []
    wrappers: list[dict[str, Any]] = []
    for part in subcommand.split() if subcommand else []:
        sub = next((o for o in schema if o["name"] == part and o["type"] in (1, 2)), None)
        if sub is None:
            raise SimError(f"/{name} has no subcommand or group {part!r}")
        wrappers.append({"name": part, "type": sub["type"]})
        schema = sub.get("options") or []
    return schema, wrappers


def _command_data(
    guild: SimGuild,
    command: dict[str, Any],
    is_guild_command: bool,
    wrappers: list[dict[str, Any]],
    leaf: list[dict[str, Any]],
) -> dict[str, Any]:
    """The interaction's `data`: the command's id and name with the options nested under the subcommands."""
    for wrapper in reversed(wrappers):
        wrapper["options"] = leaf
        leaf = [wrapper]
    data: dict[str, Any] = {"id": str(command["id"]), "name": command["name"], "type": 1}
    if is_guild_command:
        data["guild_id"] = str(guild.id)
    if leaf:
        data["options"] = leaf
    return data


def build_command_interaction(
    sim: SimCore,
    name: str,
    *,
    user_id: int,
    channel_id: int,
    options: dict[str, Any] | None,
    attachments: dict[str, AttachmentSpec] | None,
    subcommand: str | None,
) -> InteractionHandle:
    """Build (not dispatch) a CHAT_INPUT interaction for a synced command."""
    guild, channel, command, is_guild_command = _usable_command(sim, name, user_id, channel_id)
    handle = _new_handle(
        sim,
        InteractionType.APPLICATION_COMMAND,
        guild,
        channel,
        user_id=user_id,
        name=name if subcommand is None else f"{name} {subcommand}",
    )
    schema, wrappers = _descend(name, command, subcommand)
    resolved: dict[str, dict[str, Any]] = {}
    leaf = _build_options(sim, guild, channel, schema, options or {}, attachments or {}, resolved, user_id)
    data = _command_data(guild, command, is_guild_command, wrappers, leaf)
    if resolved:
        data["resolved"] = resolved
    handle.payload = _base_payload(sim, handle, guild, channel) | {"data": data}
    return handle


def build_autocomplete_interaction(
    sim: SimCore,
    name: str,
    *,
    user_id: int,
    channel_id: int,
    focused: str,
    value: str,
    options: dict[str, Any] | None,
    subcommand: str | None,
) -> InteractionHandle:
    """Build an APPLICATION_COMMAND_AUTOCOMPLETE (type 4) interaction: the member is typing `value` into the
    option `focused` of `/name`, with `options` already filled in.

    As Discord sends it: the focused option carries `"focused": true` and the partial text as typed (a string,
    whatever the option type; a number option only once the text parses as a number, since the client validates
    that); the other filled options carry their values; required options may be missing; there is no `resolved`.
    The client only asks for options synced with `"autocomplete": true`."""
    guild, channel, command, is_guild_command = _usable_command(sim, name, user_id, channel_id)
    schema, wrappers = _descend(name, command, subcommand)
    known = {o["name"]: o for o in schema}
    spec = known.get(focused)
    if spec is None or not spec.get("autocomplete"):
        raise SimError(f"option {focused!r} of /{name} is not synced with autocomplete; the client would not ask")
    if spec["type"] in (4, 10) and value != "":
        try:
            float(value)
        except ValueError as exc:
            raise SimError(f"{value!r} is not a number; the client would not send it for {focused!r}") from exc
    filled = dict(options or {})
    filled.pop(focused, None)
    for other in filled:
        if other not in known:
            raise SimError(f"unknown option {other!r}; the command has {sorted(known)}")
    leaf: list[dict[str, Any]] = []
    for opt in schema:
        if opt["name"] == focused:
            leaf.append({"name": focused, "type": opt["type"], "value": str(value), "focused": True})
        elif opt["name"] in filled:
            typed = _resolve_value(sim, guild, opt, filled[opt["name"]], {}, user_id)
            leaf.append({"name": opt["name"], "type": opt["type"], "value": typed})
    handle = _new_handle(
        sim,
        InteractionType.AUTOCOMPLETE,
        guild,
        channel,
        user_id=user_id,
        name=name if subcommand is None else f"{name} {subcommand}",
    )
    handle.focused_option = focused
    handle.focused_type = int(spec["type"])
    data = _command_data(guild, command, is_guild_command, wrappers, leaf)
    handle.payload = _base_payload(sim, handle, guild, channel) | {"data": data}
    return handle


def _find_component(components: list[dict[str, Any]], custom_id: str) -> dict[str, Any] | None:
    for comp in components:
        if comp.get("custom_id") == custom_id:
            return comp
        for key in ("components", "accessory", "component"):
            child = comp.get(key)
            children = child if isinstance(child, list) else [child] if isinstance(child, dict) else []
            found = _find_component(children, custom_id)
            if found is not None:
                return found
    return None


def build_component_interaction(
    sim: SimCore, message: SimMessage, custom_id: str, *, user_id: int, values: list[str] | None
) -> InteractionHandle:
    """Build a MESSAGE_COMPONENT interaction (button click or select) on a message."""
    component = _find_component(message.components, custom_id)
    if component is None:
        raise SimError(f"message {message.id} has no component with custom_id {custom_id!r}")
    if component.get("disabled"):
        raise SimError(f"component {custom_id!r} is disabled")
    guild, channel = sim.locate_channel(message.channel_id)
    handle = _new_handle(
        sim, InteractionType.MESSAGE_COMPONENT, guild, channel, user_id=user_id, name=custom_id, source=message.id
    )
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": int(component.get("type", 2))}
    if component.get("type", 2) != 2:
        data["values"] = [str(v) for v in values or []]
    handle.payload = _base_payload(sim, handle, guild, channel) | {
        "data": data,
        "message": message_json(sim, message),
    }
    return handle


def _modal_answer(component: dict[str, Any], values: dict[str, Any]) -> dict[str, Any] | None:
    ctype = component.get("type")
    if ctype == 1:
        inner = [a for c in component.get("components") or [] if (a := _modal_answer(c, values)) is not None]
        return {"type": 1, "components": inner}
    if ctype == 18:
        inner_answer = _modal_answer(component.get("component") or {}, values)
        if inner_answer is None:
            return None
        out = {"type": 18, "component": inner_answer}
        if "id" in component:
            out["id"] = component["id"]
        return out
    custom_id = component.get("custom_id")
    if custom_id is None:
        return None
    value = values.get(custom_id, component.get("value", ""))
    if ctype == 4:
        return {"type": 4, "custom_id": custom_id, "value": str(value)}
    listed = value if isinstance(value, list) else [value] if value not in ("", None) else []
    return {"type": ctype, "custom_id": custom_id, "values": [str(v) for v in listed]}


def build_modal_interaction(
    sim: SimCore,
    custom_id: str,
    values: dict[str, Any],
    *,
    user_id: int,
    channel_id: int | None,
) -> InteractionHandle:
    """Build a MODAL_SUBMIT for the most recent modal with this custom_id shown to that member."""
    shown = next(
        (
            h
            for h in reversed(list(sim.interactions.values()))
            if h.modal is not None and h.modal.get("custom_id") == custom_id and h.user_id == user_id
        ),
        None,
    )
    if shown is None and channel_id is None:
        raise SimError(f"no modal {custom_id!r} was shown to user {user_id}; pass channel_id to submit anyway")
    target_channel = channel_id if channel_id is not None else shown.channel_id if shown else 0
    guild, channel = sim.locate_channel(target_channel)
    handle = _new_handle(
        sim,
        InteractionType.MODAL_SUBMIT,
        guild,
        channel,
        user_id=user_id,
        name=custom_id,
        source=shown.source_message_id if shown else None,
    )
    handle.trigger = shown
    if shown is not None and shown.modal is not None:
        layout = shown.modal.get("components") or []
        components = [a for c in layout if (a := _modal_answer(c, values)) is not None]
    else:
        components = [
            {"type": 1, "components": [{"type": 4, "custom_id": k, "value": str(v)}]} for k, v in values.items()
        ]
    handle.payload = _base_payload(sim, handle, guild, channel) | {
        "data": {"custom_id": custom_id, "components": components}
    }
    if handle.source_message_id is not None:
        source = sim.message(handle.source_message_id, include_ephemeral=True)
        if source is not None:
            handle.payload["message"] = message_json(sim, source)
    return handle

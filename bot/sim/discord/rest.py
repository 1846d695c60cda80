"""Core REST: login, application info, gateway discovery, application commands, guild lookups, refresh-urls."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .cdn import refresh_urls
from .http_util import empty_response, json_response, read_body, sim_of
from .payloads import channel_json, guild_json, member_json, user_json
from .state import ApiError

if TYPE_CHECKING:
    from .server import DiscordSimulator

__all__ = ["ROUTES"]

_NAME = re.compile(r"^[-_'\w]{1,32}$")
MAX_CHAT_COMMANDS = 100
SESSION_STARTS_PER_DAY = 1000


async def get_me(request: web.Request) -> web.StreamResponse:
    """GET /users/@me"""
    sim = sim_of(request)
    data = user_json(sim.bot_user) | {
        "mfa_enabled": False,
        "locale": "en-US",
        "verified": True,
        "email": None,
        "premium_type": 0,
    }
    return json_response(data)


async def get_application(request: web.Request) -> web.StreamResponse:
    """GET /oauth2/applications/@me (also /applications/@me)"""
    sim = sim_of(request)
    owner = sim.guild.owner_id if sim.guilds else sim.bot_user.id
    owner_user = sim.users.get(owner, sim.bot_user)
    return json_response(
        {
            "id": str(sim.application_id),
            "name": sim.bot_user.global_name or sim.bot_user.username,
            "icon": None,
            "description": "Simulated application",
            "type": None,
            "bot": user_json(sim.bot_user),
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "flags_new": "0",
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "owner": user_json(owner_user),
            "approximate_guild_count": len(sim.guilds),
            "approximate_user_install_count": 0,
            "approximate_user_authorization_count": 0,
            "explicit_content_filter": 0,
            "team": None,
            "eligible_oauth2_scopes": ["bot", "applications.commands"],
            "tags": [],
            "summary": "",
            "hook": True,
            "install_params": {"scopes": ["bot", "applications.commands"], "permissions": "0"},
            "integration_types_config": {"0": {}},
        }
    )


async def get_gateway(request: web.Request) -> web.StreamResponse:
    """GET /gateway"""
    return json_response({"url": sim_of(request).gateway_url})


async def get_gateway_bot(request: web.Request) -> web.StreamResponse:
    """GET /gateway/bot: the gateway URL, the recommended shard count and the session start limits."""
    sim = sim_of(request)
    hub = sim.gateway
    return json_response(
        {
            "url": sim.gateway_url,
            "shards": hub.recommended_shards,
            "session_start_limit": {
                "total": SESSION_STARTS_PER_DAY,
                "remaining": max(SESSION_STARTS_PER_DAY - hub.identify_count, 0),
                "reset_after": 86_400_000,
                "max_concurrency": hub.max_concurrency,
            },
        }
    )


def _form(path: str, message: str) -> ApiError:
    errors: dict[str, Any] = {}
    node = errors
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = {"_errors": [{"code": 50035, "message": message}]}
    return ApiError(400, 50035, "Invalid Form Body", errors)


def _check_options(options: Any, where: str, depth: int = 0) -> None:
    if options is None:
        return
    if not isinstance(options, list) or len(options) > 25:
        raise _form(f"{where}.options", "Must be 25 or fewer in length.")
    seen_optional = False
    for i, opt in enumerate(options):
        if not isinstance(opt, dict):
            raise _form(f"{where}.options.{i}", "Must be an object.")
        name, desc = opt.get("name"), opt.get("description")
        if not isinstance(name, str) or not _NAME.match(name) or name != name.lower():
            raise _form(f"{where}.options.{i}.name", "Command name is invalid")
        if not isinstance(desc, str) or not 1 <= len(desc) <= 100:
            raise _form(f"{where}.options.{i}.description", "Must be between 1 and 100 in length.")
        otype = opt.get("type")
        if otype in (1, 2):
            if depth >= 2 or (otype == 2 and depth >= 1):
                raise _form(f"{where}.options.{i}.type", "Subcommands cannot be nested this deep.")
            _check_options(opt.get("options"), f"{where}.options.{i}", depth + 1)
            continue
        if not isinstance(otype, int) or not 3 <= otype <= 11:
            raise _form(f"{where}.options.{i}.type", "Value must be one of the option types.")
        if opt.get("required"):
            if seen_optional:
                raise _form(
                    f"{where}.options.{i}.required", "Required options must be placed before non-required options"
                )
        else:
            seen_optional = True
        if len(opt.get("choices") or []) > 25:
            raise _form(f"{where}.options.{i}.choices", "Must be 25 or fewer in length.")
        if opt.get("autocomplete"):
            # Only text and number options suggest as the member types, and never together with fixed choices.
            if otype not in (3, 4, 10):
                raise _form(f"{where}.options.{i}.autocomplete", "Autocomplete is not supported for this type.")
            if opt.get("choices"):
                raise _form(f"{where}.options.{i}.autocomplete", "Autocomplete cannot be used with choices.")


def _clean(value: Any) -> Any:
    """Drop null-valued keys the way Discord's responses omit unset option fields."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _sync(
    sim: DiscordSimulator, body: Any, existing: list[dict[str, Any]], guild_id: int | None
) -> list[dict[str, Any]]:
    if not isinstance(body, list):
        raise ApiError(400, 50035, "Invalid Form Body")
    if sum(1 for c in body if isinstance(c, dict) and c.get("type", 1) == 1) > MAX_CHAT_COMMANDS:
        raise _form("_root", f"Must be {MAX_CHAT_COMMANDS} or fewer chat input commands.")
    by_key = {(c["name"], c["type"]): c for c in existing}
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for i, cmd in enumerate(body):
        if not isinstance(cmd, dict):
            raise _form(str(i), "Must be an object.")
        ctype = int(cmd.get("type") or 1)
        name = cmd.get("name")
        if not isinstance(name, str) or not _NAME.match(name) or (ctype == 1 and name != name.lower()):
            raise _form(f"{i}.name", "Command name is invalid")
        desc = cmd.get("description") or ""
        if ctype == 1 and not 1 <= len(desc) <= 100:
            raise _form(f"{i}.description", "Must be between 1 and 100 in length.")
        if (name, ctype) in seen:
            raise _form(f"{i}.name", "Application command names must be unique")
        seen.add((name, ctype))
        _check_options(cmd.get("options"), str(i))
        old = by_key.get((name, ctype))
        stored: dict[str, Any] = {
            "id": old["id"] if old else str(sim.new_id()),
            "application_id": str(sim.application_id),
            "version": str(sim.new_id()),
            "default_member_permissions": cmd.get("default_member_permissions"),
            "type": ctype,
            "name": name,
            "description": desc,
            "dm_permission": cmd.get("dm_permission", True),
            "contexts": cmd.get("contexts"),
            "integration_types": cmd.get("integration_types") or [0],
            "nsfw": bool(cmd.get("nsfw", False)),
        }
        if cmd.get("name_localizations"):
            stored["name_localizations"] = cmd["name_localizations"]
        if cmd.get("description_localizations"):
            stored["description_localizations"] = cmd["description_localizations"]
        if cmd.get("options"):
            stored["options"] = _clean(cmd["options"])
        if guild_id is not None:
            stored["guild_id"] = str(guild_id)
        out.append(stored)
    return out


async def put_global_commands(request: web.Request) -> web.StreamResponse:
    """PUT /applications/{application_id}/commands"""
    sim = sim_of(request)
    _check_app(sim, request)
    body = (await read_body(request)).json
    sim.global_commands = _sync(sim, body, sim.global_commands, None)
    sim.sync_count += 1
    sim.notify()
    return json_response(sim.global_commands)


async def put_guild_commands(request: web.Request) -> web.StreamResponse:
    """PUT /applications/{application_id}/guilds/{guild_id}/commands"""
    sim = sim_of(request)
    _check_app(sim, request)
    guild_id = _guild_id(sim, request)
    body = (await read_body(request)).json
    sim.guild_commands[guild_id] = _sync(sim, body, sim.guild_commands.get(guild_id, []), guild_id)
    sim.sync_count += 1
    sim.notify()
    return json_response(sim.guild_commands[guild_id])


async def get_global_commands(request: web.Request) -> web.StreamResponse:
    """GET /applications/{application_id}/commands"""
    sim = sim_of(request)
    _check_app(sim, request)
    return json_response(sim.global_commands)


async def get_guild_commands(request: web.Request) -> web.StreamResponse:
    """GET /applications/{application_id}/guilds/{guild_id}/commands"""
    sim = sim_of(request)
    _check_app(sim, request)
    return json_response(sim.guild_commands.get(_guild_id(sim, request), []))


def _check_app(sim: DiscordSimulator, request: web.Request) -> None:
    if request.match_info["application_id"] != str(sim.application_id):
        raise ApiError(403, 50001, "Missing Access")


def _guild_id(sim: DiscordSimulator, request: web.Request) -> int:
    raw = request.match_info["guild_id"]
    if not raw.isdigit() or int(raw) not in sim.guild_by_id:
        raise ApiError(403, 50001, "Missing Access")
    return int(raw)


async def get_guild(request: web.Request) -> web.StreamResponse:
    """GET /guilds/{guild_id}"""
    sim = sim_of(request)
    guild = sim.guild_by_id[_guild_id(sim, request)]
    return json_response(
        guild_json(guild)
        | {
            "home_header": None,
            "region": "local",
            "system_channel_id": None,
            "widget_enabled": False,
            "widget_channel_id": None,
            "max_presences": None,
            "max_stage_video_channel_users": 50,
            "max_video_channel_users": 25,
            "safety_alerts_channel_id": None,
            "nsfw": False,
            "incidents_data": None,
        }
    )


async def get_guild_channels(request: web.Request) -> web.StreamResponse:
    """GET /guilds/{guild_id}/channels"""
    sim = sim_of(request)
    guild = sim.guild_by_id[_guild_id(sim, request)]
    return json_response([channel_json(c) for c in guild.channels.values() if not c.is_thread])


async def get_guild_member(request: web.Request) -> web.StreamResponse:
    """GET /guilds/{guild_id}/members/{user_id}"""
    sim = sim_of(request)
    guild = sim.guild_by_id[_guild_id(sim, request)]
    raw = request.match_info["user_id"]
    member = guild.members.get(int(raw)) if raw.isdigit() else None
    if member is None:
        raise ApiError(404, 10007, "Unknown Member")
    return json_response(member_json(member))


async def get_user(request: web.Request) -> web.StreamResponse:
    """GET /users/{user_id}"""
    sim = sim_of(request)
    raw = request.match_info["user_id"]
    user = sim.users.get(int(raw)) if raw.isdigit() else None
    if user is None:
        raise ApiError(404, 10013, "Unknown User")
    return json_response(user_json(user))


async def no_content(request: web.Request) -> web.StreamResponse:
    """Accepted and ignored (e.g. typing indicators)."""
    return empty_response()


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/users/@me", get_me),
    ("GET", "/users/{user_id}", get_user),
    ("GET", "/oauth2/applications/@me", get_application),
    ("GET", "/applications/@me", get_application),
    ("GET", "/gateway", get_gateway),
    ("GET", "/gateway/bot", get_gateway_bot),
    ("GET", "/applications/{application_id}/commands", get_global_commands),
    ("PUT", "/applications/{application_id}/commands", put_global_commands),
    ("GET", "/applications/{application_id}/guilds/{guild_id}/commands", get_guild_commands),
    ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", put_guild_commands),
    ("GET", "/guilds/{guild_id}", get_guild),
    ("GET", "/guilds/{guild_id}/channels", get_guild_channels),
    ("GET", "/guilds/{guild_id}/members/{user_id}", get_guild_member),
    ("POST", "/channels/{channel_id}/typing", no_content),
    ("POST", "/attachments/refresh-urls", refresh_urls),
]

"""When and where the slash commands are pushed to Discord.

Global sync is rate limited and slow to propagate, so it runs only when the command definitions changed since
the last sync (their hash is kept in the database) or when an operator forces it with `python -m bot sync`.
With `DEV_GUILD_ID` the commands go to that guild at every start instead: instant, meant for development.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import discord
from discord import app_commands

from bot.storage import Store

__all__ = ["command_hash", "sync_commands"]

log = logging.getLogger(__name__)
HASH_KEY = "command_sync_hash"


def command_hash(tree: app_commands.CommandTree[Any]) -> str:
    payload = [command.to_dict(tree) for command in tree.get_commands()]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


async def sync_commands(
    tree: app_commands.CommandTree[Any], store: Store, *, dev_guild_id: int | None, force: bool = False
) -> str:
    """Sync as the policy says; returns what happened: "guild", "global" or "unchanged"."""
    if dev_guild_id is not None:
        guild = discord.Object(dev_guild_id)
        tree.copy_global_to(guild=guild)
        await tree.sync(guild=guild)
        log.info("commands synced to development guild %s", dev_guild_id)
        return "guild"
    digest = command_hash(tree)
    if not force and await store.get_meta(HASH_KEY) == digest:
        log.info("command definitions unchanged since the last sync; not syncing")
        return "unchanged"
    await tree.sync()
    await store.set_meta(HASH_KEY, digest)
    log.info("commands synced globally")
    return "global"

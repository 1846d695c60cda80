"""Where a profiled bot process spent its CPU, in a few broad parts (from a cProfile file)."""

from __future__ import annotations

import collections
import pstats
from pathlib import Path

__all__ = ["breakdown"]

# (part, markers in the file path); the first match wins, anything else is "other Python".
_PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("database (aiosqlite, sqlite3, bot/storage)", ("aiosqlite", "sqlite3", "/bot/storage/")),
    ("discord.py", ("site-packages/discord/",)),
    ("HTTP (aiohttp, yarl, multidict)", ("site-packages/aiohttp", "site-packages/yarl", "site-packages/multidict")),
    ("event loop (asyncio, selectors)", ("/asyncio/", "selectors.py")),
    ("JSON", ("/json/",)),
    ("logging", ("/logging/", "/bot/logs.py")),
    ("traffic control (bot/traffic)", ("/bot/traffic/",)),
    ("Reelbot's other code", ("/bot/", "/cogs/")),
]
# Built-ins show up with no file; these say where they belong.
_BUILTINS: list[tuple[str, tuple[str, ...]]] = [
    ("database (aiosqlite, sqlite3, bot/storage)", ("_queue.SimpleQueue", "sqlite3")),
    ("HTTP (aiohttp, yarl, multidict)", ("_socket.socket", "_ssl")),
    ("event loop (asyncio, selectors)", ("_asyncio", "_contextvars", "select.")),
    ("JSON", ("json",)),
]
_IDLE = "<method 'poll' of 'select.epoll' objects>"


def _part(path: str, name: str) -> str:
    if path == "~":
        for part, markers in _BUILTINS:
            if any(m in name for m in markers):
                return part
        return "other Python"
    for part, markers in _PARTS:
        if any(m in path for m in markers):
            return part
    return "other Python"


def breakdown(profile: Path, top: int = 8) -> list[tuple[str, float]]:
    """The parts of the program the process spent its busy time in, largest first, as shares of that time
    (waiting in epoll for something to do is not counted)."""
    stats = pstats.Stats(str(profile))
    totals: collections.Counter[str] = collections.Counter()
    for (path, _line, name), (_cc, _nc, own, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if name != _IDLE:
            totals[_part(path, name)] += own
    busy = sum(totals.values()) or 1.0
    return [(part, seconds / busy) for part, seconds in totals.most_common(top)]

"""Boundaries from DESIGN.md, checked on the source: the core never imports discord; cogs stay thin."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _files("bot/domain", "bot/storage", "bot/provider", "bot/services"), ids=str)
def test_core_never_imports_discord(path: Path) -> None:
    assert not {m for m in _imports(path) if m == "discord" or m.startswith("discord.")}


@pytest.mark.parametrize("path", _files("bot/domain"), ids=str)
def test_domain_does_no_io(path: Path) -> None:
    forbidden = {"aiohttp", "aiosqlite", "asyncpg", "sqlite3", "asyncio", "socket", "bot.storage", "bot.provider"}
    assert not _imports(path) & forbidden


@pytest.mark.parametrize("path", _files("cogs"), ids=str)
def test_cogs_never_touch_sql_or_the_provider(path: Path) -> None:
    imported = _imports(path)
    drivers = {"aiosqlite", "asyncpg", "sqlite3", "aiohttp"}
    assert not {m for m in imported if m in drivers or m.startswith("bot.provider")}
    assert "execute(" not in path.read_text(encoding="utf-8")


def test_there_is_no_module_level_settings_instance() -> None:
    for path in _files("bot", "cogs"):
        text = path.read_text(encoding="utf-8")
        assert "\nsettings = Settings(" not in text
        assert "\nsettings = load_settings(" not in text

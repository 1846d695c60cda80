"""The boundaries of docs/architecture.md, checked on the source: the core never imports discord; cogs and the
other Discord adapters stay thin (no store, no SQL, no provider, no other cog); the repository explains itself
(no file points at design notes that live outside it)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The Discord side: slash commands (cogs/) and the pieces they share with the card buttons. They reach the job
# and quota data only through the services the bot holds.
DISCORD_ADAPTERS = ("cogs", "bot/card_buttons.py", "bot/discord_ui.py", "bot/team_buttons.py", "bot/team_commands.py")


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _files(*places: str) -> list[Path]:
    found: set[Path] = set()
    for place in places:
        path = ROOT / place
        found.update(path.rglob("*.py") if path.is_dir() else [path])
    return sorted(found)


@pytest.mark.parametrize("path", _files("bot/domain", "bot/storage", "bot/provider", "bot/services"), ids=str)
def test_core_never_imports_discord(path: Path) -> None:
    assert not {m for m in _imports(path) if m == "discord" or m.startswith("discord.")}


@pytest.mark.parametrize("path", _files("bot/domain"), ids=str)
def test_domain_does_no_io(path: Path) -> None:
    forbidden = {"aiohttp", "aiosqlite", "asyncpg", "sqlite3", "asyncio", "socket", "bot.storage", "bot.provider"}
    assert not _imports(path) & forbidden


@pytest.mark.parametrize("path", _files(*DISCORD_ADAPTERS), ids=str)
def test_discord_adapters_never_touch_sql_or_the_provider(path: Path) -> None:
    imported = _imports(path)
    drivers = {"aiosqlite", "asyncpg", "sqlite3", "aiohttp"}
    assert not {m for m in imported if m in drivers or m.startswith("bot.provider")}
    assert "execute(" not in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", _files(*DISCORD_ADAPTERS), ids=str)
def test_discord_adapters_never_touch_the_store(path: Path) -> None:
    """Reading or writing data goes through a service (`bot.intake`, `bot.card_controls`, `bot.moderators`);
    value types such as `Refused` may still be imported from bot.storage."""
    tree = _tree(path)
    store_uses = [
        node.lineno
        for node in ast.walk(tree)
        if (isinstance(node, ast.Attribute) and node.attr == "store")
        or (isinstance(node, ast.Name) and node.id == "Store")
    ]
    assert store_uses == [], f"{path.name} uses the store on lines {store_uses}"
    assert not {m for m in _imports(path) if m.startswith("bot.storage.")}  # the package's models, not its modules


@pytest.mark.parametrize("path", _files("cogs"), ids=str)
def test_no_cog_imports_or_looks_up_another_cog(path: Path) -> None:
    tree = _tree(path)
    assert not {m for m in _imports(path) if m == "cogs" or m.startswith("cogs.")}
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0]  # `from . import x`
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "get_cog"]


def test_the_card_buttons_are_the_bots_not_a_cogs() -> None:
    """The card's buttons are registered by the bot and handed to its chat adapter, so no extension can take
    them away (a card once silently lost its buttons when the cog that set them was not loaded)."""
    assert "add_dynamic_items" not in "".join(p.read_text(encoding="utf-8") for p in _files("cogs"))
    app = (ROOT / "bot/app.py").read_text(encoding="utf-8")
    assert "self.add_dynamic_items(*DYNAMIC_ITEMS)" in app
    assert "DiscordChat(self, card_view, " in app


def test_there_is_no_module_level_settings_instance() -> None:
    for path in _files("bot", "cogs"):
        text = path.read_text(encoding="utf-8")
        assert "\nsettings = Settings(" not in text
        assert "\nsettings = load_settings(" not in text


# ---------------------------------------------------------------------- the repository explains itself

# Design notes the team keeps outside the repository. A clone does not have them, so no file may send a reader
# there: what they say that matters here is restated in docs/. (Spelled in pieces so this file does not match.)
OUTSIDE_NOTES = tuple(f"{stem}.md" for stem in ("DESIGN", "AIMLAPI", "DISCORD", "CONTRACT", "USERS"))
CITATION = re.compile(r"\b(" + "|".join(re.escape(name) for name in OUTSIDE_NOTES) + r")")

_SKIPPED_DIRS = {".git", "__pycache__", "node_modules", "data", "demo-output"}


def _repository_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        if any(
            p in _SKIPPED_DIRS or p.startswith((".venv", ".mypy", ".ruff", ".pytest", ".hypothesis")) for p in parts
        ):
            continue
        if any(p.endswith(".egg-info") for p in parts) or not path.is_file():
            continue
        files.append(path)
    return files


def _cites_outside_notes(path: Path) -> list[str]:
    data = path.read_bytes()
    if b"\0" in data[:4096]:
        return []  # binary
    return sorted(set(CITATION.findall(data.decode("utf-8", errors="replace"))))


def test_no_file_points_at_design_notes_outside_the_repository() -> None:
    docs = {p.name for p in (ROOT / "docs").iterdir()}
    assert not set(OUTSIDE_NOTES) & docs  # if docs/ ever has one of these names, this test needs rethinking
    offenders = {}
    for path in _repository_files():
        relative = path.relative_to(ROOT).as_posix()
        cited = _cites_outside_notes(path)
        if cited:
            offenders[relative] = cited
    assert offenders == {}, "point these at docs/ instead"


# Every design note named in the code, the tests, the README or another note exists in docs/.
DOC_REFERENCE = re.compile(r"docs/([a-z_-]+\.md)")
MARKDOWN_LINK = re.compile(r"\]\(([a-z_-]+\.md)(?:#[^)]*)?\)")


TEST_REFERENCE = re.compile(r"\b(tests/[\w/*]+\.py)")


def test_every_test_file_the_docs_name_exists() -> None:
    named = {
        reference
        for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
        for reference in TEST_REFERENCE.findall(path.read_text(encoding="utf-8"))
    }
    assert named  # the docs do point at tests
    assert sorted(name for name in named if not list(ROOT.glob(name))) == []


SYMBOL_REFERENCE = re.compile(r"`((?:bot|cogs)/[\w/]+\.py):(\w+)(?:\.(\w+))?")


def test_every_function_or_class_the_docs_name_is_where_they_say() -> None:
    named = {
        match.groups()
        for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
        for match in SYMBOL_REFERENCE.finditer(path.read_text(encoding="utf-8"))
    }
    assert named
    missing = []
    for file, name, member in sorted(named, key=str):
        source = ROOT / file
        text = source.read_text(encoding="utf-8") if source.is_file() else ""
        defined = re.search(rf"^\s*(?:async def|def|class) {name}\b|^{name}\b\s*[:=]", text, re.MULTILINE)
        has_member = member is None or re.search(rf"^\s+(?:async def|def) {member}\b|^\s+{member}\b\s*[:=]", text, re.M)
        if not (defined and has_member):
            missing.append(f"{file}:{name}" + (f".{member}" if member else ""))
    assert missing == []


def test_every_design_note_the_code_or_the_docs_point_to_exists() -> None:
    named: dict[str, set[str]] = {}
    for path in [*_files("bot", "cogs", "tests", "bench"), ROOT / "README.md"]:
        for name in DOC_REFERENCE.findall(path.read_text(encoding="utf-8")):
            named.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())
    for path in (ROOT / "docs").glob("*.md"):
        for name in MARKDOWN_LINK.findall(path.read_text(encoding="utf-8")):
            named.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())
    missing = {name: sorted(where) for name, where in named.items() if not (ROOT / "docs" / name).is_file()}
    assert missing == {}, missing

"""`DATABASE_URL` as the store reads it, and its password kept out of everything printed: reprs, errors of an
unreachable database, and the bot's log lines."""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

import pytest

from bot.runner import _logging
from bot.settings import Settings
from bot.storage import Backend, DatabaseUrl, Store
from bot.storage.postgres import DatabaseUnavailable

SECRET = "pw-Kq93-never-shown"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket is closed


def test_sqlite_urls_and_paths() -> None:
    assert DatabaseUrl.parse("sqlite:///data/bot.db").path == Path("data/bot.db")
    assert DatabaseUrl.parse("sqlite:////var/lib/bot.db").path == Path("/var/lib/bot.db")
    url = DatabaseUrl.parse("sqlite:///data/bot.db")
    assert (url.backend, url.password, str(url)) == (Backend.SQLITE, None, "sqlite:///data/bot.db")
    with pytest.raises(ValueError, match="not a PostgreSQL"):
        _ = url.dsn


def test_postgresql_url_forms() -> None:
    url = DatabaseUrl.parse(f"postgres://bot:{SECRET}@db:5432/reelbot")
    assert url.backend is Backend.POSTGRESQL
    assert url.dsn.startswith("postgresql://")  # one spelling for the driver
    assert repr(url) == "DatabaseUrl('postgresql://bot:***@db:5432/reelbot')"
    assert DatabaseUrl.parse("postgresql://bot@db/reelbot").redacted == "postgresql://bot@db/reelbot"  # no password
    quoted = DatabaseUrl.parse("postgresql://bot:p%40ss@db/reelbot")  # '@' in a password is written %40
    assert quoted.password == "p@ss"
    assert "p%40ss" not in str(quoted)


async def test_an_unreachable_database_is_named_without_its_password() -> None:
    url = f"postgresql://bot:{SECRET}@127.0.0.1:{closed_port()}/reelbot"
    with pytest.raises(DatabaseUnavailable) as caught:
        await Store.open(url)
    assert "postgresql://bot:***@127.0.0.1" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)


def test_the_database_password_is_scrubbed_from_log_lines(logs: pytest.CaptureFixture[str]) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, discord_token="t", aiml_api_key="k", database_url=f"postgresql://bot:{SECRET}@db/reelbot"
    )
    _logging(settings)
    logging.getLogger("asyncpg").warning("could not connect with password %s", SECRET)
    logging.getLogger("bot").info("settings: %r", settings)
    print("flush", file=sys.stderr)
    err = logs.readouterr().err
    assert "[redacted]" in err
    assert "could not connect" in err
    assert SECRET not in err

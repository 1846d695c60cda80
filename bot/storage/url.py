"""`DATABASE_URL`, parsed: which backend, and where, with the password kept out of every printable form.

sqlite:///data/bot.db             a file relative to the working directory
sqlite:////var/lib/reelbot/bot.db an absolute path
postgresql://USER:PASSWORD@HOST:PORT/DBNAME   (postgres:// is accepted too)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["Backend", "DatabaseUrl"]

_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://")


class Backend(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


@dataclass(frozen=True)
class DatabaseUrl:
    """A validated database URL. `str()` and `repr()` show it with the password replaced by `***`."""

    backend: Backend
    _url: str = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> DatabaseUrl:
        """Raises ValueError with a message that never contains the URL itself (it may hold a password)."""
        text = text.strip()
        if text.startswith(_SQLITE):
            if text == _SQLITE:
                raise ValueError("must look like sqlite:///relative/path.db or sqlite:////absolute/path.db")
            return cls(Backend.SQLITE, text)
        if text.startswith(_POSTGRES):
            try:
                parts = urlsplit(text)
                parts.port  # noqa: B018 - reading it validates it (ValueError for a non-number or out of range)
            except ValueError:
                raise ValueError("has an invalid host or port") from None
            if not parts.hostname:
                raise ValueError("must name a host: postgresql://USER:PASSWORD@HOST:PORT/DBNAME")
            if not parts.path.strip("/"):
                raise ValueError("must name a database: postgresql://USER:PASSWORD@HOST:PORT/DBNAME")
            return cls(Backend.POSTGRESQL, "postgresql://" + text.split("://", 1)[1])
        raise ValueError("must start with sqlite:/// or postgresql://")

    @property
    def path(self) -> Path:
        """The SQLite file (`sqlite:///data/bot.db` → `data/bot.db`)."""
        if self.backend is not Backend.SQLITE:
            raise ValueError("a PostgreSQL DATABASE_URL names no file")
        return Path(self._url.removeprefix(_SQLITE))

    @property
    def dsn(self) -> str:
        """The full PostgreSQL URL, password included: hand it to the driver, never to a log or a message."""
        if self.backend is not Backend.POSTGRESQL:
            raise ValueError("not a PostgreSQL DATABASE_URL")
        return self._url

    @property
    def password(self) -> str | None:
        """The password in the URL, if any (so log scrubbing can hide it even where it is quoted)."""
        raw = urlsplit(self._url).password if self.backend is Backend.POSTGRESQL else None
        return unquote(raw) if raw else None

    @property
    def redacted(self) -> str:
        if self.backend is Backend.SQLITE:
            return self._url
        parts = urlsplit(self._url)
        if parts.password is None:
            return self._url
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        return parts._replace(netloc=f"{user}:***@{netloc}").geturl()

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"DatabaseUrl({self.redacted!r})"

"""Reelbot's settings, read from the environment and from `.env` in the working directory.

The names are part of the public interface (docs/operations.md, "Settings"): operators put them in `.env` files,
Docker and compose files, so they never change. There is no module-level instance: the composition root builds one and
hands it down, which keeps tests free to build their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.storage.url import Backend, DatabaseUrl

__all__ = ["Settings", "SettingsError", "load_settings", "parse_shard_ids"]


class Settings(BaseSettings):
    """Every setting of the bot (docs/operations.md lists them), validated.

    Secrets are `SecretStr` so a repr never shows them."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        case_sensitive=False,
        extra="ignore",
        hide_input_in_errors=True,  # a validation error must never echo a secret back
    )

    discord_token: SecretStr = Field(min_length=1)
    aiml_api_key: SecretStr = Field(min_length=1)
    aiml_api_base_url: AnyHttpUrl = AnyHttpUrl("https://api.aimlapi.com")
    discord_api_base_url: AnyHttpUrl = AnyHttpUrl("https://discord.com/api/v10")
    discord_gateway_url: str | None = None
    database_url: SecretStr = SecretStr("sqlite:///data/bot.db")
    """A secret because a PostgreSQL URL carries a password; read it through `database`, which redacts it."""
    media_dir: Path | None = None
    job_lease_seconds: float = Field(default=30, gt=0)
    video_model: str = Field(default="klingai/video-o1-reference-to-video", min_length=1)
    quota_default_limit: int = Field(default=5, ge=0)
    quota_window_hours: float = Field(default=24, gt=0)
    max_active_jobs_per_user: int = Field(default=2, ge=1)
    characters_per_member: int = Field(default=25, ge=0)
    shared_characters_per_server: int = Field(default=100, ge=0)
    poll_interval_seconds: float = Field(default=10, gt=0)
    job_timeout_seconds: float = Field(default=1800, gt=0)
    provider_requests_per_second: float | None = Field(default=None, gt=0)
    discord_requests_per_second: int = Field(default=45, ge=1, le=10_000)
    media_allow_private_networks: bool = False
    dev_guild_id: int | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    shard_count: int | None = Field(default=None, ge=1)
    shard_ids: str | None = None
    """`0,2` or `0-3`; read it through `shards`, which checks it against `SHARD_COUNT`."""
    process_name: str | None = Field(default=None, max_length=64)

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _fold_case(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return value.upper() if value.lower() in {"debug", "info", "warning", "error", "critical"} else value.lower()

    @field_validator(
        "discord_gateway_url",
        "dev_guild_id",
        "metrics_port",
        "media_dir",
        "provider_requests_per_second",
        "shard_count",
        "shard_ids",
        "process_name",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `FOO=` in an .env file means "not set", not "set to the empty string".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("discord_gateway_url")
    @classmethod
    def _websocket_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("ws://", "wss://")):
            raise ValueError("must be a ws:// or wss:// URL")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr) -> SecretStr:
        DatabaseUrl.parse(value.get_secret_value())  # its messages never contain the URL
        return value

    @field_validator("shard_ids")
    @classmethod
    def _shard_ids(cls, value: str | None) -> str | None:
        if value is not None:
            parse_shard_ids(value)
        return value

    @model_validator(mode="after")
    def _shards_fit(self) -> Settings:
        if self.shard_ids is not None:
            if self.shard_count is None:
                raise ValueError("SHARD_IDS needs SHARD_COUNT (how many shards the whole deployment has)")
            too_big = [i for i in parse_shard_ids(self.shard_ids) if i >= self.shard_count]
            if too_big:
                raise ValueError(f"SHARD_IDS names shard {too_big[0]}, but SHARD_COUNT is {self.shard_count}")
        return self

    @property
    def shards(self) -> list[int] | None:
        """The shard ids this process connects: `SHARD_IDS`, else every id below `SHARD_COUNT`; None when
        `SHARD_COUNT` is unset (Discord's recommended count, all in this process)."""
        if self.shard_count is None:
            return None
        if self.shard_ids is None:
            return list(range(self.shard_count))
        return parse_shard_ids(self.shard_ids)

    @property
    def database(self) -> DatabaseUrl:
        """`DATABASE_URL`, parsed; prints with its password hidden."""
        return DatabaseUrl.parse(self.database_url.get_secret_value())

    @property
    def database_path(self) -> Path:
        """The SQLite file named by `DATABASE_URL` (`sqlite:///data/bot.db` → `data/bot.db`); ValueError when
        `DATABASE_URL` names PostgreSQL."""
        return self.database.path

    @property
    def media_path(self) -> Path:
        """Where videos wait between download and upload: `MEDIA_DIR`, or by default a `media` folder beside the
        SQLite file (on the volume operators already mount and back up), or `data/media` with PostgreSQL."""
        if self.media_dir is not None:
            return self.media_dir
        database = self.database
        return database.path.parent / "media" if database.backend is Backend.SQLITE else Path("data/media")

    @property
    def quota_window_seconds(self) -> float:
        return self.quota_window_hours * 3600

    @property
    def aiml_base(self) -> str:
        """The provider base URL without a trailing slash, ready to have paths appended."""
        return str(self.aiml_api_base_url).rstrip("/")

    @property
    def discord_rest_base(self) -> str:
        return str(self.discord_api_base_url).rstrip("/")


def parse_shard_ids(text: str) -> list[int]:
    """`0,2` → [0, 2]; `0-3` → [0, 1, 2, 3]; both forms may be mixed (`0-1,4`). ValueError saying what is wrong."""
    ids: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        try:
            first, last = (int(low), int(high)) if dash else (int(part), int(part))
        except ValueError:
            raise ValueError(f"{part!r} is not a shard id or a range such as 0-3") from None
        if first < 0 or last < first:
            raise ValueError(f"{part!r} is not a shard id or a range such as 0-3")
        ids.update(range(first, last + 1))
    return sorted(ids)


class SettingsError(Exception):
    """A setting is missing or invalid; the message is one line that names it and never shows its value."""


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment (and `.env`), turning validation errors into one readable line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            if not error["loc"]:  # a rule across settings: its message names them
                problems.append(str(error["msg"]).removeprefix("Value error, "))
                continue
            name = str(error["loc"][0]).upper() if error["loc"] else "settings"
            reason = "is required but not set" if error["type"] == "missing" else f"is invalid: {error['msg']}"
            problems.append(f"{name} {reason}")
        raise SettingsError("; ".join(problems)) from None

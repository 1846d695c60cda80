"""Settings as operators write them: the names docs/operations.md fixes, defaults, booleans, decimals, and
documentation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, load_settings, parse_shard_ids

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = {"DISCORD_TOKEN": "t", "AIML_API_KEY": "k"}


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def test_contract_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert str(s.aiml_api_base_url).rstrip("/") == "https://api.aimlapi.com"
    assert s.discord_rest_base == "https://discord.com/api/v10"
    assert s.discord_gateway_url is None
    assert s.database_path == Path("data/bot.db")
    assert s.video_model == "klingai/video-o1-reference-to-video"
    assert (s.quota_default_limit, s.quota_window_hours, s.max_active_jobs_per_user) == (5, 24, 2)
    assert (s.poll_interval_seconds, s.job_timeout_seconds) == (10, 1800)
    assert s.media_allow_private_networks is False
    assert (s.dev_guild_id, s.metrics_port, s.log_level, s.log_format) == (None, None, "INFO", "text")


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("1", True), ("false", False), ("0", False)])
def test_booleans_accept_true_false_1_0(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MEDIA_ALLOW_PRIVATE_NETWORKS", raw)
    assert load_settings().media_allow_private_networks is expected


def test_seconds_accept_decimals_and_empty_optional_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POLL_INTERVAL_SECONDS", "0.5")
    monkeypatch.setenv("DEV_GUILD_ID", "")
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    s = load_settings()
    assert s.poll_interval_seconds == 0.5
    assert s.dev_guild_id is None
    assert s.log_format == "json"


@pytest.mark.parametrize(
    ("name", "value"),
    [("QUOTA_DEFAULT_LIMIT", "-1"), ("POLL_INTERVAL_SECONDS", "0"), ("LOG_FORMAT", "xml"), ("DATABASE_URL", "x.db")],
)
def test_invalid_values_name_the_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    for required, v in REQUIRED.items():
        monkeypatch.setenv(required, v)
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_every_setting_is_documented_in_env_example_and_readme() -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"\n{name.upper()}=" in example, name
        assert f"| `{name.upper()}` |" in readme, name


PG_PASSWORD = "s3cret-Pg-pass"


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_database_url_selects_postgresql_and_never_shows_its_password(
    monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", f"{scheme}://bot:{PG_PASSWORD}@db.internal:5433/reelbot")
    s = load_settings()
    assert s.database.backend.value == "postgresql"
    assert s.database.dsn == f"postgresql://bot:{PG_PASSWORD}@db.internal:5433/reelbot"
    assert s.database.password == PG_PASSWORD
    assert str(s.database) == "postgresql://bot:***@db.internal:5433/reelbot"
    for text in (repr(s), str(s), s.model_dump_json(), repr(s.database), f"{s.database}"):
        assert PG_PASSWORD not in text
    assert s.media_path == Path("data/media")
    with pytest.raises(ValueError, match="no file"):
        _ = s.database_path


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://bot:{PG_PASSWORD}@db/reelbot",
        f"postgresql://bot:{PG_PASSWORD}@db:notaport/reelbot",
        f"postgresql://bot:{PG_PASSWORD}@db:5432/",
        f"postgresql://bot:{PG_PASSWORD}@:5432/reelbot",
        "sqlite:///",
    ],
)
def test_a_bad_database_url_is_named_without_echoing_it(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(SettingsError, match="DATABASE_URL") as caught:
        load_settings()
    assert PG_PASSWORD not in str(caught.value)


def test_media_folder_and_job_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", "sqlite:////srv/reelbot/bot.db")
    monkeypatch.setenv("MEDIA_DIR", "")
    s = load_settings()
    assert s.media_path == Path("/srv/reelbot/media")  # beside the SQLite file, as before MEDIA_DIR existed
    assert s.job_lease_seconds == 30
    monkeypatch.setenv("MEDIA_DIR", "/scratch/videos")
    monkeypatch.setenv("JOB_LEASE_SECONDS", "12.5")
    s = load_settings()
    assert (s.media_path, s.job_lease_seconds) == (Path("/scratch/videos"), 12.5)
    monkeypatch.setenv("JOB_LEASE_SECONDS", "0")
    with pytest.raises(SettingsError, match="JOB_LEASE_SECONDS"):
        load_settings()


# -- several processes: the shards this process connects, and no split roles on SQLite


def test_shard_ids_take_lists_and_ranges() -> None:
    assert parse_shard_ids("0,2") == [0, 2]
    assert parse_shard_ids("0-3") == [0, 1, 2, 3]
    assert parse_shard_ids(" 4, 0-1 ") == [0, 1, 4]
    assert load_settings(**REQUIRED, shard_count=4).shards == [0, 1, 2, 3]  # default: every id below the count
    assert load_settings(**REQUIRED, shard_count=4, shard_ids="1,3").shards == [1, 3]
    assert load_settings(**REQUIRED).shards is None  # Discord's recommended count, all here


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"shard_ids": "0"}, "SHARD_IDS needs SHARD_COUNT"),
        ({"shard_count": 2, "shard_ids": "0-2"}, "names shard 2, but SHARD_COUNT is 2"),
        ({"shard_count": 2, "shard_ids": "one"}, "SHARD_IDS is invalid"),
        ({"shard_count": 0}, "SHARD_COUNT is invalid"),
    ],
)
def test_bad_shard_settings_say_what_is_wrong(values: dict[str, object], says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        load_settings(**REQUIRED, **values)


@pytest.mark.parametrize("role", ["gateway", "worker"])
def test_a_split_role_on_sqlite_is_refused_with_one_line(role: str, tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "DISCORD_TOKEN": "secret-token-value",
        "AIML_API_KEY": "secret-key-value",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
    }
    done = subprocess.run(  # noqa: S603 - our own entry point
        [sys.executable, "-m", "bot", role], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "DATABASE_URL=postgresql://" in line
    assert f"python -m bot {role}" in line
    assert not (tmp_path / "bot.db").exists()  # nothing was started or created

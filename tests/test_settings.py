"""Settings as operators write them: the names docs/operations.md fixes, defaults, booleans, decimals, and
documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, load_settings

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

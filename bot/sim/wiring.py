"""Settings that point a Reelbot at the two local simulators (demo, tests, benchmarks share this one recipe)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.settings import Settings
from bot.sim.aimlapi import AimlSimulator
from bot.sim.discord import DiscordSimulator

__all__ = ["SIM_KEY", "SIM_TOKEN", "settings_env", "simulated_settings"]

# The simulators' own credentials; start them with these. Not secrets: nothing outside 127.0.0.1 accepts them.
SIM_TOKEN = "simulated-bot-token"  # noqa: S105
SIM_KEY = "simulated-api-key"


def _values(discord_sim: DiscordSimulator, aiml: AimlSimulator, database: Path, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "discord_token": SIM_TOKEN,
        "aiml_api_key": SIM_KEY,
        "aiml_api_base_url": aiml.base_url,
        "discord_api_base_url": discord_sim.rest_url,
        "discord_gateway_url": discord_sim.gateway_url,
        "database_url": f"sqlite:///{database}",
        "media_allow_private_networks": True,  # the simulators live on 127.0.0.1
        "poll_interval_seconds": 0.5,
        "dev_guild_id": discord_sim.guild.id,
    }
    values.update(overrides)
    return values


def simulated_settings(
    discord_sim: DiscordSimulator, aiml: AimlSimulator, database: Path, **overrides: Any
) -> Settings:
    """Settings for an in-process bot; any `.env` in the working directory is ignored."""
    return Settings(_env_file=None, **_values(discord_sim, aiml, database, **overrides))  # type: ignore[call-arg]


def settings_env(
    discord_sim: DiscordSimulator, aiml: AimlSimulator, database: Path, **overrides: Any
) -> dict[str, str]:
    """The same settings as environment variables, for a bot started as its own process (`python -m bot`)."""
    values = _values(discord_sim, aiml, database, **overrides)
    return {
        name.upper(): str(value).lower() if isinstance(value, bool) else str(value) for name, value in values.items()
    }

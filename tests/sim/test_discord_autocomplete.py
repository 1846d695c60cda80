"""Autocomplete in the Discord simulator: a member types into an option, the real discord.py client answers with
suggestions, and the simulator holds the answer to Discord's rules (type 8 only, 25 choices, 1–100 character
names, values of the option's type, the 3-second window, one answer)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import jsonschema
import pytest
from discord import app_commands
from discord.ext import commands

from bot.sim.discord import DiscordSimulator, InteractionHandle, SimError
from tests.discord_sim_bot import running_bot, sim_fixture  # noqa: F401
from tests.sim.test_discord_schema import load_spec

CAST = [f"{kind} {n}" for kind in ("fox", "owl", "fern") for n in range(1, 21)]  # 60 names, 20 of each kind


class CastBot(commands.Bot):
    """`/cast character:<autocomplete> [strength:<autocomplete int>] [note]`. `mode` picks how the character
    suggestions are answered, so one bot can break each rule; what discord.py raised is kept in `errors`."""

    def __init__(self, guild_id: int) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.guild_id = guild_id
        self.mode = "normal"
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.errors: list[Exception] = []
        self.ready_event = asyncio.Event()
        bot = self

        async def suggest_character(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            bot.seen.append((current, dict(interaction.namespace.__dict__)))
            matches = [name for name in CAST if current.lower() in name]
            choices = [app_commands.Choice(name=name.title(), value=name) for name in matches]
            try:
                if bot.mode == "normal":
                    await interaction.response.autocomplete(choices[:25])
                elif bot.mode == "too_many":
                    await interaction.response.autocomplete(choices[:26])
                elif bot.mode == "long_name":
                    await interaction.response.autocomplete([app_commands.Choice(name="x" * 101, value="x")])
                elif bot.mode == "message":
                    await interaction.response.send_message("a message is not a suggestion")
                elif bot.mode == "slow":
                    await asyncio.sleep(0.3)
                    await interaction.response.autocomplete(choices[:25])
                elif bot.mode == "twice":
                    await interaction.response.autocomplete(choices[:1])
                    await bot.http.request(
                        discord.http.Route(
                            "POST", "/interactions/{i}/{t}/callback", i=interaction.id, t=interaction.token
                        ),
                        json={"type": 8, "data": {"choices": []}},
                    )
            except Exception as exc:  # recorded for the test to assert on
                bot.errors.append(exc)
            return []

        async def suggest_strength(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[int]]:
            bot.seen.append((current, dict(interaction.namespace.__dict__)))
            return [app_commands.Choice(name=f"{n}0%", value=n * 10) for n in range(1, 11)]

        @app_commands.command(name="cast", description="Pick a character")
        @app_commands.autocomplete(character=suggest_character, strength=suggest_strength)
        async def cast(
            interaction: discord.Interaction, character: str, strength: int = 50, note: str | None = None
        ) -> None:
            await interaction.response.send_message(f"{character} at {strength}")

        self.tree.add_command(cast)

    async def setup_hook(self) -> None:
        guild = discord.Object(self.guild_id)
        self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)

    async def on_ready(self) -> None:
        self.ready_event.set()


@pytest.fixture
async def cast(sim: DiscordSimulator) -> AsyncIterator[tuple[DiscordSimulator, CastBot]]:
    bot = CastBot(sim.guild.id)
    async with running_bot(sim, bot):
        await asyncio.wait_for(bot.ready_event.wait(), timeout=5)
        yield sim, bot


Cast = tuple[DiscordSimulator, CastBot]


async def _type(sim: DiscordSimulator, value: str, focused: str = "character", **filled: Any) -> InteractionHandle:
    g = sim.guild
    return await sim.autocomplete(
        "cast", user_id=g.member_ids[0], channel_id=g.text_channel_id, focused=focused, value=value, options=filled
    )


async def test_suggestions_as_the_member_types(cast: Cast) -> None:
    sim, bot = cast
    schema = sim.commands(sim.guild.id)[0]["options"]
    assert [(o["name"], o.get("autocomplete", False)) for o in schema] == [
        ("character", True),
        ("strength", True),
        ("note", False),
    ]

    h = await _type(sim, "fo", note="sunny")
    choices = await h.wait_choices()
    assert [c["value"] for c in choices] == [f"fox {n}" for n in range(1, 21)]
    assert choices[0] == {"name": "Fox 1", "value": "fox 1"}
    # What Discord sent: the focused option with the partial text, the option already filled, nothing resolved.
    data = h.payload["data"]
    assert h.payload["type"] == 4
    assert data["options"] == [
        {"name": "character", "type": 3, "value": "fo", "focused": True},
        {"name": "note", "type": 3, "value": "sunny"},
    ]
    assert "resolved" not in data
    assert bot.seen[-1] == ("fo", {"character": "fo", "note": "sunny"})
    # Nothing a member could see was posted.
    assert h.response is None
    assert sim.messages(sim.guild.text_channel_id) == []

    # "o" matches 60 names; the bot sends the first 25, the most Discord shows.
    assert len(await (await _type(sim, "o")).wait_choices()) == 25
    assert await (await _type(sim, "zebra")).wait_choices() == []


async def test_integer_option_gets_the_typed_text_and_answers_integers(cast: Cast) -> None:
    sim, bot = cast
    h = await _type(sim, "3", focused="strength", character="fox 1")
    choices = await h.wait_choices()
    assert choices[:2] == [{"name": "10%", "value": 10}, {"name": "20%", "value": 20}]
    assert h.payload["data"]["options"][1] == {"name": "strength", "type": 4, "value": "3", "focused": True}
    assert bot.seen[-1] == ("3", {"character": "fox 1", "strength": "3"})
    # The client does not send what is not a number for a number option.
    with pytest.raises(SimError, match="not a number"):
        await _type(sim, "abc", focused="strength")


@pytest.mark.parametrize(
    ("mode", "where", "text"),
    [
        ("too_many", "data.choices", "Must be 25 or fewer in length."),
        ("long_name", "data.choices.0.name", "Must be between 1 and 100 in length."),
        ("message", "type", "Value must be one of {8}."),
    ],
)
async def test_answers_discord_refuses(cast: Cast, mode: str, where: str, text: str) -> None:
    sim, bot = cast
    bot.mode = mode
    h = await _type(sim, "o")
    await sim.wait_for(lambda: bot.errors, timeout=5)
    [err] = bot.errors
    assert isinstance(err, discord.HTTPException)
    assert (err.status, err.code) == (400, 50035)
    # discord.py flattens Discord's nested errors into "In <path>: <message>".
    assert f"In {where}: {text}" in err.text
    # discord.py then sends what the callback returned (nothing), so the member sees no suggestions at all.
    assert await h.wait_choices() == []
    assert sim.messages(sim.guild.text_channel_id) == []


async def test_three_second_window_and_one_answer(cast: Cast) -> None:
    sim, bot = cast
    sim.interaction_deadline = 0.1
    bot.mode = "slow"
    h = await _type(sim, "fo")
    await sim.wait_for(lambda: bot.errors, timeout=5)
    assert isinstance(bot.errors[0], discord.NotFound)
    assert bot.errors[0].code == 10062
    assert h.response_type is None

    sim.interaction_deadline = 3.0
    bot.errors.clear()
    bot.mode = "twice"
    h = await _type(sim, "fo")
    await sim.wait_for(lambda: bot.errors, timeout=5)
    assert isinstance(bot.errors[0], discord.HTTPException)
    assert bot.errors[0].code == 40060
    assert await h.wait_choices() == [{"name": "Fox 1", "value": "fox 1"}]


async def test_the_client_only_asks_for_autocomplete_options(cast: Cast) -> None:
    sim, _ = cast
    with pytest.raises(SimError, match="autocomplete"):
        await _type(sim, "x", focused="note")
    with pytest.raises(SimError, match="not synced"):
        await sim.autocomplete(
            "nope", user_id=sim.guild.member_ids[0], channel_id=sim.guild.text_channel_id, focused="a", value=""
        )


async def _raw_callback(sim: DiscordSimulator, h: InteractionHandle, body: Any) -> tuple[int, Any]:
    url = f"{sim.rest_url}/interactions/{h.id}/{h.token}/callback?with_response=1"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
        return resp.status, json.loads(await resp.read())


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"type": 5}, "type"),
        ({"type": 4, "data": {"content": "hi"}}, "type"),
        ({"type": 8}, "data"),
        ({"type": 8, "data": {"choices": [{"name": "", "value": "a"}]}}, "data.choices.0.name"),
        ({"type": 8, "data": {"choices": [{"name": "A", "value": "a" * 101}]}}, "data.choices.0.value"),
        ({"type": 8, "data": {"choices": [{"name": "A", "value": 1}]}}, "data.choices.0.value"),
        ({"type": 8, "data": {"choices": [{"name": "A"}]}}, "data.choices.0.value"),
    ],
)
async def test_callback_rules_over_http(sim: DiscordSimulator, body: dict[str, Any], where: str) -> None:
    """No client needed: the interaction is dispatched to nobody and answered by hand."""
    await _sync_cast(sim)
    h = await _type(sim, "f")
    status, answer = await _raw_callback(sim, h, body)
    assert (status, answer["code"]) == (400, 50035)
    node = answer["errors"]
    for part in where.split("."):
        node = node[part]
    assert node["_errors"]
    assert h.response_type is None
    assert sim.messages(sim.guild.text_channel_id) == []  # a refused type 4 or 5 created no message

    status, answer = await _raw_callback(sim, h, {"type": 8, "data": {"choices": [{"name": "Fox", "value": "fox"}]}})
    assert status == 200
    assert answer == {"interaction": {"id": str(h.id), "type": 4}}
    assert await h.wait_choices() == [{"name": "Fox", "value": "fox"}]


async def test_integer_and_number_choices_over_http(sim: DiscordSimulator) -> None:
    await _sync_cast(sim)
    h = await _type(sim, "1", focused="strength")
    status, answer = await _raw_callback(sim, h, {"type": 8, "data": {"choices": [{"name": "A", "value": "10"}]}})
    assert (status, answer["code"]) == (400, 50035)
    assert "not int" in answer["errors"]["data"]["choices"]["0"]["value"]["_errors"][0]["message"]
    status, _ = await _raw_callback(sim, h, {"type": 8, "data": {"choices": [{"name": "A", "value": 10}]}})
    assert status == 200


async def test_sync_refuses_autocomplete_where_discord_does(sim: DiscordSimulator) -> None:
    app = sim.application_id
    url = f"{sim.rest_url}/applications/{app}/guilds/{sim.guild.id}/commands"
    bad = [
        {"type": 11, "name": "image", "description": "d", "autocomplete": True},
        {"type": 3, "name": "kind", "description": "d", "autocomplete": True, "choices": [{"name": "a", "value": "a"}]},
    ]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {sim.token}"}) as http:
        for option in bad:
            body = [{"name": "cast", "description": "Pick", "options": [option]}]
            async with http.put(url, json=body) as resp:
                answer = await resp.json()
            assert (resp.status, answer["code"]) == (400, 50035)
            assert "autocomplete" in answer["errors"]["0"]["options"]["0"]
    assert sim.commands(sim.guild.id) == []


async def _sync_cast(sim: DiscordSimulator) -> None:
    """Sync /cast's schema over HTTP (what CastBot's setup_hook would send)."""
    body = [
        {
            "name": "cast",
            "description": "Pick a character",
            "options": [
                {"type": 3, "name": "character", "description": "c", "required": True, "autocomplete": True},
                {"type": 4, "name": "strength", "description": "s", "autocomplete": True},
                {"type": 3, "name": "note", "description": "n"},
            ],
        }
    ]
    url = f"{sim.rest_url}/applications/{sim.application_id}/guilds/{sim.guild.id}/commands"
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bot {sim.token}"}) as http,
        http.put(url, json=body) as resp,
    ):
        assert resp.status == 200


def _choices(n: int, **override: Any) -> dict[str, Any]:
    return {"choices": [{"name": f"Fox {i}", "value": f"fox {i}", **override} for i in range(n)]}


# Answers to a STRING option, whether Discord's OpenAPI document accepts them, and whether the simulator does. The
# one difference is deliberate: the document allows string values up to 6000 characters, the developer docs say
# "up to 100 characters if string", and the simulator keeps to the stricter.
CALLBACK_DATA: list[tuple[dict[str, Any], bool]] = [
    (_choices(25), True),
    (_choices(26), False),
    (_choices(1, name=""), False),
    (_choices(1, name="x" * 101), False),
    (_choices(1, value=7), False),
    ({"choices": [{"name": "Fox"}]}, False),
    ({"choices": None}, True),
    ({"choices": [{"name": "Fox", "value": "fox", "name_localizations": {"fr": "Renard"}}]}, True),
]


@pytest.mark.parametrize(("data", "accepted"), CALLBACK_DATA)
async def test_choice_rules_agree_with_the_openapi_document(
    sim: DiscordSimulator, data: dict[str, Any], accepted: bool
) -> None:
    spec = load_spec()  # skips when the shared spec folder is not configured
    schema = {**spec["components"]["schemas"]["InteractionApplicationCommandAutocompleteCallbackStringData"]}
    validator = jsonschema.Draft202012Validator({**schema, "components": spec["components"]})
    assert validator.is_valid(data) == accepted
    await _sync_cast(sim)
    h = await _type(sim, "f")
    status, _ = await _raw_callback(sim, h, {"type": 8, "data": data})
    assert (status == 200) == accepted

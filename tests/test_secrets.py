"""Secrets (the bot token and the AI/ML API key) never appear in logs, reprs, errors or Discord messages —
not even when the provider echoes the key back in an error and the error's traceback is logged."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.domain.jobs import JobStatus
from bot.logs import configure_logging
from bot.provider.client import AimlClient
from bot.provider.errors import ProviderError
from bot.provider.models import GenerationRequest
from bot.settings import Settings, SettingsError, load_settings
from tests.fakes import KEY, make_env

TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0.GhIjKl.bot-token-that-must-not-leak"


@pytest.fixture
async def echoing_provider() -> AsyncIterator[str]:
    """An AI/ML API look-alike whose errors quote the request's Authorization header back (some gateways do)."""

    async def echo(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        body = {"message": f"upstream failed for {auth}", "detail": [{"msg": f"key {auth} rejected"}]}
        return web.json_response(body, status=500 if request.method == "POST" else 400)

    app = web.Application()
    app.router.add_route("*", "/v2/video/generations", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def test_settings_never_show_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(_env_file=None, discord_token=TOKEN, aiml_api_key=KEY)  # type: ignore[call-arg,arg-type]
    for text in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert TOKEN not in text
        assert KEY not in text


@pytest.mark.parametrize("bad", [{"METRICS_PORT": "not-a-port"}, {"QUOTA_DEFAULT_LIMIT": TOKEN}])
def test_configuration_errors_name_the_setting_but_never_a_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bad: dict[str, str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    monkeypatch.setenv("AIML_API_KEY", KEY)
    for name, value in bad.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert next(iter(bad)) in message
    assert TOKEN not in message
    assert KEY not in message


async def test_provider_error_echoing_the_key_is_scrubbed_from_errors_logs_and_tracebacks(
    echoing_provider: str, logs: pytest.CaptureFixture[str]
) -> None:
    for fmt in ("text", "json"):
        configure_logging("DEBUG", fmt, secrets=(TOKEN, KEY))
        log = logging.getLogger("reelbot.test")
        async with aiohttp.ClientSession() as session:
            client = AimlClient(session, echoing_provider, SecretStr(KEY))
            request = GenerationRequest("m", "a fox", ("https://x/1.png",), 5, "16:9")
            for call in (client.submit(request), client.poll("gen-1")):
                with pytest.raises(ProviderError) as caught:
                    await call
                assert KEY not in str(caught.value)
                assert KEY not in repr(caught.value)
                assert "[redacted]" in str(caught.value)
                # Even a message built by hand around the key, logged with its traceback, is scrubbed.
                try:
                    raise RuntimeError(f"wrapping with {KEY} and {TOKEN}") from caught.value
                except RuntimeError:
                    log.exception("provider call failed for key %s", KEY)
        err = logs.readouterr().err
        assert "provider call failed" in err  # the lines were written...
        assert "Traceback" in err or '"exception"' in err
        assert KEY not in err  # ...without the secrets
        assert TOKEN not in err
        if fmt == "json":
            for line in err.splitlines():
                if line.startswith("{"):
                    json.loads(line)


async def test_a_job_failing_with_an_echoed_key_tells_the_member_without_it(
    tmp_path: Path, echoing_provider: str, logs: pytest.CaptureFixture[str]
) -> None:
    configure_logging("DEBUG", "text", secrets=(KEY,))
    async with make_env(tmp_path) as env:
        session = aiohttp.ClientSession()
        env.stack.push_async_callback(session.close)
        env.provider = AimlClient(session, echoing_provider, SecretStr(KEY))
        poller = env.poller(max_submit_attempts=1)
        job = await env.new_job()
        done = await env.drive(poller, job.id, step=30.0)
        assert done.status is JobStatus.FAILED
        assert KEY not in (done.last_error or "")
        posted = [p.content for p in env.chat.posts]
        assert posted  # the member was told...
        assert all(KEY not in text for text in posted)  # ...without the key
        assert all(KEY not in str(card) for card in env.chat.cards)
    err = logs.readouterr().err
    assert "DEBUG" in err
    assert KEY not in err


def test_secret_filter_is_on_every_line_of_a_configured_process(logs: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json", secrets=(TOKEN,))
    logging.getLogger("discord.http").info("sending Authorization: Bot %s", TOKEN)
    logging.getLogger("aiohttp.client").warning("headers=%r", {"Authorization": f"Bot {TOKEN}"})
    print("flush", file=sys.stderr)
    err = logs.readouterr().err
    assert err.count("[redacted]") == 2
    assert TOKEN not in err

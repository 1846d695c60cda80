"""AimlClient against the AI/ML API simulator over real HTTP (no mocks)."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from pydantic import SecretStr

from bot.domain.clock import FakeClock
from bot.provider.client import AimlClient, parse_retry_after
from bot.provider.errors import (
    AuthenticationFailed,
    GenerationNotFound,
    InputRejected,
    MalformedResponse,
    OutOfCredits,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from bot.provider.models import MODEL_ID, Generation, GenerationRequest, ProviderStatus
from bot.sim.aimlapi import AimlSimulator, JobScript

KEY = "sk-test-SECRET-4f1c9a7e2b"


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[AimlSimulator]:
    simulator = AimlSimulator(KEY, fetch_images=False, clock=clock)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def client(sim: AimlSimulator, session: aiohttp.ClientSession) -> AimlClient:
    return AimlClient(session, sim.base_url, SecretStr(KEY), timeout=5.0)


def request(**overrides: object) -> GenerationRequest:
    fields: dict[str, object] = {
        "model": MODEL_ID,
        "prompt": "The cat from @Image1 walks through @Image2",
        "image_list": ("https://img.example/cat.png", "https://img.example/market.jpg"),
        "duration": 5,
        "aspect_ratio": "9:16",
    }
    fields.update(overrides)
    return GenerationRequest(**fields)  # type: ignore[arg-type]


async def test_submit_sends_exactly_the_contract_body(client: AimlClient, sim: AimlSimulator) -> None:
    generation = await client.submit(request())

    assert sim.submissions == [
        {
            "model": MODEL_ID,
            "prompt": "The cat from @Image1 walks through @Image2",
            "image_list": ["https://img.example/cat.png", "https://img.example/market.jpg"],
            "duration": 5,
            "aspect_ratio": "9:16",
        }
    ]
    assert generation.status is ProviderStatus.QUEUED
    assert generation.id in sim.generations
    post = [r for r in sim.requests if r.method == "POST"]
    assert len(post) == 1
    assert post[0].path == "/v2/video/generations"


async def test_full_lifecycle_reaches_completed_with_video_url(
    client: AimlClient, sim: AimlSimulator, clock: FakeClock
) -> None:
    gen = await client.submit(request(duration=10))
    seen = [(await client.poll(gen.id)).status]
    clock.advance(1.5)
    seen.append((await client.poll(gen.id)).status)
    clock.advance(3.0)
    done = await client.poll(gen.id)

    assert seen == [ProviderStatus.QUEUED, ProviderStatus.GENERATING]
    assert done.status is ProviderStatus.COMPLETED
    assert done.video_url == sim.video_url(gen.id)
    assert done.credits_used == 1_120_000.0
    assert done.error_message is None
    poll = [r for r in sim.requests if r.method == "GET"][-1]
    assert poll.query == {"generation_id": gen.id}  # the id holds ':' and '/', so it must be encoded


async def test_status_aliases_normalise(client: AimlClient, sim: AimlSimulator, clock: FakeClock) -> None:
    sim.script_next(
        JobScript(queued_s=1, generating_s=2, raw_status_sequence=("waiting", "active", "processing", "completed"))
    )
    gen = await client.submit(request())
    observed: list[tuple[str, ProviderStatus]] = [(gen.raw_status, gen.status)]
    for step in (1.0, 1.0, 1.0):
        clock.advance(step)
        polled = await client.poll(gen.id)
        observed.append((polled.raw_status, polled.status))

    assert observed == [
        ("waiting", ProviderStatus.QUEUED),
        ("active", ProviderStatus.GENERATING),
        ("processing", ProviderStatus.GENERATING),
        ("completed", ProviderStatus.COMPLETED),
    ]


async def test_unknown_status_keeps_polling_and_logs_warning(
    client: AimlClient, sim: AimlSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    sim.script_next(JobScript(raw_status_sequence=("mystery", "completed")))
    with caplog.at_level(logging.WARNING, logger="bot.provider"):
        gen = await client.submit(request())

    assert gen.status is ProviderStatus.GENERATING
    assert gen.raw_status == "mystery"
    assert any("mystery" in r.getMessage() for r in caplog.records)


async def test_error_job_becomes_failed_with_the_providers_message(
    client: AimlClient, sim: AimlSimulator, clock: FakeClock
) -> None:
    sim.script_next(JobScript(outcome="error", error_message="Prompt flagged by moderation"))
    gen = await client.submit(request())
    clock.advance(10)
    polled = await client.poll(gen.id)

    assert polled.status is ProviderStatus.FAILED
    assert polled.raw_status == "error"
    assert polled.video_url is None
    assert polled.error_message is not None
    assert "Prompt flagged by moderation" in polled.error_message


async def test_detail_shaped_error_names_the_field(client: AimlClient, sim: AimlSimulator, clock: FakeClock) -> None:
    sim.script_next(JobScript(outcome="error", error_shape="detail", error_message="Could not detect face"))
    gen = await client.submit(request())
    clock.advance(10)
    polled = await client.poll(gen.id)

    assert polled.status is ProviderStatus.FAILED
    assert polled.error_message == "image_list: Could not detect face"


async def test_failed_alias_and_completed_without_url_are_failures(
    client: AimlClient, sim: AimlSimulator, clock: FakeClock
) -> None:
    sim.script_next(
        JobScript(outcome="error", raw_status_sequence=("queued", "failed")),
        JobScript(completed_without_url=True),
    )
    failed = await client.submit(request())
    no_url = await client.submit(request())
    clock.advance(10)

    a = await client.poll(failed.id)
    b = await client.poll(no_url.id)
    assert (a.status, a.raw_status) == (ProviderStatus.FAILED, "failed")
    assert (b.status, b.raw_status) == (ProviderStatus.FAILED, "completed")
    assert b.video_url is None
    assert b.error_message is not None
    assert "no download URL" in b.error_message


async def test_bad_input_is_input_rejected_naming_the_field(client: AimlClient) -> None:
    with pytest.raises(InputRejected) as info:
        await client.submit(request(aspect_ratio="4:3"))
    assert info.value.status == 400
    assert "aspect_ratio" in str(info.value)
    assert "4:3" in str(info.value)


@dataclass(frozen=True)
class _RequestWithExtraKey(GenerationRequest):
    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), "negative_prompt": "blurry"}


async def test_unknown_key_is_input_rejected(client: AimlClient, sim: AimlSimulator) -> None:
    extra = _RequestWithExtraKey(MODEL_ID, "a prompt", ("https://img.example/a.png",), 5, "1:1")
    with pytest.raises(InputRejected) as info:
        await client.submit(extra)
    assert "negative_prompt" in str(info.value)
    assert sim.generations == {}


async def test_wrong_key_is_authentication_failed(sim: AimlSimulator, session: aiohttp.ClientSession) -> None:
    bad = AimlClient(session, sim.base_url, SecretStr("sk-wrong-key-123456"))
    with pytest.raises(AuthenticationFailed) as info:
        await bad.submit(request())
    assert info.value.status == 401
    assert "AIML_API_KEY" in str(info.value)
    assert "sk-wrong-key-123456" not in str(info.value)
    assert "sk-wrong-key-123456" not in repr(info.value)


async def test_out_of_credits_on_submit(client: AimlClient, sim: AimlSimulator) -> None:
    sim.script_next(JobScript(submit_status=403))
    with pytest.raises(OutOfCredits) as info:
        await client.submit(request())
    assert "run out of credits" in str(info.value)
    assert sim.generations == {}


async def test_unknown_generation_is_not_found(client: AimlClient) -> None:
    with pytest.raises(GenerationNotFound) as info:
        await client.poll("00000000-0000-0000-0000-000000000000:" + MODEL_ID)
    assert info.value.status == 404


@pytest.mark.parametrize(("retry_after", "expected"), [(7.0, 7.0), (None, None)])
async def test_rate_limited_submit_carries_retry_after(
    client: AimlClient, sim: AimlSimulator, retry_after: float | None, expected: float | None
) -> None:
    sim.script_next(JobScript(submit_status=429, submit_retry_after=retry_after))
    with pytest.raises(RateLimited) as info:
        await client.submit(request())
    assert info.value.retry_after == expected
    assert info.value.transient
    assert sim.generations == {}


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_on_submit_are_unavailable_and_maybe_submitted(
    client: AimlClient, sim: AimlSimulator, status: int
) -> None:
    sim.script_next(JobScript(submit_status=status))
    with pytest.raises(ProviderUnavailable) as info:
        await client.submit(request())
    assert info.value.status == status
    assert info.value.maybe_submitted


async def test_poll_faults_then_normal_answer(client: AimlClient, sim: AimlSimulator) -> None:
    sim.script_next(JobScript(poll_faults=(429, 503), poll_retry_after=2.5))
    gen = await client.submit(request())

    with pytest.raises(RateLimited) as first:
        await client.poll(gen.id)
    with pytest.raises(ProviderUnavailable) as second:
        await client.poll(gen.id)
    third = await client.poll(gen.id)

    assert first.value.retry_after == 2.5
    assert second.value.status == 503
    assert not second.value.maybe_submitted
    assert third.status is ProviderStatus.QUEUED
    assert sim.poll_count(gen.id) == 3


async def test_submit_is_never_retried(client: AimlClient, sim: AimlSimulator) -> None:
    sim.script_next(JobScript(submit_status=500))
    with pytest.raises(ProviderUnavailable):
        await client.submit(request())
    assert len([r for r in sim.requests if r.method == "POST"]) == 1


async def test_submit_timeout_is_unavailable_and_flags_possible_job(
    sim: AimlSimulator, session: aiohttp.ClientSession
) -> None:
    sim.script_next(JobScript(submit_delay_s=5.0))
    impatient = AimlClient(session, sim.base_url, SecretStr(KEY), timeout=0.2)
    with pytest.raises(ProviderUnavailable) as info:
        await impatient.submit(request())
    assert info.value.status is None
    assert info.value.maybe_submitted
    assert "in time" in str(info.value)


async def test_poll_timeout_is_unavailable(
    client: AimlClient, sim: AimlSimulator, session: aiohttp.ClientSession
) -> None:
    sim.script_next(JobScript(poll_delay_s=5.0))
    gen = await client.submit(request())
    impatient = AimlClient(session, sim.base_url, SecretStr(KEY), timeout=0.2)
    with pytest.raises(ProviderUnavailable) as info:
        await impatient.poll(gen.id)
    assert not info.value.maybe_submitted


async def test_connection_refused_is_unavailable_and_not_submitted(session: aiohttp.ClientSession) -> None:
    with socket.socket() as s:  # a port that was free a moment ago and has no listener now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = AimlClient(session, f"http://127.0.0.1:{port}", SecretStr(KEY), timeout=2.0)
    with pytest.raises(ProviderUnavailable) as info:
        await dead.submit(request())
    assert not info.value.maybe_submitted


@pytest.mark.parametrize("body", ["<html>502 Bad Gateway</html>", '{"hello": "world"}', "[1, 2]", '{"id": "x"}'])
async def test_malformed_poll_answers(client: AimlClient, sim: AimlSimulator, body: str) -> None:
    sim.script_next(JobScript(poll_raw_body=body))
    gen = await client.submit(request())
    with pytest.raises(MalformedResponse):
        await client.poll(gen.id)


async def test_malformed_submit_answer(client: AimlClient, sim: AimlSimulator) -> None:
    sim.script_next(JobScript(submit_raw_body="not json at all"))
    with pytest.raises(MalformedResponse):
        await client.submit(request())


async def test_api_key_never_leaks_into_errors_or_logs(
    sim: AimlSimulator, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    client = AimlClient(session, sim.base_url, SecretStr(KEY), timeout=0.3)
    sim.script_next(
        JobScript(poll_faults=(429, 500)),
        JobScript(submit_status=403),
        JobScript(submit_delay_s=3.0),
        JobScript(poll_raw_body="garbage"),
    )
    errors: list[ProviderError] = []
    with caplog.at_level(logging.DEBUG):
        gen = await client.submit(request())
        for _ in range(2):
            try:
                await client.poll(gen.id)
            except ProviderError as exc:
                errors.append(exc)
        for attempt in (request(), request(), request(aspect_ratio="bad")):
            try:
                await client.submit(attempt)
            except ProviderError as exc:
                errors.append(exc)
        try:
            await client.poll("missing")
        except ProviderError as exc:
            errors.append(exc)
        wrong = AimlClient(session, sim.base_url, SecretStr("sk-other-" + KEY))
        try:
            await wrong.poll(gen.id)
        except ProviderError as exc:
            errors.append(exc)
        clock.advance(100)
        await client.poll(gen.id)

    assert len(errors) == 7
    assert {type(e) for e in errors} >= {RateLimited, ProviderUnavailable, OutOfCredits, InputRejected}
    assert all(KEY not in str(e) and KEY not in repr(e) for e in errors)
    assert caplog.records, "DEBUG logging was expected from the client"
    assert all(KEY not in r.getMessage() for r in caplog.records)
    assert KEY not in repr(client)


def test_parse_retry_after_variants() -> None:
    assert parse_retry_after({"Retry-After": "12"}) == 12.0
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({}, {"retry_after": 4}) == 4.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({"Retry-After": "999999"}) is None
    assert parse_retry_after({}) is None


def test_request_body_omits_empty_image_list() -> None:
    body = request(image_list=()).to_json()
    assert "image_list" not in body
    assert body["duration"] == 5
    assert isinstance(body["duration"], int)


def test_generation_from_payload_accepts_generation_id_fallback() -> None:
    gen = Generation.from_payload({"generation_id": "abc", "status": "queued"})
    assert gen.id == "abc"
    assert gen.status is ProviderStatus.QUEUED

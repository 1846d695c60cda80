"""The Discord scheduler, through the real discord.py HTTP client against the Discord simulator: buckets and the
global budget waited for before sending, priorities, coalesced card edits, and 429s obeyed and counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from discord.http import HTTPClient, Route

from bot.discord_endpoints import point_discord_at
from bot.sim.discord import DiscordSimulator
from bot.traffic.discord import GLOBAL_KEY, DiscordScheduler, Priority, priority
from bot.traffic.state import LocalTrafficState, Window
from tests.discord_sim_bot import sim_fixture  # noqa: F401

MESSAGES = "/channels/{channel_id}/messages"
MESSAGE = "/channels/{channel_id}/messages/{message_id}"


@pytest.fixture
async def client(sim: DiscordSimulator) -> AsyncIterator[tuple[HTTPClient, DiscordScheduler]]:
    """discord.py's own HTTP client, logged in to the simulator, every request going through a scheduler."""
    point_discord_at(sim.rest_url, sim.gateway_url)
    scheduler = DiscordScheduler(LocalTrafficState())
    http = HTTPClient(asyncio.get_running_loop(), http_trace=scheduler.trace_config())
    scheduler.install(http)
    await http.static_login(sim.token)
    try:
        yield http, scheduler
    finally:
        await scheduler.close(grace=1.0)
        await http.close()


def post(http: HTTPClient, channel_id: int, content: str) -> Awaitable[Any]:
    return http.request(Route("POST", MESSAGES, channel_id=channel_id), json={"content": content})


def statuses(sim: DiscordSimulator, route: str, method: str) -> list[int]:
    return [r.status for r in sim.requests if r.route == route and r.method == method]


async def test_a_bucket_is_waited_for_before_sending_never_after_a_429(
    sim: DiscordSimulator, client: tuple[HTTPClient, DiscordScheduler]
) -> None:
    http, scheduler = client
    sim.rate_limits["POST " + MESSAGES] = (3, 0.5)
    channel = sim.guild.text_channel_id
    await asyncio.gather(*(post(http, channel, str(i)) for i in range(10)))
    assert statuses(sim, MESSAGES, "POST") == [200] * 10
    assert sorted(m.content for m in sim.messages(channel)) == sorted(str(i) for i in range(10))
    assert scheduler.rate_limited == {}


async def test_the_global_budget_holds_across_routes_and_channels(sim: DiscordSimulator) -> None:
    # Discord's 50 per second, scaled down so the test is short: the simulator refuses the 11th in a second.
    point_discord_at(sim.rest_url, sim.gateway_url)
    sim.ratelimiter.global_limit = 10
    scheduler = DiscordScheduler(LocalTrafficState(), per_second=9)
    http = HTTPClient(asyncio.get_running_loop(), http_trace=scheduler.trace_config())
    scheduler.install(http)
    await http.static_login(sim.token)
    try:
        channel = sim.guild.text_channel_id
        calls = [http.request(Route("GET", "/users/@me")) for _ in range(15)]
        calls += [post(http, channel, str(i)) for i in range(5)]
        await asyncio.gather(*calls)
    finally:
        await http.close()
    assert len(sim.requests) == 21
    assert [r.status for r in sim.requests if r.status == 429] == []


async def test_without_the_scheduler_the_same_traffic_draws_global_429s(sim: DiscordSimulator) -> None:
    # The failure the scheduler exists for, shown on discord.py alone.
    point_discord_at(sim.rest_url, sim.gateway_url)
    sim.ratelimiter.global_limit = 10
    http = HTTPClient(asyncio.get_running_loop())
    await http.static_login(sim.token)
    try:
        await asyncio.gather(*(http.request(Route("GET", "/users/@me")) for _ in range(15)))
    finally:
        await http.close()
    assert any(r.status == 429 for r in sim.requests)


async def test_waiting_requests_go_most_important_first(
    sim: DiscordSimulator, client: tuple[HTTPClient, DiscordScheduler]
) -> None:
    http, _ = client
    channel = sim.guild.text_channel_id
    sim.rate_limits["POST " + MESSAGES] = (1, 0.3)  # one at a time: everything after the first waits
    await post(http, channel, "first")

    async def send(level: Priority, content: str) -> None:
        with priority(level):
            await post(http, channel, content)

    tasks = []
    for level, content in [(Priority.CARD, "card"), (Priority.NORMAL, "normal"), (Priority.URGENT, "urgent")]:
        tasks.append(asyncio.create_task(send(level, content)))
        await asyncio.sleep(0.01)  # they arrive in this order
    await asyncio.gather(*tasks)
    assert [m.content for m in sim.messages(channel)] == ["first", "urgent", "normal", "card"]
    assert statuses(sim, MESSAGES, "POST") == [200] * 4


def editor(http: HTTPClient, route: Route, shown: list[str]) -> Callable[[str], Callable[[], Awaitable[Any]]]:
    def edit(content: str) -> Callable[[], Awaitable[Any]]:
        async def send() -> Any:
            shown.append(content)  # rendered when its turn comes
            return await http.request(route, json={"content": content})

        return send

    return edit


async def test_card_edits_waiting_for_the_bucket_together_cost_one_request_showing_the_latest(
    sim: DiscordSimulator,
) -> None:
    point_discord_at(sim.rest_url, sim.gateway_url)
    scheduler = DiscordScheduler(LocalTrafficState(), card_settle=0.0)
    http = HTTPClient(asyncio.get_running_loop(), http_trace=scheduler.trace_config())
    scheduler.install(http)
    await http.static_login(sim.token)
    try:
        channel = sim.guild.text_channel_id
        card = await post(http, channel, "queued")
        sim.rate_limits["PATCH " + MESSAGE] = (1, 0.5)
        route = Route("PATCH", MESSAGE, channel_id=channel, message_id=card["id"])
        shown: list[str] = []
        edit = editor(http, route, shown)

        scheduler.coalesce(("card", card["id"]), route, edit("generating"))  # goes at once
        await sim.wait_for(lambda: statuses(sim, MESSAGE, "PATCH"))
        for state in ("downloading", "posting", "delivered"):  # wait for the bucket together
            scheduler.coalesce(("card", card["id"]), route, edit(state))
        await sim.wait_for(lambda: len(statuses(sim, MESSAGE, "PATCH")) == 2)
        await asyncio.sleep(0.7)  # nothing more is coming
    finally:
        await scheduler.close(grace=1.0)
        await http.close()
    assert shown == ["generating", "delivered"]
    assert statuses(sim, MESSAGE, "PATCH") == [200, 200]
    message = sim.message(int(card["id"]))
    assert message is not None
    assert message.content == "delivered"


async def test_a_card_edit_settles_a_moment_so_a_job_moving_on_quickly_costs_one_edit(
    sim: DiscordSimulator, client: tuple[HTTPClient, DiscordScheduler]
) -> None:
    http, scheduler = client  # the default: edits settle for a second
    channel = sim.guild.text_channel_id
    card = await post(http, channel, "queued")
    route = Route("PATCH", MESSAGE, channel_id=channel, message_id=card["id"])
    shown: list[str] = []
    edit = editor(http, route, shown)
    for state in ("finished", "downloading", "delivered"):  # a job that is done, fetched and posted at once
        scheduler.coalesce(("card", card["id"]), route, edit(state))
        await asyncio.sleep(0.1)
    await sim.wait_for(lambda: statuses(sim, MESSAGE, "PATCH"), timeout=5)
    await asyncio.sleep(0.3)
    assert shown == ["delivered"]
    assert statuses(sim, MESSAGE, "PATCH") == [200]


async def test_a_429_that_happens_anyway_is_obeyed_counted_and_holds_the_bucket(
    sim: DiscordSimulator, client: tuple[HTTPClient, DiscordScheduler]
) -> None:
    http, scheduler = client
    channel = sim.guild.text_channel_id
    await post(http, channel, "learn the bucket")
    sim.inject_fault("POST", MESSAGES, 429, retry_after=0.4)
    sending = asyncio.create_task(post(http, channel, "a"))
    await sim.wait_for(lambda: any(r.status == 429 for r in sim.requests))
    await post(http, channel, "b")
    await sending
    posts = [r for r in sim.requests if r.route == MESSAGES and r.method == "POST"]
    assert [r.status for r in posts] == [200, 429, 200, 200]
    # Nothing more went to that bucket until Discord's wait was over: no tight retry loop, no pile-up behind it.
    assert min(r.started for r in posts[2:]) - posts[1].finished >= 0.35
    assert sorted(m.content for m in sim.messages(channel)) == ["a", "b", "learn the bucket"]
    assert scheduler.rate_limited == {"user": 1}


async def test_a_global_429_holds_every_route(sim: DiscordSimulator) -> None:
    point_discord_at(sim.rest_url, sim.gateway_url)
    state = LocalTrafficState()
    scheduler = DiscordScheduler(state)
    http = HTTPClient(asyncio.get_running_loop(), http_trace=scheduler.trace_config())
    scheduler.install(http)
    await http.static_login(sim.token)
    try:
        channel = sim.guild.text_channel_id
        sim.inject_fault("POST", MESSAGES, 429, retry_after=0.4, global_=True)
        sending = asyncio.create_task(post(http, channel, "a"))
        await sim.wait_for(lambda: any(r.status == 429 for r in sim.requests))
        await asyncio.sleep(0.05)
        # The hold is in the shared state, where another process using the same token would see it too (within
        # this process discord.py holds its own requests as well).
        wait, blocker = await state.take([Window(GLOBAL_KEY, 1000, 1.0)])
        assert blocker == GLOBAL_KEY
        assert 0.2 < wait <= 0.4
        await http.request(Route("GET", "/users/@me"))  # another route entirely
        await sending
    finally:
        await scheduler.close(grace=1.0)
        await http.close()
    limited = next(r for r in sim.requests if r.status == 429)
    other = next(r for r in sim.requests if r.route == "/users/@me" and r.started > limited.started)
    assert other.started - limited.finished >= 0.35
    assert scheduler.rate_limited == {"global": 1}


async def test_discord_py_s_own_bucket_wait_is_replaced_so_a_caller_is_not_held_after_its_request(
    sim: DiscordSimulator, client: tuple[HTTPClient, DiscordScheduler]
) -> None:
    # discord.py alone returns the request that empties a bucket only after the bucket resets (it sleeps in the
    # bucket's exit); here the caller gets its answer at once and only the *next* request waits.
    http, _ = client
    sim.rate_limits["POST " + MESSAGES] = (2, 30.0)
    channel = sim.guild.text_channel_id
    await post(http, channel, "one")
    await asyncio.wait_for(post(http, channel, "two"), timeout=5.0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(post(http, channel, "three"), timeout=1.0)
    assert statuses(sim, MESSAGES, "POST") == [200, 200]


async def test_an_unexpected_error_while_granting_turns_delays_requests_but_never_strands_them(
    sim: DiscordSimulator,
) -> None:
    class Stumbling(LocalTrafficState):
        stumbles = 1

        async def take(self, windows: Any) -> tuple[float, str | None]:
            if self.stumbles:
                self.stumbles -= 1
                raise RuntimeError("unplanned")
            return await super().take(windows)

    point_discord_at(sim.rest_url, sim.gateway_url)
    scheduler = DiscordScheduler(Stumbling())
    http = HTTPClient(asyncio.get_running_loop(), http_trace=scheduler.trace_config())
    scheduler.install(http)
    try:
        await asyncio.wait_for(http.static_login(sim.token), timeout=5)  # its request waits out the error
        await asyncio.wait_for(post(http, sim.guild.text_channel_id, "still sent"), timeout=5)
    finally:
        await scheduler.close(grace=1.0)
        await http.close()
    assert statuses(sim, MESSAGES, "POST") == [200]


async def test_a_request_arriving_while_the_state_answers_for_another_is_not_lost(sim: DiscordSimulator) -> None:
    """A shared state answers from a database: while it does, other requests come and go. One that arrived then,
    more important than the one being asked for, must still get its turn (it once lost its place for good)."""

    class SlowState(LocalTrafficState):
        async def take(self, windows: Any) -> tuple[float, str | None]:
            await asyncio.sleep(0.05)  # a round trip to the database
            return await super().take(windows)

    point_discord_at(sim.rest_url, sim.gateway_url)
    scheduler = DiscordScheduler(SlowState(), card_settle=0.0)
    http = HTTPClient(asyncio.get_running_loop(), http_trace=scheduler.trace_config())
    scheduler.install(http)
    channel = sim.guild.text_channel_id
    try:
        await http.static_login(sim.token)

        async def send(level: Priority, content: str) -> None:
            with priority(level):
                await post(http, channel, content)

        card = asyncio.create_task(send(Priority.CARD, "first, less important"))
        await asyncio.sleep(0.02)  # the scheduler is asking the state about it now
        urgent = asyncio.create_task(send(Priority.URGENT, "second, more important"))
        await asyncio.wait_for(asyncio.gather(card, urgent), timeout=5)
    finally:
        await scheduler.close(grace=1.0)
        await http.close()
    assert sorted(m.content for m in sim.messages(channel)) == ["first, less important", "second, more important"]

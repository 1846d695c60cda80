"""The provider pacer: it finds the key's rate (faster while answers come back, a cut on each 429), respects an
operator's cap, and gives scarce turns to the most useful requests first."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.provider.errors import RateLimited
from bot.traffic.provider import PacerConfig, ProviderPacer, Urgency
from bot.traffic.state import LocalTrafficState


async def answer(pacer: ProviderPacer, urgency: Urgency = Urgency.NOW, *, limited: bool = False) -> None:
    """One request through the pacer; `limited` makes the provider answer 429."""
    async with pacer.turn(urgency):
        await asyncio.sleep(0)
        if limited:
            raise RateLimited("429")


async def crowd(pacer: ProviderPacer, n: int) -> None:
    """`n` requests waiting together (so the pacer is the bottleneck: every answer may raise the pace)."""
    await asyncio.gather(*(answer(pacer) for _ in range(n)))


async def test_the_pace_grows_while_answers_come_back_under_load() -> None:
    pacer = ProviderPacer(LocalTrafficState(), PacerConfig(start=50.0))
    await crowd(pacer, 60)
    # Before any 429 each answer adds half a request per second (all but the last came back with others waiting).
    assert pacer.rate == pytest.approx(50.0 + 0.5 * 59, abs=1.0)
    assert pacer.limited == 0


async def test_no_growth_without_demand() -> None:
    pacer = ProviderPacer(LocalTrafficState(), PacerConfig(start=50.0))
    for _ in range(20):
        await answer(pacer)  # one at a time: the pace is not what holds anyone back
    assert pacer.rate == 50.0


async def test_a_429_cuts_the_pace_once_per_round_trip_then_it_grows_additively() -> None:
    pacer = ProviderPacer(LocalTrafficState(), PacerConfig(start=100.0, cut=0.5))

    async def limited_together() -> None:
        # Three requests sent before any 429 came back: one congestion, one cut.
        async with pacer.turn(Urgency.NOW), pacer.turn(Urgency.NOW), pacer.turn(Urgency.NOW):
            pass
        for _ in range(3):
            with pytest.raises(RateLimited):
                await answer(pacer, limited=True)

    await limited_together()
    # Each of those three was sent after the previous one's cut, so they cut in turn: 100 → 50 → 25 → 12.5.
    assert pacer.limited == 3
    assert pacer.rate == pytest.approx(12.5)
    before = pacer.rate
    await crowd(pacer, 30)
    # After a cut, growth is additive: about `step` per second of answers, i.e. step / rate per answer.
    assert before < pacer.rate < before + 30 * 1.0 / before + 0.01


async def test_429s_of_requests_in_flight_together_cut_once() -> None:
    pacer = ProviderPacer(LocalTrafficState(), PacerConfig(start=100.0, cut=0.5))
    release = asyncio.Event()

    async def in_flight() -> None:
        async with pacer.turn(Urgency.NOW):
            await release.wait()
            raise RateLimited("429")

    tasks = [asyncio.create_task(in_flight()) for _ in range(5)]
    await asyncio.sleep(0.1)  # all five sent
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, RateLimited) for r in results)
    assert pacer.limited == 5
    assert pacer.rate == pytest.approx(50.0)  # one congestion, one cut


async def test_the_operator_cap_is_never_exceeded() -> None:
    pacer = ProviderPacer(LocalTrafficState(), PacerConfig(start=20.0, cap=24.0))
    await crowd(pacer, 40)
    assert pacer.rate == 24.0


async def test_the_pace_never_falls_below_its_floor() -> None:
    pacer = ProviderPacer(LocalTrafficState(), PacerConfig(start=20.0, floor=10.0, cut=0.1))
    for _ in range(3):
        with pytest.raises(RateLimited):
            await answer(pacer, limited=True)
    assert pacer.rate == 10.0


async def test_scarce_turns_go_to_submits_and_likely_done_polls_first() -> None:
    pacer = ProviderPacer(LocalTrafficState(), PacerConfig(start=5.0))  # one turn per 0.2 s
    order: list[str] = []

    async def request(name: str, urgency: Urgency) -> None:
        async with pacer.turn(urgency):
            order.append(name)

    await request("first", Urgency.NOW)  # uses up the burst: the rest wait for their turns
    tasks = [asyncio.create_task(request(f"early poll {i}", Urgency.LATER)) for i in range(3)]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(request(f"submit {i}", Urgency.NOW)) for i in range(3)]
    await asyncio.gather(*tasks)
    assert order == ["first", "submit 0", "submit 1", "submit 2", "early poll 0", "early poll 1", "early poll 2"]


async def test_no_more_requests_in_flight_than_allowed() -> None:
    pacer = ProviderPacer(LocalTrafficState(), PacerConfig(start=1000.0, max_in_flight=3))
    in_flight = most = 0

    async def slow() -> None:
        nonlocal in_flight, most
        async with pacer.turn(Urgency.NOW):
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1

    await asyncio.gather(*(slow() for _ in range(12)))
    assert most == 3


async def test_a_cancelled_waiter_gives_its_turn_back() -> None:
    pacer = ProviderPacer(LocalTrafficState(), PacerConfig(start=1000.0, max_in_flight=1))
    hold = asyncio.Event()

    async def holder() -> None:
        async with pacer.turn(Urgency.NOW):
            await hold.wait()

    first = asyncio.create_task(holder())
    await asyncio.sleep(0.01)
    waiting = asyncio.create_task(answer(pacer))
    await asyncio.sleep(0.01)
    waiting.cancel()
    hold.set()
    await first
    await asyncio.wait_for(answer(pacer), timeout=2.0)  # the turn the cancelled one would have had is free


class _StumblingState(LocalTrafficState):
    """A traffic state whose first `take` fails in a way nobody planned for."""

    def __init__(self) -> None:
        super().__init__()
        self.stumbles = 1

    async def take(self, windows: Any) -> tuple[float, str | None]:
        if self.stumbles:
            self.stumbles -= 1
            raise RuntimeError("unplanned")
        return await super().take(windows)


async def test_an_unexpected_error_while_granting_turns_delays_requests_but_never_strands_them() -> None:
    pacer = ProviderPacer(_StumblingState(), PacerConfig(start=50.0))
    await asyncio.wait_for(crowd(pacer, 3), timeout=5)  # granted after the pause that follows the error


async def test_a_more_urgent_request_arriving_while_the_state_answers_gets_the_turn_and_none_is_lost() -> None:
    class SlowState(LocalTrafficState):
        async def take(self, windows: Any) -> tuple[float, str | None]:
            await asyncio.sleep(0.05)  # a round trip to the database, while others come and go
            return await super().take(windows)

    pacer = ProviderPacer(SlowState(), PacerConfig(start=50.0))
    order: list[str] = []

    async def ask(urgency: Urgency, name: str) -> None:
        async with pacer.turn(urgency):
            order.append(name)

    later = asyncio.create_task(ask(Urgency.LATER, "later"))
    await asyncio.sleep(0.02)  # the pacer is asking the state for the first turn now
    now = asyncio.create_task(ask(Urgency.NOW, "now"))
    await asyncio.wait_for(asyncio.gather(later, now), timeout=5)
    assert order == ["now", "later"]

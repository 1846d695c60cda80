"""The in-process traffic state: sliding windows counted from each request's send, pending places, holds."""

from __future__ import annotations

import pytest

from bot.traffic.state import Learned, LocalTrafficState, Window


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_window_allows_limit_requests_then_says_when_the_oldest_leaves() -> None:
    clock = Clock()
    state = LocalTrafficState(clock)
    window = Window("w", 3, 1.0)
    for _ in range(3):
        assert await state.take([window]) == (0.0, None)
        await state.sent(["w"])
        clock.now += 0.1
    wait, blocker = await state.take([window])
    assert blocker == "w"
    assert wait == pytest.approx(0.7)  # the first was sent at 1000.0, it is 1000.3
    clock.now += 0.7
    assert await state.take([window]) == (0.0, None)


async def test_a_pending_request_counts_until_sent_and_its_window_starts_at_the_send() -> None:
    clock = Clock()
    state = LocalTrafficState(clock)
    window = Window("w", 2, 1.0)
    assert (await state.take([window]))[0] == 0.0
    assert (await state.take([window]))[0] == 0.0
    # Both given their turn but not sent yet (a busy event loop): still full, however long that takes.
    clock.now += 5.0
    wait, _ = await state.take([window])
    assert wait == pytest.approx(1.0)
    await state.sent(["w"])
    await state.sent(["w"])
    clock.now += 0.5
    assert (await state.take([window]))[0] == pytest.approx(0.5)  # counted from the sends, not the turns


async def test_a_cancelled_place_is_given_back() -> None:
    state = LocalTrafficState(Clock())
    window = Window("w", 1, 10.0)
    assert (await state.take([window]))[0] == 0.0
    assert (await state.take([window]))[0] > 0
    await state.cancel(["w"])
    assert (await state.take([window]))[0] == 0.0


async def test_nothing_is_counted_unless_every_window_has_room() -> None:
    clock = Clock()
    state = LocalTrafficState(clock)
    wide, narrow = Window("global", 10, 1.0), Window("bucket", 1, 5.0)
    await state.take([wide, narrow])
    await state.sent(["global", "bucket"])
    wait, blocker = await state.take([wide, narrow])
    assert blocker == "bucket"
    assert wait == pytest.approx(5.0)
    # The refused request took no place in the global window.
    for _ in range(9):
        assert (await state.take([wide]))[0] == 0.0


async def test_a_hold_stops_a_key_until_it_ends_and_a_shorter_one_does_not_shorten_it() -> None:
    clock = Clock()
    state = LocalTrafficState(clock)
    window = Window("global", 50, 1.0)
    await state.hold("global", 2.0)
    await state.hold("global", 0.5)
    assert await state.take([window]) == (pytest.approx(2.0), "global")
    clock.now += 2.0
    assert await state.take([window]) == (0.0, None)


async def test_learned_buckets_and_values_are_kept() -> None:
    state = LocalTrafficState(Clock())
    assert await state.learned("POST /x") is None
    await state.learn("POST /x", Learned("abc", 5, 5.0))
    assert await state.learned("POST /x") == Learned("abc", 5, 5.0)
    assert await state.update("n", lambda v: (v or 0) + 1) == 1
    assert await state.update("n", lambda v: (v or 0) + 1) == 2

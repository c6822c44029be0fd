"""Per-source concurrency: how many requests go at once, and how AIMD moves that number.

`FixedLimit(n)` lets exactly n requests be in flight and holds the rest in order.
`AdaptiveLimit` starts at `initial`, doubles per healthy window of answers while in slow start,
then adds one per healthy window and halves on trouble (a 429/5xx/timeout, or a window whose
median answer is much slower than the fastest seen), between 1 and `ceiling`.
"""

from __future__ import annotations

import asyncio

import pytest

from scanhub._concurrency import AdaptiveLimit, FixedLimit

FAST = 0.01  # seconds: a healthy answer


async def fill(lim: FixedLimit) -> None:
    """Take every free slot (a busy source)."""
    while lim.in_flight < lim.limit:
        await lim.acquire()


async def answers(
    lim: FixedLimit,
    n: int,
    *,
    trouble: bool = False,
    latency: float | None = FAST,
    busy: bool = True,
) -> None:
    """`n` answers come back; a busy source sends a new request for each free slot."""
    for _ in range(n):
        lim.release(trouble=trouble, latency=latency)
        if busy:
            await fill(lim)


async def window(lim: AdaptiveLimit, **kw: object) -> None:
    """One window: as many answers as the limit."""
    await answers(lim, lim.limit, **kw)  # type: ignore[arg-type]


def held(task: asyncio.Task[None]) -> bool:
    return not task.done()


# --- FixedLimit: sent or held ------------------------------------------------------------------


async def test_fixed_limit_sends_n_and_holds_the_next_until_one_returns() -> None:
    lim = FixedLimit(2)
    await lim.acquire()
    await lim.acquire()
    third = asyncio.create_task(lim.acquire())
    await asyncio.sleep(0)
    assert held(third) and lim.in_flight == 2
    lim.release()
    await asyncio.wait_for(third, 1)
    assert lim.in_flight == 2


async def test_held_requests_go_in_the_order_they_asked() -> None:
    lim = FixedLimit(1)
    await lim.acquire()
    order: list[int] = []

    async def ask(i: int) -> None:
        await lim.acquire()
        order.append(i)

    tasks = [asyncio.create_task(ask(i)) for i in range(4)]
    await asyncio.sleep(0)
    for expected in range(4):
        lim.release()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert order == list(range(expected + 1))
    await asyncio.gather(*tasks)


async def test_one_release_lets_exactly_one_held_request_go() -> None:
    lim = FixedLimit(1)
    await lim.acquire()
    waiting = [asyncio.create_task(lim.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    lim.release()
    for _ in range(3):
        await asyncio.sleep(0)
    assert [t.done() for t in waiting] == [True, False, False]
    assert lim.in_flight == 1
    for t in waiting:
        t.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


async def test_a_cancelled_waiter_does_not_take_a_slot() -> None:
    lim = FixedLimit(1)
    await lim.acquire()
    gone = asyncio.create_task(lim.acquire())
    stays = asyncio.create_task(lim.acquire())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    lim.release()
    await asyncio.wait_for(stays, 1)
    assert lim.in_flight == 1


async def test_a_waiter_woken_then_cancelled_passes_its_turn_on() -> None:
    """The slot freed for a waiter that is cancelled before it runs goes to the next one,
    not nowhere (else a request waits forever beside a free slot)."""
    lim = FixedLimit(1)
    await lim.acquire()
    first = asyncio.create_task(lim.acquire())
    second = asyncio.create_task(lim.acquire())
    await asyncio.sleep(0)
    lim.release()  # wakes `first` ...
    first.cancel()  # ... which is cancelled before it runs
    await asyncio.gather(first, return_exceptions=True)
    await asyncio.wait_for(second, 1)
    assert lim.in_flight == 1


@pytest.mark.parametrize("n", [0, -3])
def test_a_fixed_limit_below_one_is_refused(n: int) -> None:
    with pytest.raises(ValueError, match=r"^concurrency must be at least 1$"):
        FixedLimit(n)


async def test_a_fixed_limit_learns_nothing() -> None:
    lim = FixedLimit(1)
    await lim.acquire()
    lim.release(trouble=True, latency=9.0)
    assert lim.limit == 1 and not lim.adaptive and AdaptiveLimit().adaptive


# --- AdaptiveLimit: bounds ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("initial", "ceiling", "start", "top"),
    [(16, 128, 16, 128), (0, 128, 1, 128), (-5, 8, 1, 8), (200, 64, 64, 64), (4, 0, 1, 1)],
)
def test_the_start_and_ceiling_are_clamped(
    initial: int, ceiling: int, start: int, top: int
) -> None:
    lim = AdaptiveLimit(initial=initial, ceiling=ceiling)
    assert (lim.limit, lim.ceiling) == (start, top)
    assert lim.slow_start and not lim.history


async def test_the_default_start_is_sixteen_below_a_ceiling_of_128() -> None:
    lim = AdaptiveLimit()
    assert (lim.limit, lim.ceiling, lim.latency_factor) == (16, 128, 3.0)


# --- AdaptiveLimit: slow start and additive increase ------------------------------------------


async def test_slow_start_doubles_per_healthy_window_up_to_the_ceiling() -> None:
    lim = AdaptiveLimit(initial=2, ceiling=20)
    await fill(lim)
    seen = []
    for _ in range(6):
        await window(lim)
        seen.append(lim.limit)
    assert seen == [4, 8, 16, 20, 20, 20]
    assert list(lim.history) == [
        (4, "increase"),
        (8, "increase"),
        (16, "increase"),
        (20, "increase"),
    ]


async def test_the_limit_moves_only_when_a_whole_window_has_answered() -> None:
    lim = AdaptiveLimit(initial=4)
    await fill(lim)
    await answers(lim, 3)
    assert lim.limit == 4
    await answers(lim, 1)
    assert lim.limit == 8
    await answers(lim, 7)
    assert lim.limit == 8
    await answers(lim, 1)
    assert lim.limit == 16


async def test_a_grown_limit_lets_more_requests_go_at_once() -> None:
    lim = AdaptiveLimit(initial=2)
    await fill(lim)
    await window(lim)
    assert lim.limit == 4 and lim.in_flight == 4  # two more went without waiting


async def test_after_trouble_it_grows_by_one_per_healthy_window() -> None:
    lim = AdaptiveLimit(initial=16)
    await fill(lim)
    await answers(lim, 1, trouble=True)
    assert lim.limit == 8 and not lim.slow_start
    await answers(lim, 7)  # the rest of the troubled window: no growth
    assert lim.limit == 8
    grown = []
    for _ in range(3):
        await window(lim)
        grown.append(lim.limit)
    assert grown == [9, 10, 11]
    assert list(lim.history) == [
        (8, "decrease"),
        (9, "increase"),
        (10, "increase"),
        (11, "increase"),
    ]


async def at_most(lim: FixedLimit, n: int, k: int) -> None:
    """`n` answers while never more than `k` requests are in flight at once."""
    for _ in range(n):
        while lim.in_flight < k:
            await lim.acquire()
        lim.release(latency=FAST)


async def test_an_idle_source_keeps_its_limit() -> None:
    """Growth needs the room to have been used: a window in which no more than 2 of 8 slots
    were ever taken does not grow."""
    lim = AdaptiveLimit(initial=8)
    await at_most(lim, 8, 2)
    assert lim.limit == 8 and not lim.history


@pytest.mark.parametrize(("peak", "grows"), [(7, True), (6, False)])
async def test_growth_needs_half_the_limit_in_flight_at_some_moment(peak: int, grows: bool) -> None:
    """A window of 16 answers during which at most `peak` requests were out at once: 7 (+ one)
    is half of 16, so the limit grows; 6 is not."""
    lim = AdaptiveLimit(initial=16)
    await at_most(lim, 16, peak)
    assert lim.limit == (32 if grows else 16)


async def test_answers_that_come_back_in_one_burst_still_count_as_a_busy_window() -> None:
    """Every slot was taken, then all answers came back before anything new was sent: the
    room was used, so the limit grows."""
    lim = AdaptiveLimit(initial=8)
    await fill(lim)
    await answers(lim, 8, busy=False)
    assert lim.limit == 16 and lim.in_flight == 0


# --- AdaptiveLimit: multiplicative decrease ------------------------------------------------------


async def test_trouble_halves_the_limit_at_once_and_once_per_window() -> None:
    lim = AdaptiveLimit(initial=16)
    await fill(lim)
    await answers(lim, 1, trouble=True)
    assert lim.limit == 8
    await answers(lim, 5, trouble=True, busy=False)  # a burst of 429s is one signal
    assert lim.limit == 8
    assert list(lim.history) == [(8, "decrease")]


async def test_trouble_in_each_window_keeps_halving_down_to_one() -> None:
    lim = AdaptiveLimit(initial=16)
    await fill(lim)
    seen = []
    for _ in range(6):
        await answers(lim, 1, trouble=True, busy=False)
        await answers(lim, lim.limit - 1, busy=False)  # the rest of that window
        seen.append(lim.limit)
        await fill(lim)
    assert seen == [8, 4, 2, 1, 1, 1]
    assert [x for x, _ in lim.history] == [8, 4, 2, 1]  # no change, no entry


async def test_an_odd_limit_halves_downwards() -> None:
    lim = AdaptiveLimit(initial=3)
    await fill(lim)
    await answers(lim, 1, trouble=True)
    assert lim.limit == 1


async def test_a_window_of_slow_answers_is_trouble_before_any_error() -> None:
    """The server queueing: the median answer is more than 3x the fastest seen."""
    lim = AdaptiveLimit(initial=4)
    await fill(lim)
    await window(lim, latency=0.02)
    assert lim.limit == 8
    await window(lim, latency=0.5)
    assert lim.limit == 4 and not lim.slow_start
    assert lim.history[-1] == (4, "decrease")
    await window(lim, latency=0.02)
    assert lim.limit == 5  # additive from now on


async def test_one_slow_answer_alone_is_not_trouble() -> None:
    lim = AdaptiveLimit(initial=8)
    await fill(lim)
    await answers(lim, 7, latency=0.02)
    await answers(lim, 1, latency=5.0)
    assert lim.limit == 16


async def test_half_the_window_slow_is_trouble() -> None:
    lim = AdaptiveLimit(initial=4)
    await fill(lim)
    await answers(lim, 2, latency=0.02)
    await answers(lim, 2, latency=0.5)
    assert lim.limit == 2


@pytest.mark.parametrize(
    ("slow", "decreases"),
    [(0.06, False), (0.0601, True), (0.03, False)],
    ids=["exactly-3x", "just-over-3x", "under-3x"],
)
async def test_slow_means_more_than_latency_factor_times_the_fastest(
    slow: float, decreases: bool
) -> None:
    lim = AdaptiveLimit(initial=2)
    await fill(lim)
    await window(lim, latency=0.02)
    assert lim.limit == 4
    await window(lim, latency=slow)
    assert lim.limit == (2 if decreases else 8)


@pytest.mark.parametrize(("slow", "decreases"), [(0.05, False), (0.0501, True)])
async def test_answers_of_50_ms_or_less_are_never_slow(slow: float, decreases: bool) -> None:
    lim = AdaptiveLimit(initial=2)
    await fill(lim)
    await window(lim, latency=0.001)
    await window(lim, latency=slow)
    assert lim.limit == (2 if decreases else 8)


async def test_the_fastest_answer_is_remembered_across_windows() -> None:
    lim = AdaptiveLimit(initial=2)
    await fill(lim)
    await window(lim, latency=0.02)
    await window(lim, latency=0.04)  # not 3x the fastest: grows
    assert lim.limit == 8
    await window(lim, latency=0.07)  # 3.5x the fastest (0.02), not of the last window
    assert lim.limit == 4


async def test_answers_without_a_latency_or_of_zero_say_nothing_about_speed() -> None:
    lim = AdaptiveLimit(initial=2)
    await fill(lim)
    await window(lim, latency=0.0)  # a cached answer: not the fastest the server can do
    await window(lim, latency=None)
    assert lim.limit == 8
    await window(lim, latency=0.1)
    assert lim.limit == 16


async def test_trouble_and_slowness_in_one_window_halve_once() -> None:
    lim = AdaptiveLimit(initial=8)
    await fill(lim)
    await window(lim, latency=0.02)
    assert lim.limit == 16
    await answers(lim, 1, trouble=True, latency=0.5, busy=False)
    await answers(lim, 7, latency=0.5, busy=False)
    assert lim.limit == 8
    assert [x for x, _ in lim.history] == [16, 8]


async def test_the_history_keeps_the_last_32_changes_newest_last() -> None:
    lim = AdaptiveLimit(initial=4, ceiling=1000)
    await fill(lim)
    for _ in range(20):
        await answers(lim, 1, trouble=True, busy=False)
        await answers(lim, lim.limit, busy=False)
        await fill(lim)
        await window(lim)
    assert len(lim.history) == 32
    assert lim.history[-1] == (lim.limit, "increase")


# --- details a user of the limit relies on --------------------------------------------------------


async def test_a_cancelled_waiter_ends_cancelled() -> None:
    lim = FixedLimit(1)
    await lim.acquire()
    gone = asyncio.create_task(lim.acquire())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    assert gone.cancelled()


async def test_an_answer_given_back_without_details_is_a_healthy_one() -> None:
    lim = AdaptiveLimit(initial=2)
    await fill(lim)
    for _ in range(2):
        lim.release()
        await fill(lim)
    assert lim.limit == 4


async def test_room_made_by_growth_lets_as_many_held_requests_go() -> None:
    lim = AdaptiveLimit(initial=1)
    await lim.acquire()
    waiting = [asyncio.create_task(lim.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    lim.release(latency=FAST)  # a healthy window of one: the limit doubles to 2
    for _ in range(3):
        await asyncio.sleep(0)
    assert lim.limit == 2
    assert [t.done() for t in waiting] == [True, True, False]
    waiting[2].cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


async def test_slow_start_ends_for_good_on_trouble_or_queueing() -> None:
    troubled = AdaptiveLimit(initial=4)
    await fill(troubled)
    await answers(troubled, 1, trouble=True)
    assert troubled.slow_start is False
    queued = AdaptiveLimit(initial=2)
    await fill(queued)
    await window(queued, latency=0.02)
    await window(queued, latency=0.5)
    assert queued.slow_start is False and queued.history[-1] == (2, "decrease")


async def test_queueing_halves_down_to_one_not_two() -> None:
    lim = AdaptiveLimit(initial=2, ceiling=2)
    await fill(lim)
    await window(lim, latency=0.02)
    await window(lim, latency=0.5)
    assert lim.limit == 1


@pytest.mark.parametrize(("peak", "grows"), [(6, True), (5, False)])
async def test_half_of_an_odd_limit_rounds_down(peak: int, grows: bool) -> None:
    lim = AdaptiveLimit(initial=15)
    await at_most(lim, 15, peak)
    assert lim.limit == (30 if grows else 15)

"""The sliding-window rate limit: a request is sent at once or held until the window has room.

A fake clock and sleep (conftest `FakeSleep`) record every wait; `sent` is when each request
went out. The invariant of tests/test_transport.py (no window of `period` ever holds more than
`max_requests`) is checked here for sends that are not all at the same instant.
"""

from __future__ import annotations

import asyncio

import pytest

from scanhub import RateLimit
from scanhub._ratelimit import SlidingWindowLimiter

from .conftest import FakeSleep


def limiter(fake: FakeSleep, n: int, period: float, guard: float = 0.0) -> SlidingWindowLimiter:
    return SlidingWindowLimiter(RateLimit(n, period, guard), clock=fake.clock, sleep=fake)


async def send_at(lim: SlidingWindowLimiter, fake: FakeSleep, when: float) -> float:
    """Ask to send at `when` (the clock moves there first); returns when it went out."""
    fake.now = max(fake.now, when)
    await lim.acquire()
    return fake.now


async def test_a_request_with_room_goes_at_once(fake_sleep: FakeSleep) -> None:
    lim = limiter(fake_sleep, 3, 10.0)
    sent = [await send_at(lim, fake_sleep, 1000.0 + t) for t in (0.0, 2.0, 4.0)]
    assert sent == [1000.0, 1002.0, 1004.0] and fake_sleep.slept == []
    assert lim.delay() > 0  # and the window is now full


async def test_a_request_is_held_until_the_oldest_send_leaves_the_window(
    fake_sleep: FakeSleep,
) -> None:
    """Sends at 0 and 3 (2 per 10 s): the third, asked at 4, waits for the send at 0 to leave,
    not the one at 3."""
    lim = limiter(fake_sleep, 2, 10.0)
    t0 = fake_sleep.now
    sent = [await send_at(lim, fake_sleep, t0 + t) for t in (0.0, 3.0, 4.0, 4.0)]
    assert [s - t0 for s in sent] == [0.0, 3.0, 10.0, 13.0]
    assert fake_sleep.slept == [6.0, 3.0]


async def test_the_guard_holds_a_request_that_would_arrive_inside_the_servers_window(
    fake_sleep: FakeSleep,
) -> None:
    """2 per 10 s with half a second of guard: at 10.2 s after a full burst the server may
    still count both, so the request waits the remaining 0.3 s."""
    lim = limiter(fake_sleep, 2, 10.0, guard=0.5)
    t0 = fake_sleep.now
    await send_at(lim, fake_sleep, t0)
    await send_at(lim, fake_sleep, t0)
    assert await send_at(lim, fake_sleep, t0 + 10.2) == pytest.approx(t0 + 10.5)
    assert fake_sleep.slept == [pytest.approx(0.3)]


async def test_a_wait_shorter_than_a_second_is_still_waited(fake_sleep: FakeSleep) -> None:
    lim = limiter(fake_sleep, 1, 1.0)
    t0 = fake_sleep.now
    await send_at(lim, fake_sleep, t0)
    assert await send_at(lim, fake_sleep, t0 + 0.75) == pytest.approx(t0 + 1.0)
    assert fake_sleep.slept == [pytest.approx(0.25)]


async def test_a_send_exactly_one_window_old_no_longer_counts(fake_sleep: FakeSleep) -> None:
    lim = limiter(fake_sleep, 1, 10.0, guard=0.5)
    t0 = fake_sleep.now
    await send_at(lim, fake_sleep, t0)
    assert await send_at(lim, fake_sleep, t0 + 10.5) == t0 + 10.5
    assert fake_sleep.slept == []


async def test_delay_says_how_long_a_request_would_wait(fake_sleep: FakeSleep) -> None:
    lim = limiter(fake_sleep, 2, 10.0, guard=0.5)
    t0 = fake_sleep.now
    assert lim.delay() == 0.0
    await send_at(lim, fake_sleep, t0)
    assert lim.delay() == 0.0
    await send_at(lim, fake_sleep, t0 + 4.0)
    assert lim.delay() == pytest.approx(6.5)
    fake_sleep.now = t0 + 10.5
    assert lim.delay() == 0.0  # the send at t0 has left the window


async def test_staggered_traffic_never_puts_more_than_n_into_a_window(
    fake_sleep: FakeSleep,
) -> None:
    lim = limiter(fake_sleep, 3, 10.0)
    t0 = fake_sleep.now
    asked = [t0 + x for x in (0.0, 1.0, 1.5, 2.0, 7.0, 11.0, 11.2, 12.0, 30.0, 30.1, 30.2, 30.3)]
    sent = [await send_at(lim, fake_sleep, t) for t in asked]
    for i, start in enumerate(sent):
        assert len([s for s in sent[i:] if s < start + 10.0]) <= 3
    # and no later than the window demands
    assert [s - t0 for s in sent] == pytest.approx(
        [0, 1, 1.5, 10, 11, 11.5, 20, 21, 30, 30.1, 31, 40]
    )


async def test_waiters_are_served_in_the_order_they_asked(fake_sleep: FakeSleep) -> None:
    lim = limiter(fake_sleep, 1, 10.0)
    order: list[int] = []

    async def ask(i: int) -> None:
        await lim.acquire()
        order.append(i)

    await asyncio.gather(*(ask(i) for i in range(4)))
    assert order == [0, 1, 2, 3]
    assert fake_sleep.slept == [10.0, 10.0, 10.0]


# --- the limit's own arguments ------------------------------------------------------------------


def test_iq_cloud_is_the_documented_limit() -> None:
    """vendor-notes: Sonatype Cloud allows 1,500 requests per IP per 5 minutes."""
    cloud = RateLimit.iq_cloud()
    assert (cloud.max_requests, cloud.period, cloud.guard) == (1500, 300.0, 0.5)


@pytest.mark.parametrize(
    ("n", "period", "guard"),
    [(1, 0.001, 0.0), (1, 1e-9, 0.0), (1500, 300.0, 0.5), (1, 1.0, 1e-9)],
)
def test_the_smallest_valid_limits_are_accepted(n: int, period: float, guard: float) -> None:
    assert RateLimit(n, period, guard).max_requests == n


@pytest.mark.parametrize(
    ("n", "period", "guard"),
    [(0, 1.0, 0.0), (-1, 1.0, 0.0), (1, 0.0, 0.0), (1, -1.0, 0.0), (1, 1.0, -1e-9)],
    ids=["no-requests", "negative-requests", "zero-period", "negative-period", "negative-guard"],
)
def test_a_limit_that_could_never_send_is_refused(n: int, period: float, guard: float) -> None:
    with pytest.raises(ValueError, match=r"^RateLimit needs max_requests") as err:
        RateLimit(n, period, guard)
    assert str(err.value) == "RateLimit needs max_requests >= 1, period > 0 and guard >= 0"


def test_a_limiter_holds_requests_in_one_event_loop_after_another() -> None:
    # A client with a RateLimit used by `asyncio.run` twice: the limiter's lock, bound to the
    # first loop where requests queued on it, refused the second ("bound to a different event
    # loop", a RuntimeError out of every request that had to wait).
    lim = SlidingWindowLimiter(RateLimit(2, 0.05, 0.0))

    async def burst() -> None:
        await asyncio.gather(*(lim.acquire() for _ in range(4)))

    asyncio.run(burst())
    asyncio.run(burst())

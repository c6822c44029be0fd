"""The broadcaster and its subscriptions against a log the test controls: what a subscriber is
given and in which order, when it falls behind and how it catches up from the store (a page at a
time, each id once), how it waits while the store is away, and what it filters. Every await is
bounded, so a subscriber that would wait for good fails the test instead of hanging it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

import scanhub.engine.broadcast as broadcast
from scanhub import Lifecycle, Scan, Vendor
from scanhub._changes import Change
from scanhub._errors import StoreUnavailable
from scanhub.engine import Broadcaster
from scanhub.engine.broadcast import PAGE, Subscription
from scanhub.store import Transition

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def change(tid: int | None, sid: str = "s") -> Change:
    item = Scan(Vendor.APPSECPLUS, "asp", sid, "a", Lifecycle.RUNNING, f"step {tid}")
    return Change(None, item, T0, id=tid)


class Log:
    """The part of a store the broadcaster reads: its log (ids 1..n), paged as the stores page
    it; `fail` holds errors the next reads raise, in order."""

    def __init__(self, n: int = 0) -> None:
        self.changes = [change(i) for i in range(1, n + 1)]
        self.fail: list[BaseException] = []
        self.reads: list[tuple[int, int | None]] = []
        self.followed_from: list[int] = []

    async def transitions(self, *, since: int = 0, limit: int | None = None) -> list[Transition]:
        self.reads.append((since, limit))
        if self.fail:
            raise self.fail.pop(0)
        found = [Transition(c.id or 0, c) for c in self.changes if (c.id or 0) > since]
        return found[:limit] if limit is not None else found

    async def last_id(self) -> int:
        return len(self.changes)

    async def follow(self, since: int) -> AsyncIterator[Change]:
        self.followed_from.append(since)
        for c in self.changes:
            if (c.id or 0) > since:
                yield c


def caster(log: Log, **kw: Any) -> Broadcaster:
    return Broadcaster(log, **kw)  # type: ignore[arg-type]


async def take(sub: Subscription, n: int) -> list[int | None]:
    async with asyncio.timeout(2):
        got = [await sub.next() for _ in range(n)]
    return [c.id if c is not None else None for c in got]


# --- the live path --------------------------------------------------------------------------------


async def test_a_subscriber_with_room_takes_offers_in_order_without_reading_the_store() -> None:
    log = Log()
    b = caster(log)
    sub = b.subscribe()
    assert (sub.position, sub.behind, sub.closed, sub.fell_behind) == (0, False, False, 0)
    for i in (1, 2, 3):
        sub.offer(change(i))
    assert await take(sub, 3) == [1, 2, 3]
    assert log.reads == [] and sub.fell_behind == 0 and sub.position == 3


async def test_a_subscription_iterates_until_it_is_told_to_stop() -> None:
    sub = caster(Log()).subscribe()
    sub.offer(change(1))
    sub.offer(change(2))
    got = []
    async with asyncio.timeout(2):
        async for c in sub:
            got.append(c.id)
            if len(got) == 2:
                break
    assert got == [1, 2]
    sub.close()
    async with asyncio.timeout(2):
        assert [c async for c in sub] == []


async def test_a_fresh_broadcaster_hands_out_the_first_change_of_an_empty_log() -> None:
    b = caster(Log())
    assert b.position == 0
    sub = b.subscribe()
    sub.offer(change(1))
    assert await take(sub, 1) == [1]


async def test_the_filter_passes_only_what_the_subscriber_wants_and_skips_the_rest() -> None:
    sub = caster(Log()).subscribe(wants=lambda c: c.after.id == "b")
    for i, sid in enumerate("abab", 1):
        sub.offer(change(i, sid))
    assert await take(sub, 2) == [2, 4]
    assert sub.position == 4


async def test_a_closed_subscription_takes_nothing_more() -> None:
    b = caster(Log())
    sub = b.subscribe()
    assert b.subscribers == 1
    sub.close()
    sub.offer(change(1))  # no error: ignored
    assert b.subscribers == 0 and sub.closed
    async with asyncio.timeout(2):
        assert await sub.next() is None


# --- falling behind and catching up --------------------------------------------------------------


async def test_the_default_room_is_ten_thousand_changes() -> None:
    log = Log(10_001)
    sub = caster(log).subscribe()
    for c in log.changes[:10_000]:
        sub.offer(c)
    assert sub.fell_behind == 0 and not sub.behind
    sub.offer(log.changes[10_000])
    assert sub.fell_behind == 1 and sub.behind


async def test_a_subscriber_that_falls_behind_reads_the_store_and_loses_nothing() -> None:
    log = Log(5)
    sub = caster(log, capacity=2).subscribe()
    for c in log.changes:
        sub.offer(c)  # the third overflows: the channel is emptied, the store is read instead
    assert sub.fell_behind == 1 and sub.behind is True
    assert sub.next_nowait() is None  # nothing at hand: the store must be read
    sub.offer(change(6))  # ignored while behind: the store has it
    assert sub.fell_behind == 1
    log.changes.append(change(6))
    assert await take(sub, 6) == [1, 2, 3, 4, 5, 6]
    assert log.reads == [(0, PAGE)]
    assert sub.behind is False
    sub.offer(change(7))  # caught up: back to the channel
    assert await take(sub, 1) == [7] and len(log.reads) == 1


async def test_each_time_it_falls_behind_is_counted() -> None:
    log = Log(6)
    sub = caster(log, capacity=1).subscribe()
    sub.offer(log.changes[0])
    sub.offer(log.changes[1])
    assert await take(sub, 2) == [1, 2]
    sub.offer(log.changes[2])
    sub.offer(log.changes[3])
    assert sub.fell_behind == 2


async def test_a_change_read_from_the_store_is_not_given_twice() -> None:
    log = Log(3)
    b = caster(log)
    sub = b.subscribe(since=0)
    b.position = 3  # the broadcaster is further: read the store first
    sub2 = b.subscribe(since=1)
    assert sub2.behind is True
    assert await take(sub2, 2) == [2, 3]
    sub2.offer(change(3))  # offered again by the live path: already had
    sub2.offer(change(4))
    assert await take(sub2, 1) == [4]
    assert sub.behind is False  # subscribed at 0 while the broadcaster was at 0


async def test_a_subscriber_starting_at_the_broadcasters_position_does_not_read_the_store() -> None:
    log = Log(3)
    b = caster(log)
    await b.start_position()
    sub = b.subscribe(since=3)
    assert sub.behind is False
    sub.offer(change(4))
    assert await take(sub, 1) == [4] and log.reads == []


async def test_a_long_way_behind_is_read_a_page_at_a_time_from_where_it_stands() -> None:
    log = Log(PAGE + 150)
    b = caster(log)
    b.position = PAGE + 150
    sub = b.subscribe(since=100)
    got = await take(sub, PAGE + 50)
    assert got == list(range(101, PAGE + 151))
    assert log.reads == [(100, PAGE), (PAGE + 100, PAGE)]
    assert sub.behind is False


async def test_while_the_store_is_away_it_waits_longer_each_time_and_stays_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []

    async def sleep(delay: float) -> None:
        waits.append(delay)

    monkeypatch.setattr(broadcast.asyncio, "sleep", sleep)
    log = Log(2)
    b = caster(log, capacity=1)
    b.position = 2
    sub = b.subscribe(since=0)
    log.fail = [StoreUnavailable("away") for _ in range(6)]
    for _ in range(6):
        await sub.catch_up()
        assert sub.behind is True
    assert waits == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    await sub.catch_up()  # back: read, and the next wait starts over
    assert await take(sub, 2) == [1, 2]
    sub.offer(change(3))
    sub.offer(change(4))  # no room: behind again
    log.fail = [StoreUnavailable("away again")]
    await sub.catch_up()
    assert waits[-1] == 0.5 and sub.behind is True


async def test_an_unexpected_error_while_reading_leaves_it_behind() -> None:
    log = Log(2)
    b = caster(log)
    b.position = 2
    sub = b.subscribe(since=0)
    log.fail = [RuntimeError("bug")]
    with pytest.raises(RuntimeError):
        await sub.catch_up()
    assert sub.behind is True
    assert await take(sub, 2) == [1, 2]


# --- the broadcaster's own task -------------------------------------------------------------------


async def test_the_broadcaster_follows_the_log_from_its_position_and_advances_it() -> None:
    log = Log(3)
    b = caster(log)
    assert await b.start_position() == 3
    sub = b.subscribe()
    log.changes += [change(4), change(5)]
    async with asyncio.timeout(2):
        await b.run()  # this log ends after what it has
    assert log.followed_from == [3] and b.position == 5
    assert await take(sub, 2) == [4, 5]
    b.close()
    assert sub.closed and b.subscribers == 0

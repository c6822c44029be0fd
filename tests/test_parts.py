"""The engine's parts on their own, with a fake clock and no sockets: the scheduler (pure), the
recorder (against a store that fails on demand), the broadcaster and the channel."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from scanhub import Lifecycle, MemoryStore, Scan, Vendor
from scanhub.engine import Broadcaster, Channel, ChannelClosed, Recorder, Scheduler
from scanhub.engine.recorder import Untrack
from scanhub.engine.scheduler import IN_FLIGHT, SCHEDULED
from scanhub.store import Committed, Observation, Outcome

T0 = datetime(2026, 11, 1, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def scheduler(clock: Clock, **kw: float) -> Scheduler:
    options = {"interval": 10.0, "max_interval": 60.0, "backoff": 2.0, **kw}
    return Scheduler(clock=clock, rng=random.Random(7), **options)  # type: ignore[arg-type]


# --- scheduler ----------------------------------------------------------------------------------


def test_the_first_round_is_spread_over_the_interval_for_many_items_and_less_for_few() -> None:
    clock = Clock()
    many = scheduler(clock)
    many.start(f"k{i}" for i in range(400))
    clock.now += 10.0
    assert len(many.pop_due()) == 400  # all within one interval...
    spread = scheduler(Clock())
    spread.start(f"k{i}" for i in range(400))
    assert spread.pop_due() == []  # ...but not at once
    few = scheduler(clock := Clock())
    few.start(["a", "b", "c", "d"])  # 4 of 200: over 4/200 of the interval (0.2 s)
    clock.now += 0.2
    assert sorted(few.pop_due()) == ["a", "b", "c", "d"]


def test_due_items_are_handed_out_once_and_come_back_after_their_interval() -> None:
    clock = Clock()
    s = scheduler(clock)
    s.start(["a"])
    clock.now += 10
    assert s.pop_due() == ["a"] and s.state("a") == IN_FLIGHT
    assert s.pop_due() == []  # in flight: not handed out again
    s.done("a", changed=True)
    assert s.state("a") == SCHEDULED and s.interval_of("a") == 10.0
    clock.now += 8.9
    assert s.pop_due() == []  # not before interval - 10 % jitter
    clock.now += 2.2
    assert s.pop_due() == ["a"]  # by interval + 10 % jitter


def test_quiet_items_back_off_up_to_the_cap_and_a_change_brings_them_back() -> None:
    clock = Clock()
    s = scheduler(clock)
    s.start(["a"])
    intervals = []
    for _ in range(5):
        clock.now += 100
        assert s.pop_due() == ["a"]
        s.done("a", changed=False)
        intervals.append(s.interval_of("a"))
    assert intervals == [20.0, 40.0, 60.0, 60.0, 60.0]  # x2 each quiet poll, capped at 60
    clock.now += 100
    s.pop_due()
    s.done("a", changed=True)
    assert s.interval_of("a") == 10.0


def test_a_held_item_is_parked_until_then_and_others_go_on() -> None:
    clock = Clock()
    s = scheduler(clock)
    s.start(["paused", "free"])
    clock.now += 10
    until = clock.now + 30
    got = s.pop_due(lambda key: until if key == "paused" else None)
    assert got == ["free"] and s.state("paused") == SCHEDULED
    clock.now = until - 0.01
    assert s.pop_due() == []
    clock.now = until + 1.0  # parked until then, spread over a second
    assert s.pop_due() == ["paused"]


def test_a_vendor_pause_after_a_poll_delays_the_next_one() -> None:
    clock = Clock()
    s = scheduler(clock)
    s.start(["a"])
    clock.now += 10
    s.pop_due()
    s.done("a", changed=True, wait_until=clock.now + 300)
    clock.now += 299
    assert s.pop_due() == []
    clock.now += 2
    assert s.pop_due() == ["a"]


def test_removed_and_rescheduled_entries_go_stale_and_poke_makes_an_item_due_now() -> None:
    clock = Clock()
    s = scheduler(clock)
    s.start(["a", "b", "c"])
    s.remove("b")
    assert "b" not in s and len(s) == 2
    assert s.poke("a") is True
    assert s.pop_due() == ["a"]  # due at once, the rest not yet
    assert s.poke("a") is False  # in flight
    assert s.poke("zzz") is False  # unknown
    clock.now += 10
    assert s.pop_due() == ["c"]  # b's entry was stale
    assert s.next_due() is None  # everything is in flight


def test_next_due_is_the_earliest_scheduled_and_add_is_soon() -> None:
    clock = Clock()
    s = scheduler(clock)
    assert s.next_due() is None
    s.add("a")
    due = s.next_due()
    assert due is not None and clock.now <= due <= clock.now + 1.0
    s.add("a")  # already there: unchanged
    assert s.next_due() == due and len(s) == 1


def test_the_scheduler_refuses_nonsense_settings() -> None:
    for bad in ({"interval": 0.0}, {"max_interval": -1.0}, {"backoff": 0.5}, {"jitter": 1.0}):
        with pytest.raises(ValueError, match="scheduler"):
            Scheduler(**bad)  # type: ignore[arg-type]


# --- recorder -----------------------------------------------------------------------------------


class FlakyStore(MemoryStore):
    """A memory store whose commits fail while `down` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.attempts: list[int] = []

    async def commit(self, observations: Sequence[Observation]) -> list[Committed]:
        self.attempts.append(len(observations))
        if self.down:
            raise ConnectionError("the database is away")
        return await super().commit(observations)


def seen(sid: str, lc: Lifecycle, minute: int, origin: str | None = None) -> Observation:
    item = Scan(Vendor.APPSECPLUS, "asp", sid, "a", lc, lc.value)
    return Observation(item.key, T0 + timedelta(minutes=minute), item, None, origin)


async def test_the_recorder_commits_in_order_in_batches() -> None:
    store = FlakyStore()
    recorder = Recorder(store, batch=3)
    task = asyncio.create_task(recorder.run())
    try:
        results = await recorder.commit(
            [seen(f"s{i}", Lifecycle.QUEUED, 0, "track") for i in range(7)]
        )
    finally:
        task.cancel()
    assert [r.outcome for r in results] == [Outcome.RECORDED] * 7
    assert [r.id for r in results] == list(range(1, 8))  # in the order given
    assert store.attempts == [3, 3, 1] and recorder.idle and recorder.last_id == 7


async def test_a_failing_store_holds_everything_pauses_polling_and_catches_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore()
    recorder = Recorder(store, max_pending=4, backoff=(0.01, 0.02))
    task = asyncio.create_task(recorder.run())
    try:
        await recorder.commit([seen("a", Lifecycle.QUEUED, 0, "track")])
        store.down = True
        pending = [
            recorder.submit(seen("a", lc, n))
            for n, lc in enumerate((Lifecycle.RUNNING, Lifecycle.RUNNING, Lifecycle.SUCCEEDED), 1)
        ]
        await asyncio.sleep(0.1)
        health = recorder.health()
        assert not health.ok and health.pending == 3 and health.failing_since is not None
        assert "ConnectionError" in (health.last_error or "")
        assert recorder.room.is_set()  # 3 of 4: room left
        pending.append(recorder.submit(Observation(seen("a", Lifecycle.RUNNING, 9).key, T0)))
        assert not recorder.room.is_set()  # the bound is reached: polling must wait
        assert not any(f.done() for f in pending)  # nothing dropped, nothing answered
        store.down = False
        results = await asyncio.gather(*pending)
    finally:
        task.cancel()
    assert recorder.health().ok and recorder.room.is_set()
    assert [r.outcome for r in results] == [  # type: ignore[union-attr]
        Outcome.RECORDED,
        Outcome.UNCHANGED,
        Outcome.RECORDED,
        Outcome.STALE,  # the last sighting was older than what had been committed
    ]
    lifecycles = [t.change.after.lifecycle for t in await store.transitions()]
    assert lifecycles == [Lifecycle.QUEUED, Lifecycle.RUNNING, Lifecycle.SUCCEEDED]
    assert sum(1 for r in caplog.records if "does not take commits" in r.message) == 1


async def test_untracks_are_committed_in_order_with_observations() -> None:
    store = FlakyStore()
    recorder = Recorder(store)
    task = asyncio.create_task(recorder.run())
    try:
        first = recorder.submit(seen("a", Lifecycle.QUEUED, 0, "track"))
        gone = recorder.submit(Untrack((seen("a", Lifecycle.QUEUED, 0).key,)))
        late = recorder.submit(seen("a", Lifecycle.RUNNING, 1))
        results = await asyncio.gather(first, gone, late)
    finally:
        task.cancel()
    assert results[1] == [seen("a", Lifecycle.QUEUED, 0).key]
    assert results[2].outcome is Outcome.UNTRACKED  # type: ignore[union-attr]


async def test_closing_while_the_store_is_away_says_what_is_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore()
    store.down = True
    recorder = Recorder(store)
    fut = recorder.submit(seen("a", Lifecycle.QUEUED, 0, "track"))
    with caplog.at_level(logging.ERROR, logger="scanhub"):
        await recorder.close(grace=0.3)
    assert fut.cancelled() and recorder.idle
    assert any("1 observations the store did not take" in r.message for r in caplog.records)


class SlowStore(FlakyStore):
    """A memory store whose commits take a while (so a close can arrive mid-commit)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()

    async def commit(self, observations: Sequence[Observation]) -> list[Committed]:
        self.entered.set()
        await asyncio.sleep(0.05)
        return await super().commit(observations)


async def test_closing_while_the_writer_commits_commits_each_observation_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = SlowStore()
    recorder = Recorder(store)
    task = asyncio.create_task(recorder.run())
    try:
        first = recorder.submit(seen("a", Lifecycle.QUEUED, 0, "track"))
        await store.entered.wait()  # the writer's commit is in flight
        second = recorder.submit(seen("a", Lifecycle.RUNNING, 1))
        with caplog.at_level(logging.ERROR, logger="scanhub"):
            await recorder.close(grace=2)
    finally:
        task.cancel()
    assert first.result().outcome is Outcome.RECORDED  # type: ignore[union-attr]
    assert second.result().outcome is Outcome.RECORDED  # type: ignore[union-attr]
    assert store.attempts == [1, 1]  # each observation committed once, in order
    lifecycles = [t.change.after.lifecycle for t in await store.transitions()]
    assert lifecycles == [Lifecycle.QUEUED, Lifecycle.RUNNING]
    assert recorder.idle and not [r for r in caplog.records if r.levelno >= logging.ERROR]


# --- broadcaster --------------------------------------------------------------------------------


async def test_subscribers_get_the_log_in_order_and_a_slow_one_reads_the_store() -> None:
    store = MemoryStore()
    caster = Broadcaster(store, capacity=2)
    await caster.start_position()
    task = asyncio.create_task(caster.run())
    try:
        quick = caster.subscribe()
        slow = caster.subscribe()
        only_b = caster.subscribe(wants=lambda c: c.after.id == "b")
        for n in range(10):
            await store.commit([seen("a" if n % 2 else "b", Lifecycle.RUNNING, n, "track")])
            item = Scan(Vendor.APPSECPLUS, "asp", "a", "a", Lifecycle.RUNNING, f"step {n}")
            await store.commit([Observation(item.key, T0 + timedelta(minutes=n, seconds=1), item)])
            got_quick = await quick.next()
            assert got_quick is not None
        async with asyncio.timeout(5):
            ids_slow = [(await slow.next()).id for _ in range(await store.last_id())]  # type: ignore[union-attr]
            ids_quick = [got_quick.id] + [
                (await quick.next()).id  # type: ignore[union-attr]
                for _ in range(await store.last_id() - (got_quick.id or 0))
            ]
    finally:
        task.cancel()
    everything = [t.id for t in await store.transitions()]
    assert ids_slow == everything  # far behind its room of 2: read the store, lost nothing
    assert slow.fell_behind >= 1
    assert ids_quick[-1] == everything[-1]
    b_keys = {c.key for c in await store.transitions() if c.change.after.id == "b"}
    assert only_b.next_nowait() is None or only_b.position > 0
    assert b_keys  # the filter had something to pass


async def test_a_subscription_from_an_old_id_catches_up_then_follows() -> None:
    store = MemoryStore()
    for n in range(5):
        await store.commit([seen(f"s{n}", Lifecycle.QUEUED, 0, "track")])
    caster = Broadcaster(store)
    await caster.start_position()
    task = asyncio.create_task(caster.run())
    try:
        sub = caster.subscribe(since=2)
        await store.commit([seen("s9", Lifecycle.QUEUED, 0, "track")])
        async with asyncio.timeout(5):
            got = [(await sub.next()).id for _ in range(4)]  # type: ignore[union-attr]
        sub.close()
        assert await sub.next() is None and caster.subscribers == 0
    finally:
        task.cancel()
    assert got == [3, 4, 5, 6]


# --- channel ------------------------------------------------------------------------------------


async def test_a_full_channel_refuses_and_a_closed_one_ends() -> None:
    ch: Channel[int] = Channel(2)
    assert ch.send_nowait(1) and ch.send_nowait(2) and not ch.send_nowait(3)
    assert ch.full and len(ch) == 2 and ch.peek() == 1
    waiter = asyncio.create_task(ch.send(3))
    await asyncio.sleep(0)
    assert not waiter.done()  # send waits for room
    assert await ch.receive() == 1
    await waiter
    assert ch.clear() == [2, 3] and len(ch) == 0
    ch.send_nowait(4)
    ch.close()
    assert await ch.receive() == 4
    with pytest.raises(ChannelClosed):
        await ch.receive()
    with pytest.raises(ChannelClosed):
        ch.send_nowait(5)
    with pytest.raises(ValueError, match="at least one"):
        Channel(0)


async def test_sightings_are_gathered_per_item_and_never_overtake_a_change() -> None:
    store = FlakyStore()
    recorder = Recorder(store)
    task = asyncio.create_task(recorder.run())
    try:
        await recorder.commit([seen("a", Lifecycle.QUEUED, 0, "track")])
        store.attempts.clear()
        for n in range(1, 6):  # five quiet polls of one item
            recorder.sight(seen("a", Lifecycle.QUEUED, n).key, T0 + timedelta(minutes=n))
        change = recorder.submit(seen("a", Lifecycle.RUNNING, 7))
        recorder.sight(seen("a", Lifecycle.QUEUED, 0).key, T0 + timedelta(minutes=6))
        await change
        await recorder.flush()
    finally:
        task.cancel()
    held = await store.get(seen("a", Lifecycle.QUEUED, 0).key)
    assert held is not None and held.item.lifecycle is Lifecycle.RUNNING  # the change stands
    assert held.last_observed == T0 + timedelta(minutes=7)  # the later sighting was stale
    assert sum(store.attempts) <= 3  # five sightings, one change, one late sighting: gathered


def test_the_working_set_finds_the_keys_of_an_application_of_a_source() -> None:
    from scanhub.engine.tracked import WorkingSet

    ws = WorkingSet()
    a1 = Scan(Vendor.APPSECPLUS, "asp", "s1", "app-a", Lifecycle.RUNNING, "r")
    a2 = Scan(Vendor.APPSECPLUS, "asp", "s2", "app-a", Lifecycle.QUEUED, "q")
    b1 = Scan(Vendor.APPSECPLUS, "asp", "s3", "app-b", Lifecycle.RUNNING, "r")
    other = Scan(Vendor.APPSECPLUS, "asp2", "s4", "app-a", Lifecycle.RUNNING, "r")
    for item in (a1, a2, b1, other):
        ws.add(item, "test")
    ws.add(a1, "test")  # again: one key
    assert ws.keys_of_application("asp", "app-a") == {a1.key, a2.key}
    assert ws.keys_of_application("asp2", "app-a") == {other.key}
    assert ws.keys_of_application("asp", "app-c") == set()
    ws.remove(a1.key)
    ws.remove(a1.key)  # twice: nothing
    assert ws.keys_of_application("asp", "app-a") == {a2.key}
    assert ws.keys_of("asp") == {a2.key, b1.key} and ws.count_of("asp") == 2
    ws.remove(a2.key)
    ws.remove(b1.key)
    assert ws.keys_of_application("asp", "app-a") == set()
    assert ws.keys_of("asp") == set() and ws.count_of("asp") == 0
    assert len(ws) == 1

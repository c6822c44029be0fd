"""Replication under store faults: a replica that gains a source's lease, or hears that another
replica tracked an item, while the store fails one read, still takes the source's active items
on (they are never left unpolled for good)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Collection, Sequence

import pytest

from scanhub import AppSecPlus, Lifecycle, MemoryStore, Scan, Sink, Vendor
from scanhub._errors import StoreUnavailable
from scanhub._sinks import new_secret
from scanhub.engine.broadcast import Broadcaster
from scanhub.engine.polling import PollLoop
from scanhub.engine.recorder import Recorder
from scanhub.engine.replication import Replication
from scanhub.engine.scheduler import Scheduler
from scanhub.engine.sinks import Deliverer
from scanhub.engine.supervise import supervised
from scanhub.store import Observation, StoredItem

SOURCE = "asp"


class FlakyShared(MemoryStore):
    """A store several processes share (as PostgreSQL is), whose `active` read fails the
    next `fail_active` times, and whose tracking news comes from `news` to the listener
    running then (a listener started later hears only what comes after it)."""

    shared = True

    def __init__(self) -> None:
        super().__init__()
        self.fail_active = 0
        self.news: asyncio.Queue[frozenset[str]] = asyncio.Queue()
        self.leases: list[set[str] | Exception] = []

    async def active(self, sources: Collection[str] | None = None) -> list[StoredItem]:
        if self.fail_active:
            self.fail_active -= 1
            raise StoreUnavailable("the database is unavailable (statement timeout)")
        return await super().active(sources)

    async def lease(self, sources: Sequence[str], ttl: float) -> set[str]:
        return set(sources)

    async def tracking_changes(self) -> AsyncIterator[frozenset[str]]:
        while True:
            yield await self.news.get()


def loop_over(store: FlakyShared, polled: set[str]) -> PollLoop:
    loop = PollLoop(
        store,
        Recorder(store),
        Broadcaster(store),
        Scheduler(),
        concurrency=None,
        max_concurrency=16,
        polled=polled,
    )
    loop.add_source(AppSecPlus("http://127.0.0.1:9", "token", name=SOURCE))
    return loop


async def tracked_elsewhere(store: FlakyShared, sid: str) -> str:
    """An item another replica tracked: committed to the shared store, under way."""
    item = Scan(Vendor.APPSECPLUS, SOURCE, sid, "a", Lifecycle.RUNNING, "running")
    await store.commit([Observation.of(item, "track")])
    return item.key


async def eventually(check: object, seconds: float = 2.0) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if check():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.02)
    return bool(check())  # type: ignore[operator]


@contextlib.asynccontextmanager
async def running(name: str, part: object) -> AsyncIterator[None]:
    task = asyncio.create_task(supervised(name, part, backoff=(0.01, 0.01)))  # type: ignore[arg-type]
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_lease_gained_while_the_store_fails_a_read_still_takes_its_items_on() -> None:
    store = FlakyShared()
    key = await tracked_elsewhere(store, "scan-1")
    loop = loop_over(store, set())
    replication = Replication(store, loop, [SOURCE], lease_ttl=0.15)
    store.fail_active = 1  # the read of the gained source's active items fails once
    async with running("leases", replication.hold_leases):
        assert await eventually(lambda: key in loop.working), "the gained source's item is lost"
    assert loop.polls(SOURCE)


async def test_news_of_a_track_heard_while_the_store_fails_a_read_is_not_lost() -> None:
    store = FlakyShared()
    loop = loop_over(store, {SOURCE})  # this replica holds the source's lease
    replication = Replication(store, loop, [SOURCE], lease_ttl=0.15)
    async with running("tracking", replication.hear_tracking):
        await asyncio.sleep(0.05)
        key = await tracked_elsewhere(store, "scan-2")  # another replica's track...
        store.fail_active = 1  # ...whose items this replica fails to read once
        store.news.put_nowait(frozenset({SOURCE}))
        assert await eventually(lambda: key in loop.working), "the item tracked elsewhere is lost"


async def test_a_slow_load_of_a_gained_sources_items_does_not_delay_the_next_renewal() -> None:
    """Loading the items of a source just gained takes most of a lease period: the next
    renewal is still asked a pause after the last (here when the load ends), not a pause
    after the load ended, cut to the lease's end: asked as the lease ends, when another
    replica may take the source."""
    ttl = 2.0

    class SlowLoad(FlakyShared):
        def __init__(self) -> None:
            super().__init__()
            self.asked: list[float] = []

        async def lease(self, sources: Sequence[str], ttl: float) -> set[str]:
            self.asked.append(asyncio.get_running_loop().time())
            return set(sources)

        async def active(self, sources: Collection[str] | None = None) -> list[StoredItem]:
            if len(self.asked) == 1:
                await asyncio.sleep(0.7 * ttl)  # a third of a lease is the pause
            return await super().active(sources)

    store = SlowLoad()
    loop = loop_over(store, set())
    replication = Replication(store, loop, [SOURCE], lease_ttl=ttl)
    async with running("leases", replication.hold_leases):
        assert await eventually(lambda: len(store.asked) >= 2, seconds=3 * ttl)
    assert store.asked[1] - store.asked[0] < 0.85 * ttl  # 0.7 ttl; it was ttl


class SlowLeases(FlakyShared):
    """Leases on a fake clock: the first renewal takes most of the lease period (the database
    set the lease's end when the statement began), the second fails, the third never ends."""

    def __init__(self, clock: list[float], ttl: float) -> None:
        super().__init__()
        self.clock, self.ttl, self.calls = clock, ttl, 0

    async def lease(self, sources: Sequence[str], ttl: float) -> set[str]:
        self.calls += 1
        if self.calls == 1:
            self.clock[0] += 0.8 * self.ttl  # the answer comes late
            return set(sources)
        if self.calls == 2:
            self.clock[0] += 0.4 * self.ttl  # past the lease's end, counted from its start
            raise StoreUnavailable("the database is unavailable")
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_failed_renewal_stops_polling_once_the_lease_ended_counted_from_its_start() -> None:
    clock = [0.0]
    ttl = 0.15
    store = SlowLeases(clock, ttl)
    loop = loop_over(store, set())
    replication = Replication(store, loop, [SOURCE], lease_ttl=ttl, clock=lambda: clock[0])
    async with running("leases", replication.hold_leases):
        assert await eventually(lambda: store.calls >= 3)
        await asyncio.sleep(0.02)
        # The lease held from the first renewal's start ended at `ttl`; it is 1.2 ttl now:
        # another replica may poll the source, so this one must not.
        assert loop.polled == set()


async def test_a_failed_sink_renewal_stops_delivering_once_its_lease_ended() -> None:
    clock = [1000.0]
    ttl = 0.15
    store = SlowLeases(clock, ttl)
    sink = Sink.webhook("hook", "http://127.0.0.1:9/", new_secret(), allow_private=True)
    deliverer = Deliverer(store, Broadcaster(store), [sink], lease_ttl=ttl, clock=lambda: clock[0])
    run = functools.partial(deliverer.run, "hook")
    async with running("sink leases", deliverer.hold_leases), running("sink hook", run):
        assert await eventually(lambda: store.calls >= 3)
        await asyncio.sleep(0.02)
        # The lease from the first renewal's start ended at `ttl`; it is 1.2 ttl now.
        assert not deliverer.delivering_here("hook")


async def test_a_sink_renewal_that_never_answers_stops_delivering_when_its_lease_ends() -> None:
    class Hangs(MemoryStore):
        shared = True
        calls = 0

        async def lease(self, names: Sequence[str], ttl: float) -> set[str]:
            self.calls += 1
            if self.calls == 1:
                return set(names)
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    store = Hangs()
    sink = Sink.webhook("hook", "http://127.0.0.1:9/", new_secret(), allow_private=True)
    deliverer = Deliverer(store, Broadcaster(store), [sink], lease_ttl=0.3)
    run = functools.partial(deliverer.run, "hook")
    async with running("sink leases", deliverer.hold_leases), running("sink hook", run):
        assert await eventually(lambda: deliverer.delivering_here("hook"))
        # The second renewal hangs: the lease held ends 0.3 s after the first was asked.
        assert await eventually(lambda: not deliverer.delivering_here("hook"))


async def test_a_renewal_that_never_answers_stops_polling_when_the_lease_ends() -> None:
    """A renewal hanging on a half-open connection: the sources held are polled until their
    lease ends, not for as long as the call hangs (another replica takes them then)."""

    class Hangs(FlakyShared):
        calls = 0

        async def lease(self, sources: Sequence[str], ttl: float) -> set[str]:
            self.calls += 1
            if self.calls == 1:
                return set(sources)
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    store = Hangs()
    loop = loop_over(store, set())
    replication = Replication(store, loop, [SOURCE], lease_ttl=0.3)
    async with running("leases", replication.hold_leases):
        assert await eventually(lambda: loop.polls(SOURCE))
        assert await eventually(lambda: not loop.polls(SOURCE))
        assert store.calls == 2  # dropped while the second renewal still hangs


async def test_leases_a_fresh_replication_holds_and_where_a_failed_renewal_stops() -> None:
    """A second polling block makes a new `Leases` while the loop still names the sources it
    polled: its first renewal is not cut off as if the leases had ended long ago (every source
    was dropped, and its items, until the next renewal). A renewal that fails keeps what is
    held only until the leases end, then the next one is asked at once."""
    from scanhub.engine.replication import Leases

    now = [1000.0]

    class Store:
        fail = False

        async def lease(self, names: list[str], ttl: float) -> set[str]:
            if self.fail:
                raise OSError("away")
            return set(names)

    store = Store()
    leases = Leases(9.0, clock=lambda: now[0])
    assert not leases.unexpired and leases.pause() == 3.0
    assert await leases.renew(store, ["asp"], holding=True) == {"asp"}  # not cut off
    assert leases.unexpired and leases.pause() == 3.0
    now[0] += 7.0  # two seconds left of the lease
    assert leases.unexpired and leases.pause() == 2.0
    now[0] += 2.0
    assert not leases.unexpired and leases.pause() == 3.0  # ended: no busy loop
    store.fail = True
    with pytest.raises(OSError, match="away"):
        await leases.renew(store, ["asp"], holding=False)


async def test_a_sink_is_delivered_here_only_while_its_deliverer_runs_and_holds_its_lease() -> None:
    """`delivering_here` (the API's `delivering_here`): between two polling blocks nothing
    delivers, and it said True. On a shared store, the next block's deliverer delivered on
    what the last block held, before a renewal said it still held it (another replica may
    have taken the sink since the lease ended)."""

    class Shared(MemoryStore):
        shared = True

        async def lease(self, names: Sequence[str], ttl: float) -> set[str]:
            return set(names)

    for store in (MemoryStore(), Shared()):
        sink = Sink.webhook("hook", "http://127.0.0.1:9/", new_secret(), allow_private=True)
        deliverer = Deliverer(store, Broadcaster(store), [sink], lease_ttl=0.3)
        here = functools.partial(deliverer.delivering_here, "hook")
        assert not here()
        async with contextlib.AsyncExitStack() as block:
            if store.shared:
                await block.enter_async_context(running("sink leases", deliverer.hold_leases))
            run = functools.partial(deliverer.run, "hook")
            await block.enter_async_context(running("sink hook", run))
            assert await eventually(here)
        assert not here()
        if store.shared:
            assert not deliverer._held["hook"].is_set()  # the next block renews first


async def test_a_renewal_asked_after_the_leases_ended_is_not_cut_off_at_once() -> None:
    """Loading a gained source's items outlasted the leases: the next renewal got a timeout of
    0, failed, and the replica dropped every source it held (and loaded them again a third of
    a lease later)."""
    from scanhub.engine.replication import Leases

    now = [1000.0]

    class Slow:
        async def lease(self, names: list[str], ttl: float) -> set[str]:
            await asyncio.sleep(0.01)
            return set(names)

    leases = Leases(9.0, clock=lambda: now[0])
    assert await leases.renew(Slow(), ["asp"], holding=False) == {"asp"}  # type: ignore[arg-type]
    now[0] += 12.0  # the load took longer than the lease
    assert await leases.renew(Slow(), ["asp"], holding=True) == {"asp"}  # type: ignore[arg-type]

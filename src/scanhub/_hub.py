"""The engine: many clients, many tracked items, one shared session, durable state.

- Each item has a next-due time in a heap; a scheduler task pops what is due (O(log n) per
  item, never a scan of everything tracked) and hands it to its source's queue. Each source
  has its own dispatcher and its own concurrency limit (adaptive by default), so a slow,
  hanging or rate-limited source never delays another.
- Polls are spread out: the first round is staggered over the interval, every next poll is
  jittered, stable items back off (x`backoff` per quiet poll up to `max_interval`), and a
  source the vendor paused (429 with Retry-After) parks its own items until then.
- A change is committed to the store before any consumer sees it; consumers read from bounded
  queues, so a slow consumer never stops polling: one that falls behind is told (`lagged`) and
  given every item's current state instead of the changes it missed.
- `snapshot()` refreshes everything once; `watch()` streams changes (until everything is
  finished, or forever with `until_done=False`); `wait()` follows one item. Deadlines are
  real: at the deadline in-flight requests are cancelled and nothing sleeps past it.
- Lifecycle is monotonic per item: queued < running < terminal. A stale answer that would move
  an item backwards is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import aiohttp
from attrs import define, field

from ._changes import Change, ItemError, Snapshot, merge, significant
from ._clients import Client
from ._errors import (
    BadRequestError,
    RateLimitedError,
    ScanhubError,
    ServerError,
    TransportError,
    WaitTimeoutError,
)
from ._limiter import AdaptiveLimit, FixedLimit
from ._model import Item, Lifecycle
from .store import MemoryStore, Observation, Store

log = logging.getLogger("scanhub")

__all__ = ["Change", "ItemError", "ScanHub", "Snapshot", "merge"]

# Slot states.
_IDLE, _SCHEDULED, _QUEUED, _RUNNING = range(4)


@define(eq=False)
class _Slot:
    key: str
    item: Item
    how: str = "track"
    error: ItemError | None = None
    #: When its last change was recorded (None: not since it was tracked).
    changed_at: datetime | None = None
    interval: float = 0.0
    due: float = 0.0
    state: int = _IDLE
    gen: int = 0


@define(eq=False)
class _Source:
    client: Client
    limit: FixedLimit
    queue: deque[_Slot] = field(factory=deque)
    ready: asyncio.Event = field(factory=asyncio.Event)
    paused_until: float = 0.0
    #: Counted by the transport's observer: attempts that met 429, 5xx or no connection.
    troubles: int = 0
    last_ok: datetime | None = None
    last_error: ItemError | None = None


@define(eq=False)
class _Subscriber:
    keys: frozenset[str] | None
    capacity: int
    queue: deque[Change] = field(factory=deque)
    event: asyncio.Event = field(factory=asyncio.Event)
    lagged: bool = False
    dropped: int = 0

    def wants(self, key: str) -> bool:
        return self.keys is None or key in self.keys


class ScanHub:
    """Tracks scans and promotions across named clients.

    Use as `async with ScanHub([client, ...]) as hub:`; it opens one `aiohttp.ClientSession`
    shared by every client that did not bring its own, opens the store (`MemoryStore` unless
    one is given) and resumes what it tracks, and closes both on exit.

    `concurrency=None` (the default) adapts each source's concurrency between 1 and
    `max_concurrency` (and never past its `RateLimit`); an integer fixes it.
    """

    def __init__(
        self,
        clients: Iterable[Client] = (),
        *,
        concurrency: int | None = None,
        max_concurrency: int = 128,
        interval: float = 5.0,
        max_interval: float = 60.0,
        backoff: float = 1.5,
        connection_limit: int = 512,
        store: Store | None = None,
        queue_size: int = 10_000,
        observation_flush: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.concurrency = concurrency
        self.max_concurrency = max_concurrency
        self.interval = interval
        self.max_interval = max_interval
        self.backoff = backoff
        self.queue_size = queue_size
        self.store: Store = store if store is not None else MemoryStore()
        self._observation_flush = observation_flush
        self._connection_limit = connection_limit
        self._clock, self._now = clock, now
        self._clients: dict[str, Client] = {}
        self._sources: dict[str, _Source] = {}
        self._slots: dict[str, _Slot] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._gen = 0
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._subscribers: list[_Subscriber] = []
        self._outbox: list[Change] = []
        self._committing = 0
        self._outbox_ready = asyncio.Event()
        self._flushed = asyncio.Event()
        self._observations: list[Observation] = []
        self._store_ops: list[tuple[str, Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._polls: set[asyncio.Task[Any]] = set()
        self._users = 0
        self._base = interval
        self._opened = False
        #: Sources this process polls (None: all). Replicas poll only the sources they lease.
        self._active: set[str] | None = None
        #: Source name -> the last failed discovery on it.
        self.source_errors: dict[str, ItemError] = {}
        #: Discovery rules (source, query) that `rediscover` runs again.
        self.rules: list[tuple[str, dict[str, str]]] = []
        #: Polls performed (all sources); read by benchmarks.
        self.polls = 0
        for client in clients:
            self.add_client(client)

    # --- clients and session ----------------------------------------------------------------

    def add_client(self, client: Client) -> Client:
        """Register a client under its `name` (unique)."""
        if client.name in self._clients:
            raise BadRequestError(f"two clients are named {client.name!r}", operation="add client")
        self._clients[client.name] = client
        self._sources[client.name] = _Source(client, self._limit_for(client))
        client.transport.observers.append(self._observer(client.name))
        if self._session is not None:
            client._adopt_session(self._session)
        return client

    def _limit_for(self, client: Client) -> FixedLimit:
        if self.concurrency is not None:
            return FixedLimit(self.concurrency)
        ceiling = self.max_concurrency
        limiter = client.transport.limiter
        if limiter is not None:
            ceiling = min(ceiling, limiter.limit.max_requests)
        return AdaptiveLimit(initial=min(16, ceiling), ceiling=ceiling)

    def _observer(self, name: str) -> Callable[[int | None, float], None]:
        def seen(status: int | None, elapsed: float) -> None:
            if status is None or status == 429 or status >= 500:
                self._sources[name].troubles += 1

        return seen

    def client(self, name: str) -> Client:
        """The client registered as `name`."""
        try:
            return self._clients[name]
        except KeyError:
            raise BadRequestError(f"no client named {name!r}", operation="lookup") from None

    @property
    def clients(self) -> list[Client]:
        """Registered clients, in the order they were added."""
        return list(self._clients.values())

    def concurrency_of(self, source: str) -> int:
        """The current concurrency limit of a source."""
        return self._sources[source].limit.limit

    async def __aenter__(self) -> ScanHub:
        connector = aiohttp.TCPConnector(limit=self._connection_limit, limit_per_host=0)
        self._session = aiohttp.ClientSession(connector=connector)
        for client in self._clients.values():
            client._adopt_session(self._session)
        await self.open()
        return self

    async def open(self) -> None:
        """Open the store and resume what it tracks (done by `async with`)."""
        if self._opened:
            return
        await self.store.open()
        self._opened = True
        await self.store.prune(self._now())
        for stored in await self.store.tracked():
            if stored.item.source not in self._clients:
                continue  # a source no longer configured: keep its history, do not poll
            slot = self._slots.get(stored.key)
            if slot is None:
                self._slots[stored.key] = _Slot(
                    stored.key, stored.item, stored.how, stored.last_error, stored.last_change
                )
            else:
                slot.item = merge(stored.item, slot.item)
        await self._flush_store_ops()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the engine, flush and close the store, close clients and the session."""
        await self._stop()
        if self._opened:
            await self._flush_store_ops()
            await self._flush_observations()
            await self.store.close()
            self._opened = False
        for client in self._clients.values():
            await client.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- tracking -------------------------------------------------------------------------

    def track(self, item: Item, *, how: str = "track") -> str:
        """Start tracking `item` (its source must be a registered client); returns its key.
        Tracking a key again replaces the item, subject to the monotonic rule. May be called
        while a watch runs."""
        self.client(item.source)
        slot = self._slots.get(item.key)
        if slot is None:
            slot = self._slots[item.key] = _Slot(item.key, item, how)
            self._store_ops.append(("track", (item, how)))
            if item.lifecycle is not Lifecycle.UNKNOWN or item.vendor_status:
                # A first sighting with a real state (a discovery, a trigger's answer) is part
                # of the history; a placeholder waits for its first poll.
                slot.changed_at = self._now()
                self._outbox.append(Change(None, item, slot.changed_at))
                self._outbox_ready.set()
        else:
            slot.item = merge(slot.item, item)
        if self._tasks and slot.state == _IDLE and not slot.item.lifecycle.is_terminal:
            self._schedule(slot, self._clock() + random.uniform(0, min(self._base, 1.0)))
        return item.key

    def untrack(self, item: Item | str) -> None:
        """Stop tracking an item (by item or key); unknown keys are ignored. Its history stays."""
        key = item if isinstance(item, str) else item.key
        slot = self._slots.pop(key, None)
        if slot is not None:
            slot.state, slot.gen = _IDLE, -1
            self._store_ops.append(("untrack", key))

    @property
    def items(self) -> list[Item]:
        """Tracked items in their last known state."""
        return [s.item for s in self._slots.values()]

    def errors(self) -> dict[str, ItemError]:
        """Item key -> error of its last refresh."""
        return {k: s.error for k, s in self._slots.items() if s.error is not None}

    async def discover(self, source: str, **query: str | None) -> list[Item]:
        """Run a discovery query on a source (its vendor says what the query means, e.g. every
        AppSec+ scan of an application) and track every item found. A failure is recorded in
        `source_errors` and returns []."""
        client = self.client(source)
        args = {k: v for k, v in query.items() if v is not None}
        found: list[Item] = []
        try:
            async for item in client.discover(**args):
                self.track(item, how=f"discovery:{source}")
                found.append(item)
        except ScanhubError as exc:
            self.source_errors[source] = ItemError.of(exc, self._now())
        else:
            self.source_errors.pop(source, None)
        await self._commit_outbox()
        return found

    async def add_rule(self, source: str, query: Mapping[str, str]) -> list[Item]:
        """Remember a discovery query (re-run by `rediscover`) and run it now."""
        self.client(source)
        rule = (source, dict(query))
        if rule not in self.rules:
            self.rules.append(rule)
        return await self.discover(source, **query)

    async def rediscover(self) -> list[Item]:
        """Run every remembered discovery rule of the sources this process polls again;
        returns what they found."""
        found: list[Item] = []
        active = self.active_sources
        for source, query in list(self.rules):
            if source in active:
                found += await self.discover(source, **query)
        return found

    async def discover_promotions(
        self, source: str, application_key: str, version: str, **filters: str | None
    ) -> list[Item]:
        """Track every promotion of an application version (AppTrust; filters: target_stage,
        status, promoted_by). Same as `discover(source, application_key=, version=, ...)`."""
        return await self.discover(
            source, application_key=application_key, version=version, **filters
        )

    async def discover_scans(
        self, source: str, application_id: str | None = None, status: str | None = None
    ) -> list[Item]:
        """Track every scan of an application (AppSec+), optionally in one status. Same as
        `discover(source, application_id=, status=)`."""
        return await self.discover(source, application_id=application_id, status=status)

    async def apply(self, item: Item, *, how: str = "track") -> Change | None:
        """Take a state the vendor pushed (a webhook) as if a poll had returned it: track the
        item if it is new, merge it, and record and publish the change, if any."""
        self.client(item.source)
        await self.open()
        slot = self._slots.get(item.key)
        if slot is None:
            slot = self._slots[item.key] = _Slot(item.key, item, how)
            self._store_ops.append(("track", (item, how)))
            change: Change | None = Change(None, item, self._now())
        else:
            before = slot.item
            slot.item = merge(before, item)
            change = (
                Change(before, slot.item, self._now()) if significant(before, slot.item) else None
            )
        if change is not None:
            slot.changed_at = change.observed_at
            await self._flush_store_ops()
            self._committing += 1
            try:
                (change,) = await self.store.record([change])
                self._publish([change])
            finally:
                self._committing -= 1
        return change

    def poke(self, keys: Iterable[str]) -> int:
        """Poll these items as soon as their sources allow (a webhook said something moved);
        returns how many were rescheduled. Only while the engine runs."""
        count = 0
        if not self._tasks:
            return 0
        now = self._clock()
        for key in keys:
            slot = self._slots.get(key)
            due = slot is not None and slot.state in (_IDLE, _SCHEDULED)
            if due and slot is not None and not slot.item.lifecycle.is_terminal:
                self._schedule(slot, now)
                count += 1
        return count

    def set_active_sources(self, sources: Iterable[str] | None) -> None:
        """Poll only these sources (None: every source); the others' items stay tracked and
        are updated by `absorb` from the replica that polls them."""
        self._active = None if sources is None else set(sources)

    @property
    def active_sources(self) -> set[str]:
        """The sources this process polls."""
        return set(self._clients) if self._active is None else set(self._active)

    def absorb(self, change: Change) -> None:
        """Take a transition another process recorded (a replica that polls its source): track
        the item if new, and move it forward. Nothing is recorded or published."""
        if change.after.source not in self._clients:
            return
        slot = self._slots.get(change.key)
        if slot is None:
            self._slots[change.key] = _Slot(change.key, change.after, "replica")
            slot = self._slots[change.key]
            if self._tasks and not change.after.lifecycle.is_terminal:
                self._schedule(slot, self._clock() + self._base)
        else:
            slot.item = merge(slot.item, change.after)
        slot.changed_at = change.observed_at

    def source_health(self) -> dict[str, dict[str, Any]]:
        """Per source: vendor, item count, last success, last error, and until when (wall time)
        the vendor's rate limit pauses it."""
        counts: dict[str, int] = {}
        for slot in self._slots.values():
            counts[slot.item.source] = counts.get(slot.item.source, 0) + 1
        out = {}
        now_wall, now = self._now(), self._clock()
        for name, src in self._sources.items():
            paused = max(src.paused_until, now + src.client.transport.paused_for) - now
            err = src.last_error
            up = err is None or (src.last_ok is not None and src.last_ok >= err.observed_at)
            out[name] = {
                "vendor": src.client.vendor,
                "items": counts.get(name, 0),
                "last_success": src.last_ok,
                "last_error": err,
                "up": up,
                "paused_until": now_wall + timedelta(seconds=paused) if paused > 0 else None,
                "concurrency": src.limit.limit,
            }
        return out

    def changed_at(self, key: str) -> datetime | None:
        """When the item's last change was recorded, if known."""
        slot = self._slots.get(key)
        return slot.changed_at if slot else None

    # --- one poll ---------------------------------------------------------------------------

    async def _poll_once(self, slot: _Slot, *, held: bool = False) -> Change | None:
        """Refresh one item under its source's limit (already taken when `held`); returns the
        change, if any. Never raises but CancelledError: one failing source never takes the
        others down."""
        src = self._sources.get(slot.item.source)
        if src is None:  # its client is gone (a resumed item of a source no longer configured)
            return None
        if not held:
            await src.limit.acquire()
        troubles = src.troubles
        started = self._clock()
        try:
            new = await src.client.refresh(slot.item)
        except asyncio.CancelledError:
            src.limit.release()
            raise
        except Exception as exc:  # one failing source never takes the others down
            trouble = isinstance(exc, RateLimitedError | ServerError | TransportError)
            src.limit.release(trouble=trouble or src.troubles != troubles)
            if not isinstance(exc, ScanhubError):
                log.exception("scanhub: unexpected error refreshing %s", slot.key)
            slot.error = src.last_error = ItemError.of(exc, self._now())
            self._observations.append(Observation(slot.key, slot.error.observed_at, slot.error))
            return None
        src.limit.release(trouble=src.troubles != troubles, latency=self._clock() - started)
        self.polls += 1
        slot.error = None
        before = slot.item
        slot.item = merge(before, new)
        now = src.last_ok = self._now()
        if significant(before, slot.item):
            slot.changed_at = now
            return Change(before, slot.item, now)
        self._observations.append(Observation(slot.key, now))
        return None

    # --- snapshot ---------------------------------------------------------------------------

    async def snapshot(self, *, refresh_terminal: bool = False) -> Snapshot:
        """Refresh tracked items concurrently (bounded per source) and return them all.
        Terminal items are final and not asked again unless `refresh_terminal`. Changes are
        recorded in the store."""
        await self.open()
        await self._commit_outbox()
        slots = list(self._slots.values())
        active = self.active_sources
        todo = [
            s
            for s in slots
            if (refresh_terminal or not s.item.lifecycle.is_terminal)
            and s.state != _RUNNING
            and s.item.source in active
        ]
        changes = await asyncio.gather(*(self._poll_once(s) for s in todo))
        await self._commit([c for c in changes if c is not None])
        await self._flush_observations()
        return Snapshot(
            items=tuple(s.item for s in slots),
            errors={s.key: s.error for s in slots if s.error is not None},
            observed_at=self._now(),
            source_errors=dict(self.source_errors),
        )

    # --- the engine's tasks -----------------------------------------------------------------

    def _schedule(self, slot: _Slot, due: float) -> None:
        self._gen += 1
        slot.gen, slot.due, slot.state = self._gen, due, _SCHEDULED
        heapq.heappush(self._heap, (due, self._gen, slot.key))
        if self._heap[0][1] == self._gen:
            self._wake.set()

    def _start(self) -> None:
        now = self._clock()
        active = [s for s in self._slots.values() if not s.item.lifecycle.is_terminal]
        # The first round is spread over the interval (a large set) or less (a few items),
        # so polls never arrive in one wave.
        spread = self._base * min(1.0, len(active) / 200)
        for slot in active:
            slot.interval = self._base
            if slot.state in (_IDLE, _SCHEDULED):
                self._schedule(slot, now + random.uniform(0, spread))
        spawn = self._spawn
        spawn(self._scheduler())
        spawn(self._writer())
        spawn(self._observation_flusher())
        spawn(self._pruner())
        for name, src in self._sources.items():
            spawn(self._dispatcher(name, src))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop(self) -> None:
        tasks = list(self._tasks) + list(self._polls)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._polls.clear()
        for slot in self._slots.values():
            if slot.state != _IDLE:
                slot.state = _IDLE
        self._heap.clear()
        for src in self._sources.values():
            src.queue.clear()
        if self._opened:
            await self._commit_outbox()

    @contextlib.asynccontextmanager
    async def _running(self, interval: float | None) -> AsyncIterator[None]:
        await self.open()
        if interval is not None:
            self._base = interval
        self._users += 1
        if self._users == 1:
            await self._commit_outbox()  # first sightings from before: history, not news
            self._start()
        try:
            yield
        finally:
            self._users -= 1
            if self._users == 0:
                await self._stop()
                await self._flush_observations()

    async def _scheduler(self) -> None:
        heap, slots = self._heap, self._slots
        while True:
            now = self._clock()
            while heap and heap[0][0] <= now:
                _, gen, key = heapq.heappop(heap)
                slot = slots.get(key)
                if slot is None or slot.gen != gen or slot.state != _SCHEDULED:
                    continue  # untracked or rescheduled since: a stale heap entry
                src = self._sources[slot.item.source]
                if self._active is not None and slot.item.source not in self._active:
                    # Another replica polls this source: look again in an interval.
                    self._schedule(slot, now + self._base * random.uniform(0.9, 1.1))
                    continue
                if src.paused_until > now:
                    # The vendor said wait: park this item until then, spread over a second.
                    self._schedule(slot, src.paused_until + random.uniform(0, 1.0))
                    continue
                slot.state = _QUEUED
                src.queue.append(slot)
                src.ready.set()
            self._wake.clear()
            timeout = heap[0][0] - now if heap else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _dispatcher(self, name: str, src: _Source) -> None:
        while True:
            while not src.queue:
                src.ready.clear()
                await src.ready.wait()
            # Take the source's room first: never more polls in flight than the source may
            # take, and the room passes to the poll, which gives it back.
            await src.limit.acquire()
            slot = src.queue.popleft() if src.queue else None
            if slot is None or slot.state != _QUEUED:
                src.limit.release()
                continue
            slot.state = _RUNNING
            task = asyncio.get_running_loop().create_task(self._run_poll(slot, src))
            self._polls.add(task)
            task.add_done_callback(self._polls.discard)

    async def _run_poll(self, slot: _Slot, src: _Source) -> None:
        change = await self._poll_once(slot, held=True)
        if slot.gen == -1:  # untracked while in flight
            return
        now = self._clock()
        error = slot.error
        slot.state = _IDLE
        if slot.item.lifecycle.is_terminal:
            pass
        elif error is not None and error.retry_after:
            src.paused_until = max(src.paused_until, now + error.retry_after)
            self._schedule(slot, src.paused_until + random.uniform(0, 1.0))
        else:
            if change is not None:
                slot.interval = self._base
            else:
                slot.interval = min(
                    self.max_interval, max(self._base, slot.interval * self.backoff)
                )
            self._schedule(slot, now + slot.interval * random.uniform(0.9, 1.1))
        if change is not None:
            self._outbox.append(change)
            self._outbox_ready.set()
        elif slot.item.lifecycle.is_terminal or error is not None:
            self._flushed.set()  # wake waiters that watch lifecycle, not changes

    async def _writer(self) -> None:
        while True:
            await self._outbox_ready.wait()
            await asyncio.sleep(0)  # let a burst of polls finish into one batch
            await self._commit_outbox()

    async def _commit_outbox(self) -> None:
        self._outbox_ready.clear()
        batch, self._outbox = self._outbox, []
        await self._flush_store_ops()
        if batch:
            await self._commit(batch)

    async def _commit(self, changes: list[Change]) -> None:
        """Record changes (one transaction), then hand them to subscribers."""
        if changes:
            self._committing += 1
            try:
                recorded = await self.store.record(changes)
                self._publish(recorded)
            finally:
                self._committing -= 1
        self._flushed.set()

    def _publish(self, changes: list[Change]) -> None:
        for sub in self._subscribers:
            wanted = [c for c in changes if sub.wants(c.key)]
            if not wanted:
                continue
            if len(sub.queue) + len(wanted) > sub.capacity:
                sub.dropped += len(sub.queue) + len(wanted)
                sub.queue.clear()
                sub.lagged = True
            else:
                sub.queue.extend(wanted)
            sub.event.set()

    async def _pruner(self) -> None:
        # Retention runs hourly while the engine runs (and when the store is opened).
        while True:
            await asyncio.sleep(3600)
            await self.store.prune(self._now())

    async def _observation_flusher(self) -> None:
        while True:
            await asyncio.sleep(self._observation_flush)
            await self._flush_observations()

    async def _flush_observations(self) -> None:
        if self._observations and self._opened:
            batch, self._observations = self._observations, []
            await self.store.observe(batch)

    async def _flush_store_ops(self) -> None:
        ops, self._store_ops = self._store_ops, []
        tracks = [arg for op, arg in ops if op == "track"]
        untracks = [arg for op, arg in ops if op == "untrack"]
        if tracks:
            await self.store.track(tracks)
        if untracks:
            await self.store.untrack(untracks)

    # --- consumers --------------------------------------------------------------------------

    async def watch(
        self,
        interval: float | None = None,
        deadline: float | None = None,
        *,
        initial: bool = True,
        until_done: bool = True,
        keys: Iterable[str] | None = None,
    ) -> AsyncIterator[Change]:
        """Yield changes as they are committed.

        With `initial`, every tracked item is first yielded as a `Change` with `before=None`
        (and no id), so a consumer sees each item's final state exactly once in the stream.
        The watch ends when every tracked item is terminal (`until_done`, the default) or at
        `deadline` seconds; with `until_done=False` and no deadline it runs until the consumer
        stops. Items may be tracked and untracked meanwhile. Polling goes on while the consumer
        handles a change; a consumer that falls `queue_size` changes behind gets, instead of
        what it missed, every item's current state as changes marked `lagged`.
        """
        chosen = frozenset(keys) if keys is not None else None
        end = None if deadline is None else self._clock() + deadline
        sub = _Subscriber(chosen, self.queue_size)
        async with self._running(interval):
            self._subscribers.append(sub)
            try:
                if initial:
                    now = self._now()
                    for slot in list(self._slots.values()):
                        if sub.wants(slot.key):
                            yield Change(None, slot.item, now)
                while True:
                    if sub.lagged:
                        sub.lagged = False
                        now = self._now()
                        for slot in list(self._slots.values()):
                            if sub.wants(slot.key):
                                yield Change(None, slot.item, now, lagged=True)
                        continue
                    if sub.queue:
                        yield sub.queue.popleft()
                        continue
                    if until_done and self._all_done(chosen):
                        return
                    sub.event.clear()
                    self._flushed.clear()
                    remaining = None if end is None else end - self._clock()
                    if remaining is not None and remaining <= 0:
                        return
                    waiters = [
                        asyncio.ensure_future(sub.event.wait()),
                        asyncio.ensure_future(self._flushed.wait()),
                    ]
                    try:
                        await asyncio.wait(
                            waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                        )
                    finally:
                        for w in waiters:
                            w.cancel()
            finally:
                self._subscribers.remove(sub)

    def _all_done(self, keys: frozenset[str] | None) -> bool:
        if self._outbox or self._committing:
            return False  # a final change may not have reached the consumer yet
        slots = self._slots.values() if keys is None else (self._slots.get(k) for k in keys)
        return all(s is None or s.item.lifecycle.is_terminal for s in slots)

    async def wait(
        self,
        item: Item,
        timeout: float | None = None,  # noqa: ASYNC109 - the documented API is wait(item, timeout=)
        *,
        interval: float | None = None,
    ) -> Item:
        """Track `item` and poll it until terminal; raises `WaitTimeoutError` after `timeout`
        seconds (the error's `item` is its last known state)."""
        key = self.track(item)
        async for _ in self.watch(interval, timeout, initial=False, keys=[key]):
            pass
        slot = self._slots[key]
        if not slot.item.lifecycle.is_terminal:
            raise WaitTimeoutError(
                f"{key} still {slot.item.lifecycle.value} after {timeout}s",
                item=slot.item,
                vendor=slot.item.vendor,
                source=slot.item.source,
                operation="wait",
            )
        return slot.item

"""`ScanHub`: the engine, a thin front over parts with one job each.

    clients ──> SourcePoller (per source: limit, queue) <── Scheduler (heap, backoff, pauses)
                       │ poll outcome                           ▲
                       ▼                                        │
    track / discover / webhooks / polls ──> Recorder ──commit──> STORE ──log──> Broadcaster
                                                                   │              │
         WorkingSet (the active items this process polls) <────────┴── watch(), live stream,
                                                                        metrics, replicas

- The store is the truth. Every fact (a tracked item, a state, a transition, a lease) is
  committed there first, through the `Recorder`; every reader (`watch`, the service's live
  stream and metrics, this engine's working set, other replicas) reads the committed log
  through the `Broadcaster`. One way in for a new state, polls, webhooks and tracking alike:
  an `Observation` the store judges by one rule.
- The engine holds only what it works on: the active items of the sources it polls
  (`WorkingSet`). Finished items leave it; the store keeps them.
- The `Scheduler` decides when each item is polled (heap; staggered first round, jitter,
  backoff of stable items, parking of items whose source the vendor paused); each source's
  `SourcePoller` polls under the source's own (adaptive) concurrency limit, so a slow,
  hanging or rate-limited source never delays another.
- Several processes on one store (PostgreSQL): leases decide which sources this one polls, and
  it hears of items another one tracked at once (`Store.tracking_changes`).
- Sinks (`Deliverer`, engine/sinks.py) push the committed log to webhooks while polling runs:
  each one more reader of the log, with its cursor, retries and dead letters in the store
  (and, on a shared store, a lease of its own).
- Background tasks are owned: they run in `asyncio.TaskGroup`s, each supervised (restarted
  with backoff when it fails, and said so in `health()`), and stop with the engine.
- Deadlines are real: at a watch's deadline in-flight requests are cancelled and nothing sleeps
  past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import aiohttp
from attrs import frozen

from .._changes import Change, ItemError, Snapshot, merge, significant
from .._clients import Client, PollOutcome
from .._errors import BadRequestError, ScanhubError, WaitTimeoutError
from .._model import Item
from .._sinks import Sink
from ..store import Committed, MemoryStore, Observation, Outcome, Store, StoredItem
from .broadcast import Broadcaster, Subscription
from .poller import SourceHealth, SourcePoller, limit_for
from .recorder import Recorder, RecorderHealth, Untrack
from .scheduler import Scheduler
from .sinks import Deliverer
from .supervise import PartHealth, supervised
from .tracked import Active, WorkingSet

log = logging.getLogger("scanhub")


@frozen
class EngineHealth:
    """Whether the engine is running and recording, part by part."""

    #: The store is open and its parts run.
    open: bool
    #: Polling runs (a watch, or a service).
    polling: bool
    recorder: RecorderHealth
    parts: tuple[PartHealth, ...]

    @property
    def ready(self) -> bool:
        """Open, every part running, and the store taking commits."""
        return self.open and self.recorder.ok and all(p.running for p in self.parts)

    @property
    def reason(self) -> str | None:
        """Why it is not ready (None when it is)."""
        if not self.open:
            return "the engine is not running"
        if not self.recorder.ok:
            return f"the store does not take commits: {self.recorder.last_error}"
        down = [p for p in self.parts if not p.running]
        if down:
            return "; ".join(
                f"{p.name} is restarting ({p.last_failure or 'starting'})" for p in down
            )
        return None


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
        max_pending: int = 10_000,
        lease_ttl: float = 15.0,
        sinks: Iterable[Sink] = (),
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.concurrency = concurrency
        self.max_concurrency = max_concurrency
        self.interval = interval
        self.max_interval = max_interval
        self.lease_ttl = lease_ttl
        self.store: Store = store if store is not None else MemoryStore()
        self._connection_limit = connection_limit
        self._clock, self._now = clock, now
        self.working = WorkingSet()
        self.scheduler = Scheduler(
            interval=interval, max_interval=max_interval, backoff=backoff, clock=clock, rng=rng
        )
        self.recorder = Recorder(self.store, max_pending=max_pending, now=now)
        self.broadcaster = Broadcaster(self.store, capacity=queue_size)
        #: The sinks: each a reader of the committed log with its cursor in the store.
        self.sinks = Deliverer(
            self.store, self.broadcaster, list(sinks), lease_ttl=lease_ttl, now=now, rng=rng
        )
        self._clients: dict[str, Client] = {}
        self._pollers: dict[str, SourcePoller] = {}
        #: Sources this process polls (None: every source; a shared store: those it leases).
        self._polled: set[str] | None = set() if self.store.shared else None
        self._lease_renewed = 0.0
        self._source_errors: dict[str, ItemError] = {}
        #: Discovery rules (source, query) that `rediscover` runs again.
        self.rules: list[tuple[str, dict[str, str]]] = []
        self._session: aiohttp.ClientSession | None = None
        self._opened = False
        self._parts: asyncio.Task[None] | None = None
        self._polling: asyncio.Task[None] | None = None
        self._polling_users = 0
        self._health: dict[str, PartHealth] = {}
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        for client in clients:
            self.add_client(client)

    # --- clients and session ----------------------------------------------------------------

    def add_client(self, client: Client) -> Client:
        """Register a client under its `name` (unique)."""
        if client.name in self._clients:
            raise BadRequestError(f"two clients are named {client.name!r}", operation="add client")
        self._clients[client.name] = client
        limit = limit_for(client, self.concurrency, self.max_concurrency)
        self._pollers[client.name] = SourcePoller(client, limit)
        if self._session is not None:
            client.adopt_session(self._session)
        return client

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
        return self._pollers[source].limit.limit

    def concurrency_ceiling(self, source: str) -> int:
        """The most concurrency a source may reach (its `RateLimit`, `max_concurrency`)."""
        limit = self._pollers[source].limit
        return int(getattr(limit, "ceiling", limit.limit))

    @property
    def polls(self) -> int:
        """Polls that returned a state, over every source (read by benchmarks)."""
        return sum(p.polls for p in self._pollers.values())

    async def __aenter__(self) -> ScanHub:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the store, then one HTTP session for every client that brought none, start the
        recorder and the broadcaster, and take on the active items of the sources this process
        polls (done by `async with`). The store comes first: when it cannot be opened, nothing
        else is left open."""
        if self._opened:
            return
        await self.store.open()
        self._opened = True
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._connection_limit, limit_per_host=0)
            self._session = aiohttp.ClientSession(connector=connector)
            for client in self._clients.values():
                client.adopt_session(self._session)
        await self.store.prune(self._now())
        await self.broadcaster.start_position()
        if self._polled is None:
            await self._take_on(list(self._clients))
        self._parts = asyncio.get_running_loop().create_task(self._run_parts())

    async def close(self) -> None:
        """Stop the engine, commit what waits (for up to ten seconds), close the store, the
        clients and the session."""
        await self._stop_polling()
        if self._opened:
            await self.recorder.close()
            if self._parts is not None:
                self._parts.cancel()
                await asyncio.gather(self._parts, return_exceptions=True)
                self._parts = None
            self.broadcaster.close()
            with contextlib.suppress(Exception):  # a store already gone holds no lease either
                await self.store.release()
            await self.store.close()
            self._opened = False
        for client in self._clients.values():
            await client.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run_parts(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._supervised("recorder", self.recorder.run))
            tg.create_task(self._supervised("broadcaster", self.broadcaster.run))
            tg.create_task(self._supervised("pruner", self._prune))

    def _supervised(self, name: str, run: Callable[[], Any]) -> Any:
        state = self._health[name] = PartHealth(name)
        return supervised(name, run, state)

    async def _prune(self) -> None:
        # Retention runs hourly while the engine runs (and when the store is opened).
        while True:
            await asyncio.sleep(3600)
            await self.store.prune(self._now())

    # --- tracking -----------------------------------------------------------------------------

    def track(self, item: Item, *, how: str = "track") -> str:
        """Start tracking `item` (its source must be a registered client); returns its key.
        Tracking a key again moves it forward by the monotonic rule. The store commits it
        shortly (`await flush()` waits for that); once committed, an item that is not finished
        is polled (when this process polls its source). May be called while a watch runs."""
        self.client(item.source)
        pending = self.recorder.submit(Observation(item.key, self._now(), item, None, how))
        pending.add_done_callback(functools.partial(self._tracked, item, how))
        return item.key

    def _tracked(self, item: Item, how: str, pending: asyncio.Future[object]) -> None:
        """A track was committed: take the item on if it is under way and polled here."""
        if pending.cancelled() or pending.exception() is not None:
            return
        committed = pending.result()
        if not isinstance(committed, Committed) or committed.lifecycle is None:
            return
        if committed.lifecycle.is_terminal or not self._polls(item.source):
            return
        fresh = item.key not in self.working
        self.working.add(item, how)
        if fresh and self._polling is not None:
            self.scheduler.add(item.key)
            self._wake.set()

    def untrack(self, item: Item | str) -> None:
        """Stop tracking an item (by item or key); unknown keys are ignored. Its history stays."""
        key = item if isinstance(item, str) else item.key
        self._drop(key)
        self.recorder.submit(Untrack((key,)))

    async def flush(self) -> None:
        """Wait until everything tracked, untracked or observed so far is committed (nothing
        to wait for before `open` or after `close`)."""
        if self._opened:
            await self.recorder.flush()

    async def get(self, key: str) -> StoredItem | None:
        """One tracked item as the store has it (with its vendor payload), or None."""
        return await self.store.get(key)

    async def current(self) -> list[Item]:
        """Every tracked item in its current state (as the store has it)."""
        await self.flush()
        return [s.item for s in await self.store.tracked()]

    def errors(self) -> dict[str, ItemError]:
        """Key -> the error of its last poll, for the active items whose last poll failed."""
        return self.working.errors()

    @property
    def source_errors(self) -> dict[str, ItemError]:
        """Source name -> the last failed discovery (or lookup) on it."""
        return dict(self._source_errors)

    def note_source_error(self, source: str, exc: BaseException) -> None:
        """Say that something about a source failed (a discovery, a lookup for a track)."""
        self._source_errors[source] = ItemError.of(exc, self._now())

    async def discover(self, source: str, **query: str | None) -> list[Item]:
        """Run a discovery query on a source (its vendor says what the query means, e.g. every
        AppSec+ scan of an application) and track every item found; returns them once
        committed. A failure is recorded in `source_errors` and returns []."""
        client = self.client(source)
        args = {k: v for k, v in query.items() if v is not None}
        found: list[Item] = []
        try:
            async for item in client.discover(**args):
                self.track(item, how=f"discovery:{source}")
                found.append(item)
        except ScanhubError as exc:
            self.note_source_error(source, exc)
        else:
            self._source_errors.pop(source, None)
        await self.flush()
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
        for source, query in list(self.rules):
            if self._polls(source):
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

    async def apply(self, item: Item, *, how: str = "track") -> Committed:
        """Take a state the vendor pushed (a webhook) as a poll's answer: track the item if it
        is new, and commit it; returns what the commit did."""
        self.client(item.source)
        await self.open()
        (committed,) = await self.recorder.commit([Observation.of(item, how, self._now())])
        active = self.working.get(item.key)
        if active is not None:
            active.item = merge(active.item, item)
            if committed.outcome is Outcome.RECORDED:
                active.changed_at = self._now()
            if active.item.lifecycle.is_terminal:
                self._drop(item.key)
        return committed

    def poke(self, keys: Iterable[str]) -> int:
        """Poll these items as soon as their sources allow (a webhook said something moved);
        returns how many were rescheduled. Only while polling runs, for items polled here."""
        if self._polling is None:
            return 0
        count = sum(1 for key in keys if key in self.working and self.scheduler.poke(key))
        if count:
            self._wake.set()
        return count

    # --- health -------------------------------------------------------------------------------

    def source_health(self) -> list[SourceHealth]:
        """Every source's health, in the order the clients were added."""
        return [
            p.health(self.working.count_of(name), self._polls(name))
            for name, p in self._pollers.items()
        ]

    def health(self) -> EngineHealth:
        """Whether the engine runs and records (what `/readyz` answers)."""
        running = self._parts is not None and not self._parts.done()
        return EngineHealth(
            self._opened and running,
            self._polling is not None and not self._polling.done(),
            self.recorder.health(),
            tuple(self._health.values()),
        )

    # --- polling ------------------------------------------------------------------------------

    def _polls(self, source: str) -> bool:
        return self._polled is None or source in self._polled

    async def _take_on(self, sources: list[str]) -> None:
        """Load the active items of `sources` from the store into the working set (and the
        schedule, while polling runs)."""
        for stored in await self.store.active(sources):
            if stored.item.source not in self._clients:
                continue  # a source no longer configured: keep its history, do not poll
            fresh = stored.key not in self.working
            active = self.working.add(stored.item, stored.origin, changed_at=stored.last_change)
            if fresh:
                active.error = stored.last_error
                if self._polling is not None:
                    self.scheduler.add(stored.key)
        self._wake.set()

    def _drop(self, key: str) -> None:
        self.working.remove(key)
        self.scheduler.remove(key)
        self._progress.set()

    @contextlib.asynccontextmanager
    async def polling(self, interval: float | None = None) -> AsyncIterator[None]:
        """Poll for as long as the block runs (what `watch` does, and a service for good). Nested
        and concurrent blocks share one engine; it stops when the last ends."""
        await self.open()
        if interval is not None:
            self.scheduler.interval = interval
        self._polling_users += 1
        if self._polling_users == 1:
            await self.flush()  # what was tracked before is history, not news
            self.scheduler.start(a.item.key for a in self.working)
            self._polling = asyncio.get_running_loop().create_task(self._run_polling())
        try:
            yield
        finally:
            self._polling_users -= 1
            if self._polling_users == 0:
                await self._stop_polling()

    async def stop_polling(self) -> None:
        """Stop polling now, whoever asked for it (in-flight polls are cancelled; leases are
        kept until they expire, as if this process had died: for tests and benchmarks of
        failover)."""
        self._polling_users = 0
        await self._stop_polling()

    async def _stop_polling(self) -> None:
        task, self._polling = self._polling, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for active in self.working:
            self.scheduler.remove(active.item.key)

    async def _run_polling(self) -> None:
        names = set(self._health)
        try:
            await self._run_polling_parts()
        finally:
            for name in set(self._health) - names:
                del self._health[name]  # polling parts report only while polling runs

    async def _run_polling_parts(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._supervised("scheduler", self._dispatch))
            tg.create_task(self._supervised("working set", self._follow_log))
            for name, poller in self._pollers.items():
                run = functools.partial(poller.run, self._poll)
                tg.create_task(self._supervised(f"poller {name}", run))
            if self.store.shared:
                tg.create_task(self._supervised("leases", self._hold_leases))
                tg.create_task(self._supervised("tracking", self._hear_tracking))
            # Sinks deliver while the engine runs: each its own part, so one failing or slow
            # sink never holds up polling, the readers of the log, or another sink.
            for name in self.sinks.names:
                run = functools.partial(self.sinks.run, name)
                tg.create_task(self._supervised(f"sink {name}", run))
            if self.sinks.names and self.store.shared:
                tg.create_task(self._supervised("sink leases", self.sinks.hold_leases))

    async def _dispatch(self) -> None:
        """Hand due items to their sources' pollers, for good."""
        while True:
            if not self.recorder.room.is_set():
                await self.recorder.room.wait()  # the store is behind: hold polling
            for key in self.scheduler.pop_due(self._hold):
                active = self.working.get(key)
                if active is None:
                    self.scheduler.remove(key)
                    continue
                self._pollers[active.item.source].queue.send_nowait(key)
            self._wake.clear()
            due = self.scheduler.next_due()
            timeout = None if due is None else max(0.0, due - self._clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def _hold(self, key: str) -> float | None:
        active = self.working.get(key)
        if active is None:
            return None
        source = active.item.source
        if not self._polls(source):
            return self._clock() + self.scheduler.interval
        paused = self._pollers[source].paused_for
        return self._clock() + paused if paused > 0 else None

    async def _poll(self, poller: SourcePoller, key: str) -> None:
        """Poll one due item (its source's room is taken) and schedule its next poll."""
        active = self.working.get(key)
        if active is None:  # finished or untracked since it fell due
            poller.limit.release()
            return
        outcome = await poller.refresh(active.item, self._now)
        changed = await self._take(key, active, outcome)
        if key in self.working:
            paused = poller.paused_for
            wait = self._clock() + paused if paused > 0 else None
            self.scheduler.done(key, changed=changed, wait_until=wait)
            self._wake.set()

    async def _take(self, key: str, active: Active, outcome: PollOutcome) -> bool:
        """Record a poll's outcome; returns whether the store recorded a change. An item that
        finished (or is no longer tracked) leaves the working set."""
        now = self._now()
        if outcome.item is None:
            assert outcome.error is not None
            active.error = ItemError.of(outcome.error, now)
            self.recorder.submit(Observation(key, now, None, active.error))
            return False
        new = merge(active.item, outcome.item)
        changed = significant(active.item, new)
        active.item, active.error = new, None
        pending = self.recorder.submit(Observation(key, now, outcome.item))
        if changed or new.lifecycle.is_terminal:
            # Wait for the commit: a change is the store's to judge, and an item is not polled
            # again until its change is recorded (so none is ever skipped).
            committed = await pending
            assert isinstance(committed, Committed)
            if committed.outcome is Outcome.UNTRACKED:
                self._drop(key)
                return False
            changed = committed.outcome is Outcome.RECORDED
            if changed:
                active.changed_at = now
        if new.lifecycle.is_terminal:
            self._drop(key)
        return changed

    async def _follow_log(self) -> None:
        """Keep the working set up to date with what others committed (webhooks, other
        replicas): the log is read like any other reader reads it."""
        sub = self.broadcaster.subscribe()
        try:
            async for change in sub:
                active = self.working.get(change.key)
                if active is None:
                    continue
                active.item = merge(active.item, change.after)
                active.changed_at = change.observed_at
                if active.item.lifecycle.is_terminal:
                    self._drop(change.key)
        finally:
            sub.close()

    async def _hold_leases(self) -> None:
        """Several processes on one store: take and renew the leases of every source three
        times a lease period; poll exactly the sources held. While the store is away, keep
        what was held until its lease would have expired."""
        names = list(self._clients)
        while True:
            try:
                held = await self.store.lease(names, self.lease_ttl)
                self._lease_renewed = self._clock()
            except Exception as exc:
                if self._clock() - self._lease_renewed < self.lease_ttl:
                    held = set(self._polled or ())
                else:
                    held = set()
                log.warning(
                    "scanhub: renewing leases failed (%s); polling %s", exc, held or "nothing"
                )
            await self._poll_sources(held)
            await asyncio.sleep(self.lease_ttl / 3)

    async def _poll_sources(self, held: set[str]) -> None:
        before = set(self._polled or ())
        if held == before:
            return
        self._polled = set(held)
        log.info("scanhub: polling %s", ", ".join(sorted(held)) or "nothing")
        for source in before - held:
            for key in self.working.keys_of(source):
                self._drop(key)
        gained = sorted(held - before)
        if gained:
            await self._take_on(gained)

    async def _hear_tracking(self) -> None:
        """Items another process tracked: take on those of the sources polled here."""
        async for sources in self.store.tracking_changes():
            chosen = set(self._polled or ()) if not sources else set(sources)
            polled = [s for s in chosen if self._polls(s) and s in self._clients]
            if polled:
                await self._take_on(polled)

    # --- snapshot -----------------------------------------------------------------------------

    async def snapshot(self, *, refresh_terminal: bool = False) -> Snapshot:
        """Refresh tracked items concurrently (bounded per source) and return them all, as the
        store has them afterwards. Finished items are final and not asked again unless
        `refresh_terminal`. Changes are recorded in the store."""
        await self.open()
        await self.flush()
        todo = [
            a
            for a in self.working
            if self._polls(a.item.source) and self.scheduler.state(a.item.key) != "in flight"
        ]
        if refresh_terminal:
            known = {a.item.key for a in todo}
            for stored in await self.store.tracked():
                item = stored.item
                if (
                    item.lifecycle.is_terminal
                    and item.key not in known
                    and self._polls(item.source)
                    and item.source in self._clients
                ):
                    todo.append(Active(item, stored.origin))
        await asyncio.gather(*(self._poll_once(a) for a in todo))
        await self.flush()
        stored_items = await self.store.tracked()
        return Snapshot(
            items=tuple(s.item for s in stored_items),
            errors={s.key: s.last_error for s in stored_items if s.last_error is not None},
            observed_at=self._now(),
            source_errors=self.source_errors,
        )

    async def _poll_once(self, active: Active) -> None:
        poller = self._pollers[active.item.source]
        await poller.limit.acquire()
        outcome = await poller.refresh(active.item, self._now)
        await self._take(active.item.key, active, outcome)

    # --- consumers ----------------------------------------------------------------------------

    def subscribe(
        self, since: int | None = None, wants: Callable[[Change], bool] | None = None
    ) -> Subscription:
        """A reader of the committed log after `since` (None: from now on) in this process:
        what `watch` reads, and the service's live stream. Close it when done."""
        return self.broadcaster.subscribe(since, wants)

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
        handles a change; a consumer that falls behind loses nothing: it reads the store's log
        until it has caught up.
        """
        chosen = frozenset(keys) if keys is not None else None
        end = None if deadline is None else self._clock() + deadline

        def wants(change: Change) -> bool:
            return chosen is None or change.key in chosen

        async with self.polling(interval):
            if initial:
                stored, position = await self.store.tracked_at(chosen)
                sub = self.broadcaster.subscribe(position, wants)
            else:
                stored, sub = [], self.broadcaster.subscribe(None, wants)
            try:
                now = self._now()
                for s in stored:
                    yield Change(None, s.item, now)
                while True:
                    change = sub.next_nowait()
                    if change is not None:
                        yield change
                        continue
                    remaining = None if end is None else end - self._clock()
                    if remaining is not None and remaining <= 0:
                        return
                    if sub.behind:
                        await sub.catch_up()
                        continue
                    if until_done and self._all_done(chosen, sub):
                        return
                    self._progress.clear()
                    waiters = [
                        asyncio.ensure_future(sub.wait()),
                        asyncio.ensure_future(self._progress.wait()),
                    ]
                    try:
                        await asyncio.wait(
                            waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                        )
                    finally:
                        for w in waiters:
                            w.cancel()
            finally:
                sub.close()

    def _all_done(self, keys: frozenset[str] | None, sub: Subscription) -> bool:
        if not self.recorder.idle or sub.position < self.recorder.last_id:
            return False  # a final change may not have reached the consumer yet
        if keys is None:
            return len(self.working) == 0
        return not any(k in self.working for k in keys)

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
        await self.flush()
        stored = await self.store.get(key)
        active = self.working.get(key)
        last = active.item if active is not None else (stored.item if stored else item)
        if stored is not None and stored.item.lifecycle.is_terminal:
            return stored.item
        raise WaitTimeoutError(
            f"{key} still {last.lifecycle.value} after {timeout}s",
            item=last,
            vendor=last.vendor,
            source=last.source,
            operation="wait",
        )


__all__ = ["EngineHealth", "ScanHub"]

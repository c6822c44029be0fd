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
- The front is thin: it keeps what README promises (tracking, reading, watching, health) and
  leaves the rest to the parts, each an attribute: `hub.sources` (the clients, their session,
  each source's concurrency and health), `hub.discovery` (queries, rules, each source's last
  failure), `hub.runner` (the background tasks), `hub.loop`, `hub.scheduler`,
  `hub.recorder`, `hub.broadcaster`, `hub.sinks` and `hub.store`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Self, TypeVar, cast

from attrs import frozen

from .._changes import Change, ItemError, Snapshot
from .._clients import Client
from .._defaults import BACKOFF, INTERVAL, LEASE_SECONDS, MAX_INTERVAL
from .._model import Item, Promotion, Scan
from .._sinks import Sink
from ..store import Committed, MemoryStore, Observation, Store, StoredItem
from . import consumers
from .broadcast import Broadcaster, Subscription
from .discovery import Discovery
from .polling import PollLoop
from .recorder import Recorder, RecorderHealth, Untrack
from .replication import Replication
from .runner import Part, Runner
from .scheduler import Scheduler
from .sinks import Deliverer
from .sources import Sources
from .supervise import PartHealth
from .tracked import WorkingSet

log = logging.getLogger("scanhub")

#: A Scan or a Promotion: `wait` gives back the kind it was given.
_I = TypeVar("_I", bound=Scan | Promotion)


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

    Use as `async with ScanHub([client, ...]) as hub:`; it opens the store (`MemoryStore`
    unless one is given) and resumes what it tracks, one `aiohttp.ClientSession` shared by
    every client that did not bring its own, and closes them on exit.

    `concurrency=None` (the default) adapts each source's concurrency between 1 and
    `max_concurrency` (and never past its `RateLimit`); an integer fixes it.

    What is not here is on a part: `hub.sources` (add a client, find one, a source's
    concurrency and health), `hub.discovery` (discovery queries and rules, each source's last
    failure), `hub.runner` (`stop_polling`).
    """

    def __init__(
        self,
        clients: Iterable[Client] = (),
        *,
        concurrency: int | None = None,
        max_concurrency: int = 128,
        interval: float = INTERVAL,
        max_interval: float = MAX_INTERVAL,
        backoff: float = BACKOFF,
        connection_limit: int = 512,
        store: Store | None = None,
        queue_size: int = 10_000,
        max_pending: int = 10_000,
        lease_ttl: float = LEASE_SECONDS,
        sinks: Iterable[Sink] = (),
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.interval, self.max_interval, self.lease_ttl = interval, max_interval, lease_ttl
        self.store: Store = store if store is not None else MemoryStore()
        #: The engine's monotonic clock and wall clock (injected in tests).
        self.clock, self.now = clock, now
        self.scheduler = Scheduler(
            interval=interval, max_interval=max_interval, backoff=backoff, clock=clock, rng=rng
        )
        self.recorder = Recorder(self.store, max_pending=max_pending, now=now)
        self.broadcaster = Broadcaster(self.store, capacity=queue_size)
        self.loop = PollLoop(
            self.store,
            self.recorder,
            self.broadcaster,
            self.scheduler,
            concurrency=concurrency,
            max_concurrency=max_concurrency,
            polled=set() if self.store.shared else None,
            clock=clock,
            now=now,
        )
        #: The clients by source name, and the HTTP session they share.
        self.sources = Sources(self.loop, connection_limit=connection_limit)
        #: Discovery queries, the rules that re-run them, and each source's last failure.
        self.discovery = Discovery(
            self.sources.client,
            lambda item, how: self.track(item, how=how),
            self.flush,
            self.loop.polls,
            now,
        )
        #: The sinks: each a reader of the committed log with its cursor in the store.
        self.sinks = Deliverer(
            self.store, self.broadcaster, list(sinks), lease_ttl=lease_ttl, now=now, rng=rng
        )
        #: The owner of every background task (`runner.stop_polling()` stops polling now,
        #: whoever asked for it, keeping leases until they expire: for tests of failover).
        self.runner = Runner(
            functools.partial(_always_parts, self),
            functools.partial(_polling_parts, self),
            before_polling=functools.partial(_before_polling, self),
            after_polling=self.loop.stop,
        )
        self._opened = False
        self._interval_given = False  # a polling block set the scheduler's interval
        for client in clients:
            self.sources.add(client)

    @property
    def working(self) -> WorkingSet:
        """The items this process works on (active, of the sources it polls)."""
        return self.loop.working

    # --- lifetime -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
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
        self.sources.open_session()
        await self.store.prune(self.now())
        await self.broadcaster.start_position()
        if self.loop.polled is None:
            await self.loop.take_on(self.sources.names)
        self.runner.start()

    async def close(self) -> None:
        """Stop the engine, commit what waits (for up to ten seconds), close the store, the
        clients and the session."""
        await self.runner.stop_polling()
        if self._opened:
            await self.recorder.close()
            await self.runner.stop()
            self.broadcaster.close()
            with contextlib.suppress(Exception):  # a store already gone holds no lease either
                await self.store.release_leases()
            await self.store.close()
            self._opened = False
        await self.sources.close()

    def polling(
        self, interval: float | None = None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """An async context: poll for as long as the block runs (what `watch` does, and a
        service for good). Nested and concurrent blocks share one engine; it stops when the
        last ends. `interval`, when given, is the engine's polling interval from then on (one
        for every block) until the last block ends: then the hub's own (`interval=` of
        `ScanHub`) again."""
        return self._polling(interval)

    @contextlib.asynccontextmanager
    async def _polling(self, interval: float | None) -> AsyncIterator[None]:
        if interval is not None:
            self.scheduler.interval = interval
            self._interval_given = True
        try:
            async with self.runner.polling():
                yield
        finally:
            # Whichever block gave one (an inner `wait(interval=)` in a block given none too).
            if self._interval_given and not self.runner.polling_blocks:
                self.scheduler.interval = self.interval
                self._interval_given = False

    # --- tracking -------------------------------------------------------------------------

    def track(self, item: Item, *, how: str = "track") -> str:
        """Start tracking `item` (its source must be a registered client); returns its key.
        Tracking a key again moves it forward by the monotonic rule. The store commits it
        shortly (`await flush()` waits for that); once committed, an item that is not finished
        is polled (when this process polls its source). May be called while a watch runs."""
        self.sources.client(item.source)
        pending = self.recorder.submit(Observation(item.key, self.now(), item, None, how))
        pending.add_done_callback(functools.partial(self.loop.tracked, item, how))
        return item.key

    def untrack(self, item: Item | str) -> None:
        """Stop tracking an item (by item or key); unknown keys are ignored. Its history stays."""
        key = item if isinstance(item, str) else item.key
        self.loop.drop(key)
        gone = self.recorder.submit(Untrack((key,)))
        # Again once committed: a track of the key handed in before it (committed first, in
        # order) took the item on after the drop above.
        gone.add_done_callback(lambda _: self.loop.drop(key))

    async def flush(self) -> None:
        """Wait until everything tracked, untracked or observed so far is committed, and each
        item tracked is taken on (nothing to wait for before `open` or after `close`)."""
        if self._opened:
            await self.recorder.flush()
            # A commit that ended in the step before this call has its taking-on (`track`'s
            # done-callback) queued behind the caller, and the recorder had nothing left to
            # wait for: one step lets it run (a snapshot right after would not poll the item).
            await asyncio.sleep(0)

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

    async def apply(self, item: Item, *, how: str = "track") -> Committed:
        """Take a state the vendor pushed (a webhook) as a poll's answer: track the item if it
        is new, and commit it; returns what the commit did."""
        self.sources.client(item.source)
        await self.open()
        (committed,) = await self.recorder.commit([Observation.of(item, how, self.now())])
        self.loop.pushed(item, committed, self.now())
        return committed

    def poke(self, keys: Iterable[str]) -> int:
        """Poll these items as soon as their sources allow (a webhook said something moved);
        returns how many were rescheduled. Only while polling runs, for items polled here."""
        return self.loop.poke(keys)

    # --- discovery (the rest, rules and each source's last failure: `hub.discovery`) ----------

    async def discover_promotions(
        self, source: str, application_key: str, version: str, **filters: str | None
    ) -> list[Item]:
        """Track every promotion of an application version (AppTrust; filters: target_stage,
        status, promoted_by). Same as
        `hub.discovery.discover(source, application_key=, version=, ...)`."""
        return await self.discovery.discover(
            source, application_key=application_key, version=version, **filters
        )

    async def discover_scans(
        self, source: str, application_id: str | None = None, status: str | None = None
    ) -> list[Item]:
        """Track every scan of an application (AppSec+), optionally in one status (a failure
        of the vendor is kept in `hub.discovery.errors` and returns []; a source whose vendor
        takes no such query is a `BadRequestError`)."""
        return await self.discovery.discover(source, application_id=application_id, status=status)

    # --- health ---------------------------------------------------------------------------

    def health(self) -> EngineHealth:
        """Whether the engine runs and records (what `/readyz` answers)."""
        return EngineHealth(
            self._opened and self.runner.running,
            self.runner.polling_now,
            self.recorder.health(),
            self.runner.parts(),
        )

    # --- snapshot, consumers --------------------------------------------------------------

    async def snapshot(self, *, refresh_terminal: bool = False) -> Snapshot:
        """Refresh tracked items concurrently (bounded per source) and return them all, as the
        store has them afterwards. Finished items are final and not asked again unless
        `refresh_terminal`. Changes are recorded in the store."""
        return await consumers.snapshot(self, refresh_terminal=refresh_terminal)

    def subscribe(
        self, since: int | None = None, wants: Callable[[Change], bool] | None = None
    ) -> Subscription:
        """A reader of the committed log after `since` (None: from now on) in this process:
        what `watch` reads, and the service's live stream. Close it when done."""
        return self.broadcaster.subscribe(since, wants)

    def watch(
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
        (and no id), so a consumer sees each item's final state exactly once in the stream;
        but a placeholder (tracked by id, nothing read from the vendor yet) is no state: it
        comes with its first one.
        The watch ends when every tracked item is terminal (`until_done`, the default) or at
        `deadline` seconds; with `until_done=False` and no deadline it runs until the consumer
        stops. Items may be tracked and untracked meanwhile. Polling goes on while the consumer
        handles a change; a consumer that falls behind loses nothing: it reads the store's log
        until it has caught up. `interval`, when given, becomes the engine's polling interval
        (shared by every consumer of this hub) until the last polling block ends, as
        `polling(interval)` sets it.
        """
        return consumers.watch(
            self, interval, deadline, initial=initial, until_done=until_done, keys=keys
        )

    async def wait(
        self,
        item: _I,
        timeout: float | None = None,  # noqa: ASYNC109 - the documented API is wait(item, timeout=)
        *,
        interval: float | None = None,
    ) -> _I:
        """Track `item` and poll it until terminal; raises `WaitTimeoutError` after `timeout`
        seconds (the error's `item` is its last known state). `interval` is as `watch`'s: the
        engine's polling interval while it polls."""
        # The stored item has the key of the one given, so it is of its kind.
        return cast(_I, await consumers.wait(self, item, timeout, interval=interval))


# --- the engine's background tasks (what `ScanHub.runner` runs) -------------------------------


def _always_parts(hub: ScanHub) -> list[Part]:
    """The tasks that run while the store is open."""
    return [
        ("recorder", hub.recorder.run),
        ("broadcaster", hub.broadcaster.run),
        ("pruner", functools.partial(_prune, hub)),
    ]


async def _prune(hub: ScanHub) -> None:
    # Retention runs hourly while the engine runs (and when the store is opened).
    while True:
        await asyncio.sleep(3600)
        await hub.store.prune(hub.now())


def _polling_parts(hub: ScanHub) -> list[Part]:
    """The tasks polling runs: dispatch, the working set's reading of the log, one poller
    per source, replication on a shared store, one deliverer per sink (so one failing or
    slow sink never holds up polling, the readers of the log, or another sink)."""
    loop, store, sinks = hub.loop, hub.store, hub.sinks
    parts: list[Part] = [
        ("scheduler", loop.dispatch),
        ("working set", loop.follow_log),
    ]
    for name, poller in loop.pollers.items():
        parts.append((f"poller {name}", functools.partial(poller.run, loop.poll)))
    if store.shared:
        replication = Replication(
            store, loop, hub.sources.names, lease_ttl=hub.lease_ttl, clock=hub.clock
        )
        parts += [("leases", replication.hold_leases), ("tracking", replication.hear_tracking)]
    for name in sinks.names:
        parts.append((f"sink {name}", functools.partial(sinks.run, name)))
    if sinks.names and store.shared:
        parts.append(("sink leases", sinks.hold_leases))
    return parts


async def _before_polling(hub: ScanHub) -> None:
    """What happens before the first polling block starts its tasks."""
    await hub.open()
    await hub.flush()  # what was tracked before is history, not news
    hub.loop.start()


__all__ = ["EngineHealth", "ScanHub"]

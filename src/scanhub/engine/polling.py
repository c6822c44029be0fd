"""`PollLoop`: what polling is, once the engine runs: due items handed to their sources, each
poll's outcome turned into an observation for the recorder, the next poll scheduled.

It owns the working set (the active items of the sources this process polls), the scheduler
and one `SourcePoller` per source. A poll whose answer changes the item waits for the store to
commit it before the item is scheduled again, so no state the vendor showed is skipped; an item
that finished (or is no longer tracked) leaves the working set. What others commit (webhooks,
other replicas) reaches the working set through the committed log, like every other reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime

from .._changes import ItemError, merge, significant
from .._clients import Client, PollOutcome
from .._model import Item
from ..store import Committed, Observation, Outcome, Store
from .broadcast import Broadcaster
from .poller import SourceHealth, SourcePoller, limit_for
from .recorder import Recorder
from .scheduler import IN_FLIGHT, Scheduler
from .tracked import Active, WorkingSet


class PollLoop:
    """Polling (see the module docstring). `polled` is the set of sources this process polls
    (None: every source; on a shared store, those it holds the lease of)."""

    def __init__(
        self,
        store: Store,
        recorder: Recorder,
        broadcaster: Broadcaster,
        scheduler: Scheduler,
        *,
        concurrency: int | None,
        max_concurrency: int,
        polled: set[str] | None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store, self.recorder, self.broadcaster = store, recorder, broadcaster
        self.scheduler = scheduler
        self.working = WorkingSet()
        self.pollers: dict[str, SourcePoller] = {}
        self.polled = polled
        self.concurrency, self.max_concurrency = concurrency, max_concurrency
        self._clock, self._now = clock, now
        #: True while the loop runs (items taken on are scheduled at once).
        self.running = False
        self._wake = asyncio.Event()
        #: Set whenever an item leaves the working set, or a poll fails for good (a watch
        #: waiting for the end looks: what is left may never move).
        self.progress = asyncio.Event()

    def add_source(self, client: Client) -> SourcePoller:
        """Poll `client`'s source, under its own concurrency limit."""
        poller = SourcePoller(client, limit_for(client, self.concurrency, self.max_concurrency))
        self.pollers[client.name] = poller
        return poller

    def polls(self, source: str) -> bool:
        """True when this process polls `source`."""
        return self.polled is None or source in self.polled

    def health(self) -> list[SourceHealth]:
        """Every source's health, in the order the sources were added."""
        return [
            p.health(self.working.count_of(name), self.polls(name))
            for name, p in self.pollers.items()
        ]

    # --- the working set ----------------------------------------------------------------------

    async def take_on(self, sources: Collection[str]) -> None:
        """Load the active items of `sources` from the store into the working set (and the
        schedule, while the loop runs); those it held before that the store no longer has
        under way (another process untracked or finished them) leave it."""
        held = {
            key: self.working.get(key) for source in sources for key in self.working.keys_of(source)
        }
        for stored in await self.store.active(sources):
            held.pop(stored.key, None)
            if stored.item.source not in self.pollers:
                continue  # a source no longer configured: keep its history, do not poll
            fresh = stored.key not in self.working
            active = self.working.add(stored.item, stored.origin, changed_at=stored.last_change)
            if fresh:
                active.error = stored.last_error
                self._schedule(stored.key)
        # Only what was held before the read, as it was then (an item untracked and tracked
        # again meanwhile is another `Active`, and in the store).
        for key, before in held.items():
            if self.working.get(key) is before:
                self.drop(key)
        self._wake.set()

    def tracked(self, item: Item, how: str, pending: asyncio.Future[object]) -> None:
        """A track was committed (a done-callback): take the item on if it is under way and
        polled here."""
        if pending.cancelled() or pending.exception() is not None:
            return
        committed = pending.result()
        if not isinstance(committed, Committed) or committed.lifecycle is None:
            return
        if committed.lifecycle.is_terminal or not self.polls(item.source):
            return
        fresh = item.key not in self.working
        self.working.add(item, how)
        if fresh:
            self._schedule(item.key)

    def pushed(self, item: Item, committed: Committed, at: datetime) -> None:
        """The vendor pushed a state (a webhook) and the store took it: move the working copy."""
        active = self.working.get(item.key)
        if active is None or committed.outcome is Outcome.STALE:
            return  # (stale: the store holds a later observation, which the log brings)
        active.item = merge(active.item, item)
        if committed.outcome is Outcome.RECORDED:
            active.changed_at = at
        if active.item.lifecycle.is_terminal:
            self.drop(item.key)

    def drop(self, key: str) -> None:
        """An item leaves the working set (finished, untracked, another process's now)."""
        self.working.remove(key)
        self.scheduler.remove(key)
        self.progress.set()

    async def set_polled(self, held: set[str]) -> None:
        """Poll exactly these sources from now on: drop the items of those lost, take on the
        active items of those gained."""
        before = set(self.polled or ())
        if held == before:
            return
        self.polled = set(held)
        for source in before - held:
            for key in self.working.keys_of(source):
                self.drop(key)
        gained = sorted(held - before)
        if gained:
            try:
                await self.take_on(gained)
            except BaseException:
                # Not taken on: not polled yet either, so that the next call takes them on
                # (else their active items would never be loaded).
                self.polled -= set(gained)
                raise

    def poke(self, keys: Iterable[str]) -> int:
        """Make these items due now (only while the loop runs); returns how many."""
        if not self.running:
            return 0
        count = sum(1 for key in keys if key in self.working and self.scheduler.poke(key))
        if count:
            self._wake.set()
        return count

    def _schedule(self, key: str) -> None:
        if self.running:
            self.scheduler.add(key)
            self._wake.set()

    # --- running ------------------------------------------------------------------------------

    def start(self) -> None:
        """Schedule a first round of everything in the working set."""
        self.running = True
        self.scheduler.start(a.item.key for a in self.working)

    def stop(self) -> None:
        """Forget every schedule (the loop's tasks are cancelled by their owner)."""
        self.running = False
        for active in self.working:
            self.scheduler.remove(active.item.key)

    async def dispatch(self) -> None:
        """Hand due items to their sources' pollers, for good (a task the engine owns)."""
        while True:
            if not self.recorder.room.is_set():
                await self.recorder.room.wait()  # the store is behind: hold polling
            for key in self.scheduler.pop_due(self._hold):
                active = self.working.get(key)
                if active is None:
                    self.scheduler.remove(key)
                    continue
                self.pollers[active.item.source].queue.send_nowait(key)
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
        if not self.polls(source):
            return self._clock() + self.scheduler.interval
        paused = self.pollers[source].paused_for
        return self._clock() + paused if paused > 0 else None

    async def poll(self, poller: SourcePoller, key: str) -> None:
        """Poll one due item (its source's room is taken) and schedule its next poll."""
        active = self.working.get(key)
        if active is None:  # finished or untracked since it fell due
            poller.limit.release()
            return
        outcome = await poller.refresh(active.item, self._now)
        changed = await self.take(key, active, outcome)
        if key in self.working:
            paused = poller.paused_for
            wait = self._clock() + paused if paused > 0 else None
            self.scheduler.done(key, changed=changed, wait_until=wait)
            self._wake.set()

    async def poll_once(self, active: Active) -> None:
        """Poll one item now, outside the schedule (a snapshot)."""
        poller = self.pollers[active.item.source]
        await poller.limit.acquire()
        outcome = await poller.refresh(active.item, self._now)
        await self.take(active.item.key, active, outcome)

    def due_now(self) -> list[Active]:
        """The active items a snapshot polls: polled here and not in flight."""
        return [
            a
            for a in self.working
            if self.polls(a.item.source) and self.scheduler.state(a.item.key) != IN_FLIGHT
        ]

    async def take(self, key: str, active: Active, outcome: PollOutcome) -> bool:
        """Record a poll's outcome; returns whether the store recorded a change. An item that
        finished (or is no longer tracked) leaves the working set."""
        now = self._now()
        if outcome.item is None:
            assert outcome.error is not None
            active.error = ItemError.of(outcome.error, now)
            self.recorder.sight(key, now, active.error)
            if active.error.permanent:
                self.progress.set()
            return False
        before = active.item
        new = merge(before, outcome.item)
        changed = significant(before, new)
        active.item, active.error = new, None
        if not changed and not new.lifecycle.is_terminal:
            # Nothing the store records: the item was seen (its last error, if any, is over).
            self.recorder.sight(key, now)
            return False
        pending = self.recorder.submit(Observation(key, now, outcome.item))
        if changed or new.lifecycle.is_terminal:
            # Wait for the commit: a change is the store's to judge, and an item is not polled
            # again until its change is recorded (so none is ever skipped).
            committed = await pending
            assert isinstance(committed, Committed)
            if committed.outcome is Outcome.UNTRACKED:
                self.drop(key)
                return False
            if committed.outcome is Outcome.STALE:
                # The store holds a later observation (a webhook, a replica whose clock is
                # ahead): this one is not recorded. The working copy goes back (unless the log
                # moved it meanwhile) and the item stays, so that the next poll sees the change
                # again and records it; a final state dropped here would be under way for good.
                if active.item is new:
                    active.item = before
                return False
            changed = committed.outcome is Outcome.RECORDED
            if changed:
                active.changed_at = now
        if new.lifecycle.is_terminal:
            self.drop(key)
        return changed

    async def follow_log(self) -> None:
        """Keep the working set up to date with what others committed (webhooks, other
        replicas): the log is read like any other reader reads it (a task the engine owns)."""
        sub = self.broadcaster.subscribe()
        try:
            async for change in sub:
                active = self.working.get(change.key)
                if active is None:
                    continue
                active.item = merge(active.item, change.after)
                active.changed_at = change.observed_at
                if active.item.lifecycle.is_terminal:
                    self.drop(change.key)
        finally:
            sub.close()


__all__ = ["PollLoop"]

"""`Broadcaster`: the store's committed log, fanned out to every reader in this process.

One task follows the store (`Store.follow`: this process's commits, and on a shared store every
replica's, in id order) and hands each transition to every `Subscription`: `watch()`, each
live-stream client, the service's metrics, the engine's own working set. A subscription holds a
bounded channel; one that falls behind (its channel is full) loses nothing: its channel is
emptied and it reads the store's log from its last id until it has caught up, then takes from
the channel again, skipping what it already has. What a subscriber gets is what the store
decoded from the log, so an id has one body, whatever the reader.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable

from .._changes import Change
from .._errors import StoreUnavailable
from ..store import Store
from .channel import Channel

log = logging.getLogger("scanhub")

#: How many transitions a behind subscriber reads from the store at a time.
PAGE = 500


class Subscription:
    """One reader of the committed log (see the module docstring). Iterate it for changes in
    id order, from `since` on; `close()` ends it."""

    def __init__(
        self,
        broadcaster: Broadcaster,
        since: int,
        wants: Callable[[Change], bool] | None,
        capacity: int,
    ) -> None:
        self._broadcaster = broadcaster
        self.wants = wants
        #: The id of the newest transition this subscriber was given (or passed over as
        #: unwanted).
        self.position = since
        self._channel: Channel[Change] = Channel(capacity)
        # Read the store first when starting before the broadcaster's position.
        self._read = since < broadcaster.position
        self._backlog: deque[Change] = deque()
        self.closed = False
        #: How many times it fell behind and read the store to catch up.
        self.fell_behind = 0
        self._retry = 0.25
        # Set whenever there may be something new to read (an offer, falling behind, closing).
        self._news = asyncio.Event()

    def offer(self, change: Change) -> None:
        """From the broadcaster: take a committed change, or fall behind (the channel is
        emptied and the store read instead)."""
        if self.closed or self._read:
            return
        if not self._channel.send_nowait(change):
            self._channel.clear()
            self._read = True
            self.fell_behind += 1
        self._news.set()

    def close(self) -> None:
        """Stop reading; the broadcaster forgets this subscription."""
        self.closed = True
        self._channel.close()
        self._news.set()
        self._broadcaster.discard(self)

    def __aiter__(self) -> AsyncIterator[Change]:
        return self

    async def __anext__(self) -> Change:
        change = await self.next()
        if change is None:
            raise StopAsyncIteration
        return change

    def next_nowait(self) -> Change | None:
        """The next change if one is at hand without waiting or reading the store, else
        None."""
        while self._backlog:
            change = self._backlog.popleft()
            if self._take(change):
                return change
        if self._read:
            return None
        while len(self._channel):
            change = self._channel.receive_nowait()
            if self._take(change):
                return change
        return None

    async def next(self) -> Change | None:
        """The next change (None once closed)."""
        while not self.closed:
            change = self.next_nowait()
            if change is not None:
                return change
            if self._read:
                await self._read_store()
            else:
                await self.wait()
        return None

    @property
    def behind(self) -> bool:
        """True when the next changes must be read from the store (`catch_up`)."""
        return self._read and not self._backlog

    async def catch_up(self) -> None:
        """Read the next page of the log from the store (when `behind`)."""
        if self._read:
            await self._read_store()

    async def wait(self) -> None:
        """Return when there may be something to read (or the subscription closed)."""
        while not (self._backlog or self._read or len(self._channel) or self.closed):
            self._news.clear()
            await self._news.wait()

    def _take(self, change: Change) -> bool:
        tid = change.id or 0
        if tid <= self.position:
            return False  # had it already (from the store while catching up)
        self.position = tid
        return self.wants is None or self.wants(change)

    async def _read_store(self) -> None:
        """Catch up from the store: a page of the log after `position`. Offers go to the
        channel again from the moment before the read, so nothing committed after it is
        missed; a full page means more to read first. Repeats are skipped by id. While the
        store is away, it waits a moment and stays behind (nothing is skipped)."""
        self._read = False
        try:
            page = await self._broadcaster.store.transitions(since=self.position, limit=PAGE)
        except StoreUnavailable:
            self._read = True
            self._retry = min(5.0, self._retry * 2)
            await asyncio.sleep(self._retry)
            return
        except BaseException:
            self._read = True
            raise
        self._retry = 0.25
        self._backlog.extend(t.change for t in page)
        if len(page) == PAGE:
            self._read = True


class Broadcaster:
    """Follows the store's log and fans it out (see the module docstring)."""

    def __init__(self, store: Store, *, capacity: int = 10_000) -> None:
        self.store = store
        self.capacity = capacity
        #: The id of the newest transition handed out.
        self.position = 0
        self._subs: set[Subscription] = set()
        self._started = asyncio.Event()

    def subscribe(
        self,
        since: int | None = None,
        wants: Callable[[Change], bool] | None = None,
        capacity: int | None = None,
    ) -> Subscription:
        """A reader of the log after `since` (None: from now on), of the changes `wants`
        accepts."""
        start = self.position if since is None else since
        sub = Subscription(self, start, wants, capacity or self.capacity)
        self._subs.add(sub)
        return sub

    def discard(self, sub: Subscription) -> None:
        """Forget a subscription."""
        self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return len(self._subs)

    async def start_position(self) -> int:
        """Where following starts: the newest id in the store."""
        self.position = await self.store.last_id()
        return self.position

    async def run(self) -> None:
        """Follow the store from `position`, for good (a task the engine owns)."""
        self._started.set()
        async for change in self.store.follow(self.position):
            self.position = max(self.position, change.id or 0)
            for sub in list(self._subs):
                sub.offer(change)

    def close(self) -> None:
        """End every subscription."""
        for sub in list(self._subs):
            sub.close()


__all__ = ["Broadcaster", "Subscription"]

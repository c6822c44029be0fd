"""`Replication`: several processes on one store (PostgreSQL). Which sources this process polls
(leases, renewed three times a lease period), and news of items another process tracked or
untracked (`Store.tracking_changes`), so the holder of a source takes a new item on at once
and drops one no longer under way.

While the store is away, what was held is kept until its lease would have expired (no other
process can take it meanwhile), then nothing is polled rather than a source twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from .._errors import StoreUnavailable
from ..store import Store
from .polling import PollLoop

log = logging.getLogger("scanhub")


class Leases:
    """When this process's leases end, as the store set them: counted from when each renewal
    was asked (the database sets a lease's end from when its statement runs, some time after
    that), so that a lease is never held here past the store's."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self._clock = ttl, clock
        #: When the last renewal that answered was asked (None: none yet, nothing held).
        self._renewed: float | None = None

    def _left(self) -> float | None:
        """Seconds until the leases of the last renewal end (None: none held)."""
        if self._renewed is None:
            return None
        return self._renewed + self.ttl - self._clock()

    async def renew(self, store: Store, names: Sequence[str], holding: bool) -> set[str]:
        """The names `store.lease` gives this process now; raises what it raises, or
        `StoreUnavailable` when it does not answer before the leases held (`holding`) end (a
        half-open connection): nothing is then held past them."""
        asked = self._clock()
        left = self._left() if holding else None
        if left is not None and left <= 0:
            # The leases ended already (a load of a gained source's items outlasted them):
            # asked as a first renewal is, not cut off at once (dropping every source).
            left = None
        try:
            async with asyncio.timeout(max(0.0, self.ttl if left is None else left)):
                got = await store.lease(list(names), self.ttl)
        except TimeoutError:
            raise StoreUnavailable(
                "the store did not answer before the leases held ended", operation="lease"
            ) from None
        self._renewed = asked
        return got

    @property
    def unexpired(self) -> bool:
        """True while the leases of the last renewal have not ended."""
        left = self._left()
        return left is not None and left > 0

    def pause(self) -> float:
        """Seconds to the next renewal: a third of a lease, and no later than the end of the
        leases held (a renewal that failed keeps them only until then)."""
        left = self._left()
        return self.ttl / 3 if left is None or left <= 0 else min(self.ttl / 3, left)


class Replication:
    """Leases and tracking news for one process (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        loop: PollLoop,
        sources: Sequence[str],
        *,
        lease_ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.loop = store, loop
        self.sources = list(sources)
        self.lease_ttl = lease_ttl
        self._leases = Leases(lease_ttl, clock)
        self._clock = clock

    async def hold_leases(self) -> None:
        """Take and renew the leases of every source, for good; poll exactly those held (a task
        the engine owns)."""
        while True:
            try:
                held = await self._leases.renew(self.store, self.sources, bool(self.loop.polled))
            except Exception as exc:
                held = set(self.loop.polled or ()) if self._leases.unexpired else set()
                log.warning(
                    "scanhub: renewing leases failed (%s); polling %s", exc, held or "nothing"
                )
            # The next renewal is due a pause after this one, not a pause after loading a
            # gained source's items ends (after a load of two thirds of a lease or more it was
            # asked only as the lease ended, when another replica may take the source); a load
            # longer than that still delays it until the load ends.
            due = self._clock() + self._leases.pause()
            if held != set(self.loop.polled or ()):
                log.info("scanhub: polling %s", ", ".join(sorted(held)) or "nothing")
            try:
                await self.loop.set_polled(held)
            except Exception as exc:  # the gained sources are taken on at the next renewal
                log.warning("scanhub: loading the items of the sources gained failed (%s)", exc)
            await asyncio.sleep(max(0.0, due - self._clock()))

    async def hear_tracking(self) -> None:
        """Items another process tracked or untracked: take on those of the sources polled here
        and drop those no longer under way (`PollLoop.take_on`), for good (a task the engine
        owns). An empty set of sources means "anything may have changed"."""
        async for sources in self.store.tracking_changes():
            chosen = set(self.loop.polled or ()) if not sources else set(sources)
            await self._take_on(chosen)

    async def _take_on(self, chosen: set[str]) -> None:
        """Take on the active items of the chosen sources polled here, trying again with
        backoff while the store fails (the news is heard once: a listener started again
        would not hear it again, and the items would never be polled)."""
        delay = 0.2
        while True:
            polled = [s for s in chosen if self.loop.polls(s) and s in self.sources]
            if not polled:
                return
            try:
                await self.loop.take_on(polled)
                return
            except Exception as exc:
                log.warning(
                    "scanhub: loading items tracked elsewhere failed (%s); again in %.1fs",
                    exc,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(5.0, delay * 2)


__all__ = ["Replication"]

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

from ..store import Store
from .polling import PollLoop

log = logging.getLogger("scanhub")


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
        self._clock = clock
        self._renewed = 0.0

    async def hold_leases(self) -> None:
        """Take and renew the leases of every source, for good; poll exactly those held (a task
        the engine owns)."""
        while True:
            # The database sets a lease's end from when its statement runs, some time after it
            # was asked: counted here from when it was asked, a lease never outlives the
            # store's. A renewal that does not answer before the leases held end (a half-open
            # connection) fails then, so that nothing is polled past them.
            asked = self._clock()
            held_now = bool(self.loop.polled)
            left = self._renewed + self.lease_ttl - asked if held_now else self.lease_ttl
            try:
                async with asyncio.timeout(max(0.0, left)):
                    held = await self.store.lease(self.sources, self.lease_ttl)
                self._renewed = asked
            except Exception as exc:
                if self._clock() - self._renewed < self.lease_ttl:
                    held = set(self.loop.polled or ())
                else:
                    held = set()
                log.warning(
                    "scanhub: renewing leases failed (%s); polling %s", exc, held or "nothing"
                )
            if held != set(self.loop.polled or ()):
                log.info("scanhub: polling %s", ", ".join(sorted(held)) or "nothing")
            try:
                await self.loop.set_polled(held)
            except Exception as exc:  # the gained sources are taken on at the next renewal
                log.warning("scanhub: loading the items of the sources gained failed (%s)", exc)
            await asyncio.sleep(self.lease_ttl / 3)

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

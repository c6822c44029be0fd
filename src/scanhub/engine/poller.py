"""`SourcePoller`: one source's polls, under its own concurrency limit.

Each source has its own queue of due items and its own limit (adaptive by default, see
`scanhub._concurrency`), so a slow, hanging or rate-limited source never delays another. The poller
takes the source's room before it takes an item, so never more polls are in flight than the
source may take; the poll itself gives the room back, telling the limit what it met (trouble:
a 429, a 5xx, no answer; and how long it took). A vendor's pause (429 with Retry-After) lives
in one place, the client's transport; the poller only reads it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from attrs import frozen

from .._changes import ItemError
from .._clients import Client, PollOutcome
from .._concurrency import AdaptiveLimit, FixedLimit
from .._errors import ScanhubError
from .._model import Item
from .channel import Channel

log = logging.getLogger("scanhub")


@frozen
class SourceHealth:
    """How one source is doing, as the engine sees it."""

    name: str
    vendor: str
    #: Active items this process polls on it.
    active: int
    last_success: datetime | None
    last_error: ItemError | None
    #: True when its last poll succeeded (or none failed yet).
    up: bool
    #: Seconds the vendor's rate limit still pauses it.
    paused_for: float
    concurrency: int
    #: True when this process polls it (on a shared store: holds its lease).
    polled_here: bool


def limit_for(client: Client, concurrency: int | None, max_concurrency: int) -> FixedLimit:
    """The concurrency limit of a source: fixed when asked, else adaptive between 1 and
    `max_concurrency`, never past what the source's `RateLimit` lets into one window."""
    if concurrency is not None:
        return FixedLimit(concurrency)
    ceiling = max_concurrency
    rate_ceiling = client.transport.rate_ceiling
    if rate_ceiling is not None:
        ceiling = min(ceiling, rate_ceiling)
    return AdaptiveLimit(initial=min(16, ceiling), ceiling=ceiling)


class SourcePoller:
    """Polls one source (see the module docstring)."""

    def __init__(self, client: Client, limit: FixedLimit) -> None:
        self.client = client
        self.limit = limit
        self.queue: Channel[str] = Channel()
        self.last_ok: datetime | None = None
        self.last_error: ItemError | None = None
        #: Polls that returned a state.
        self.polls = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        """The source's name."""
        return self.client.name

    @property
    def most_at_once(self) -> int:
        """The most polls of this source that may ever run at once (the adaptive limit's
        ceiling; a fixed limit's value)."""
        return int(getattr(self.limit, "ceiling", self.limit.limit))

    @property
    def paused_for(self) -> float:
        """Seconds the vendor still pauses this source."""
        return self.client.transport.paused_for

    async def run(self, poll: Callable[[SourcePoller, str], Coroutine[Any, Any, None]]) -> None:
        """Hand due items to `poll(self, key)`, one task each, with the source's room taken
        (the poll gives it back), never more at once than the limit allows (a task the engine
        owns; cancelling it cancels the polls in flight)."""
        try:
            while True:
                await self.queue.wait_readable()
                # Take the source's room first; the poll gives it back.
                await self.limit.acquire()
                try:
                    key = self.queue.receive_nowait()
                except IndexError:
                    self.limit.release()
                    continue
                task = asyncio.get_running_loop().create_task(poll(self, key))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def refresh(self, item: Item, now: Callable[[], datetime]) -> PollOutcome:
        """Poll one item (the room is already taken) and give the room back; never raises but
        on cancellation."""
        try:
            outcome = await self.client.poll(item)
        except BaseException:
            self.limit.release()
            raise
        if outcome.error is None:
            self.limit.release(trouble=outcome.trouble, latency=outcome.latency)
            self.polls += 1
            self.last_ok = now()
        else:
            self.limit.release(trouble=outcome.trouble)
            if outcome.retry_after:  # the vendor said wait: the whole source waits
                self.client.transport.pause(outcome.retry_after)
            if not isinstance(outcome.error, ScanhubError):
                log.error(
                    "scanhub: unexpected error refreshing %s", item.key, exc_info=outcome.error
                )
            self.last_error = ItemError.of(outcome.error, now())
        return outcome

    def health(self, active: int, polled_here: bool) -> SourceHealth:
        """The source's health."""
        err = self.last_error
        up = err is None or (self.last_ok is not None and self.last_ok >= err.observed_at)
        return SourceHealth(
            self.name,
            self.client.vendor,
            active,
            self.last_ok,
            err,
            up,
            self.paused_for,
            self.limit.limit,
            polled_here,
        )


__all__ = ["SourceHealth", "SourcePoller", "limit_for"]

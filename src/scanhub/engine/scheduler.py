"""`Scheduler`: when each active item is polled next. Pure: no I/O, no tasks; the clock and the
random source are injected, so it is tested with a fake clock.

- Each item has a next-due time in a heap: what is due is popped in O(log n) per item, never
  by a scan of everything tracked.
- The first round is staggered over the interval (a large set) or less (a few items), so polls
  never arrive in one wave; every next poll is jittered (±`jitter`).
- Stable items back off: each quiet poll multiplies the item's interval by `backoff`, up to
  `max_interval`; a change brings it back to `interval`.
- A `hold` callback decides, as items fall due, whether one must wait (its source is paused by
  the vendor's rate limit, or another process polls it): it is parked until then, spread over a
  second, instead of being handed out.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections.abc import Callable, Iterable

from attrs import define

from .._defaults import BACKOFF, INTERVAL, MAX_INTERVAL

#: An entry's states.
SCHEDULED = "scheduled"
IN_FLIGHT = "in flight"


@define
class _Entry:
    interval: float
    due: float = 0.0
    gen: int = 0
    state: str = SCHEDULED


class Scheduler:
    """Next-due times of the items an engine polls (see the module docstring)."""

    def __init__(
        self,
        *,
        interval: float = INTERVAL,
        max_interval: float = MAX_INTERVAL,
        backoff: float = BACKOFF,
        jitter: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if (
            not _positive(interval)
            or not _positive(max_interval)
            or not backoff >= 1
            or not 0 <= jitter < 1
        ):
            raise ValueError(
                "the scheduler needs interval > 0, max_interval > 0, backoff >= 1 and "
                "0 <= jitter < 1"
            )
        self.interval = interval
        self.max_interval = max_interval
        self.backoff = backoff
        self.jitter = jitter
        self._clock = clock
        self._rng = rng or random.Random()
        self._heap: list[tuple[float, int, str]] = []
        self._entries: dict[str, _Entry] = {}
        self._gen = 0

    @property
    def interval(self) -> float:
        """Seconds between polls of an item that changed (a quiet one backs off from it)."""
        return self._interval

    @interval.setter
    def interval(self, value: float) -> None:
        check_interval(value)
        self._interval = value

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def queued(self) -> int:
        """Entries in the heap (including stale ones); read by tests that bound it."""
        return len(self._heap)

    def state(self, key: str) -> str | None:
        """`SCHEDULED`, `IN_FLIGHT`, or None when not scheduled at all."""
        entry = self._entries.get(key)
        return None if entry is None else entry.state

    def interval_of(self, key: str) -> float | None:
        """The item's current interval (after backoff)."""
        entry = self._entries.get(key)
        return None if entry is None else entry.interval

    # --- adding and removing -----------------------------------------------------------------

    def start(self, keys: Iterable[str]) -> None:
        """Schedule a first round: spread over the interval for a large set (200 items or
        more), over a proportionally shorter time for a few."""
        chosen = [k for k in keys if k not in self._entries]
        spread = self.interval * min(1.0, len(chosen) / 200)
        now = self._clock()
        for key in chosen:
            self._put(key, _Entry(self.interval), now + self._rng.uniform(0, spread))

    def add(self, key: str) -> None:
        """Schedule a new item soon (within a second, or the interval if shorter)."""
        if key in self._entries:
            return
        soon = self._rng.uniform(0, min(self.interval, 1.0))
        self._put(key, _Entry(self.interval), self._clock() + soon)

    def remove(self, key: str) -> None:
        """Forget an item (finished, untracked, or polled by another process now)."""
        self._entries.pop(key, None)  # its heap entry goes stale and is skipped

    def poke(self, key: str) -> bool:
        """Make a scheduled item due now (a webhook said it moved); False when it is unknown or
        in flight."""
        entry = self._entries.get(key)
        if entry is None or entry.state != SCHEDULED:
            return False
        self._put(key, entry, self._clock())
        return True

    # --- handing out -------------------------------------------------------------------------

    def next_due(self) -> float | None:
        """When the earliest scheduled item falls due (clock time), or None."""
        heap = self._heap
        while heap:
            due, gen, key = heap[0]
            entry = self._entries.get(key)
            if entry is not None and entry.gen == gen and entry.state == SCHEDULED:
                return due
            heapq.heappop(heap)  # stale: untracked or rescheduled since
        return None

    def pop_due(self, hold: Callable[[str], float | None] | None = None) -> list[str]:
        """The items due now, marked in flight. `hold(key)` may return a clock time until
        which an item must wait instead: it is parked until then (plus up to a second, so
        parked items do not all come back at once)."""
        now = self._clock()
        out = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, gen, key = heapq.heappop(heap)
            entry = self._entries.get(key)
            if entry is None or entry.gen != gen or entry.state != SCHEDULED:
                continue
            until = hold(key) if hold is not None else None
            if until is not None and until > now:
                self._put(key, entry, until + self._rng.uniform(0, 1.0))
                continue
            entry.state = IN_FLIGHT
            out.append(key)
        return out

    def done(self, key: str, *, changed: bool, wait_until: float | None = None) -> None:
        """An item's poll ended: schedule the next one (back to `interval` after a change,
        backed off after a quiet poll), or, with `wait_until`, not before then (the vendor
        paused the source)."""
        entry = self._entries.get(key)
        if entry is None:
            return
        now = self._clock()
        if wait_until is not None and wait_until > now:
            self._put(key, entry, wait_until + self._rng.uniform(0, 1.0))
            return
        if changed:
            entry.interval = self.interval
        else:
            grown = entry.interval * self.backoff
            entry.interval = min(self.max_interval, max(self.interval, grown))
        spread = self._rng.uniform(1 - self.jitter, 1 + self.jitter)
        self._put(key, entry, now + entry.interval * spread)

    def _put(self, key: str, entry: _Entry, due: float) -> None:
        self._gen += 1
        entry.gen, entry.due, entry.state = self._gen, due, SCHEDULED
        self._entries[key] = entry
        heapq.heappush(self._heap, (due, self._gen, key))


def check_interval(value: float | None) -> None:
    """A `ValueError` for an interval that is not a finite number of seconds above 0 (None:
    none given)."""
    if value is not None and not _positive(value):
        raise ValueError(
            f"interval: expected a finite number of seconds greater than 0, got {value!r}"
        )


def _positive(value: float) -> bool:
    """A finite number greater than 0 (not NaN, which compares false with everything)."""
    return math.isfinite(value) and value > 0


__all__ = ["IN_FLIGHT", "SCHEDULED", "Scheduler", "check_interval"]

"""Per-source concurrency: adaptive (AIMD) by default, or a fixed cap.

`AdaptiveLimit` is TCP congestion control for one vendor source. It starts at `initial`, doubles
every window of answers that come back healthy ("slow start") until the first sign of trouble,
then grows by one per healthy window and halves on trouble (additive increase, multiplicative
decrease). Trouble is a 429, a 5xx, a timeout or a connection failure, or a window whose median
answer took more than `latency_factor` times the fastest seen (the server is queueing; one slow
answer alone is not). It never goes below 1
nor above `ceiling`, which the caller sets no higher than the source's `RateLimit` allows in
flight. A source that starts answering 429 or 5xx therefore gets fewer concurrent requests,
not more.

`FixedLimit` is what `ScanHub(concurrency=N)` asks for: exactly N at a time.
"""

from __future__ import annotations

import asyncio
from collections import deque


class FixedLimit:
    """At most `limit` requests in flight."""

    adaptive = False

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("concurrency must be at least 1")
        self.limit = limit
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        """Wait for room, then take it."""
        while self.in_flight >= self.limit:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                elif not fut.cancelled():
                    self._wake()  # pass the wake-up on
                raise
        self.in_flight += 1
        self._acquired()

    def _acquired(self) -> None:
        """Fixed: nothing to note."""

    def release(self, *, trouble: bool = False, latency: float | None = None) -> None:
        """Give the room back; `trouble` and `latency` feed the adaptive limit."""
        self.in_flight -= 1
        self._observe(trouble, latency)
        self._wake()

    def _observe(self, trouble: bool, latency: float | None) -> None:
        """Fixed: nothing to learn."""

    def _wake(self) -> None:
        room = self.limit - self.in_flight
        while room > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                room -= 1


class AdaptiveLimit(FixedLimit):
    """AIMD with slow start between 1 and `ceiling` (see the module docstring)."""

    adaptive = True

    def __init__(
        self, *, initial: int = 16, ceiling: int = 128, latency_factor: float = 3.0
    ) -> None:
        ceiling = max(1, ceiling)
        super().__init__(min(max(1, initial), ceiling))
        self.ceiling = ceiling
        self.latency_factor = latency_factor
        self.slow_start = True
        self._window_done = 0
        self._window_trouble = False
        #: The most requests in flight at once during the current window.
        self._window_peak = 0
        self._fastest: float | None = None
        self._latencies: list[float] = []
        #: (limit after, reason) of the last few changes, newest last; read by tests and metrics.
        self.history: deque[tuple[int, str]] = deque(maxlen=32)

    def _acquired(self) -> None:
        self._window_peak = max(self._window_peak, self.in_flight)

    def _observe(self, trouble: bool, latency: float | None) -> None:
        if latency is not None and latency > 0:
            self._latencies.append(latency)
            if self._fastest is None or latency < self._fastest:
                self._fastest = latency
        if trouble and not self._window_trouble:
            # Halve once per window: one burst of 429s is one signal, not one per answer.
            self._window_trouble = True
            self.slow_start = False
            self._set(max(1, self.limit // 2), "decrease")
        self._window_done += 1
        if self._window_done < self.limit:
            return
        if self._latencies and self._fastest is not None and not self._window_trouble:
            median = sorted(self._latencies)[len(self._latencies) // 2]
            if median > self._fastest * self.latency_factor and median > 0.05:
                # Queueing at the server: back off before it fails.
                self.slow_start = False
                self._set(max(1, self.limit // 2), "decrease")
                self._window_trouble = True
        healthy = not self._window_trouble
        peak = self._window_peak
        self._window_done, self._window_trouble, self._window_peak = 0, False, self.in_flight
        self._latencies.clear()
        if healthy and peak + 1 >= self.limit // 2:
            # Grow only when the room was used (at some moment of the window, at least half of
            # it was in flight): an idle source keeps its limit. Answers that come back in one
            # burst empty the room before the next requests take it, so what counts is the
            # window's peak, not the moment it ends.
            grown = self.limit * 2 if self.slow_start else self.limit + 1
            self._set(min(self.ceiling, grown), "increase")

    def _set(self, limit: int, reason: str) -> None:
        if limit != self.limit:
            self.limit = limit
            self.history.append((limit, reason))

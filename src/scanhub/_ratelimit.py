"""Client-side rate limiting.

A sliding-window log rather than a token/leaky bucket (aiolimiter): a bucket of capacity N that
refills at N per period lets up to 2N requests into one period (a full burst, then the refill),
which breaks a vendor limit stated as "N requests per period" such as Sonatype Cloud's
1,500 / 5 minutes. The log keeps the send times of the last N requests and waits until the
oldest leaves the window, so no window of length `period` ever holds more than N.

`guard` widens the client's window a little: requests reach the server after varying network
delays, so two sends exactly `period` apart can arrive slightly less than `period` apart and
put N+1 into one server-side window. Half a second of guard covers that for a 5-minute limit.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from attrs import frozen


@frozen
class RateLimit:
    """At most `max_requests` in any window of `period` seconds."""

    max_requests: int
    period: float
    #: Extra seconds added to the window to absorb network jitter (see the module docstring).
    guard: float = 0.5

    @classmethod
    def iq_cloud(cls) -> RateLimit:
        """Sonatype Cloud: 1,500 requests per IP per 5 minutes."""
        return cls(1500, 300.0, 0.5)

    def __attrs_post_init__(self) -> None:
        if self.max_requests < 1 or self.period <= 0 or self.guard < 0:
            raise ValueError("RateLimit needs max_requests >= 1, period > 0 and guard >= 0")


class SlidingWindowLimiter:
    """Waits, when needed, so that no `period` window holds more than `max_requests` sends."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        # The lock of the loop that uses it: a client may be used by one event loop after
        # another (`asyncio.run` twice), and a lock binds to the first loop that queues on it.
        self._lock = asyncio.Lock()
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def _prune(self, now: float) -> None:
        horizon = now - self.limit.period - self.limit.guard
        while self._sent and self._sent[0] <= horizon:
            self._sent.popleft()

    def delay(self) -> float:
        """Seconds until a request could be sent now (0 when it could go at once)."""
        now = self._clock()
        self._prune(now)
        if len(self._sent) < self.limit.max_requests:
            return 0.0
        return self._sent[0] + self.limit.period + self.limit.guard - now

    async def acquire(self) -> None:
        """Wait for room in the window, then record a send. Waiters are served in order."""
        loop = asyncio.get_running_loop()
        if self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        async with self._lock:
            while (wait := self.delay()) > 0:
                await self._sleep(wait)
            self._sent.append(self._clock())

"""`Recorder`: the one way into the store.

Whatever the engine learns (a poll's answer or error, a tracked or untracked item, a webhook's
state) is handed to the recorder, which commits it in batches, in the order it came. A commit
that fails (the database is away) is retried with backoff and never drops what it held: the
batch stays at the head of the queue until a commit takes it. The queue is bounded: once
`max_pending` observations wait, `room` is cleared and the engine stops dispatching polls (and
says so in its health) rather than holding more in memory or losing anything.

Sightings (a poll that found nothing new, or failed) only move an item's "last observed" time
and error: they are gathered per item and queued together once a second (`sight`), so a
steady watch writes each item at most once a second whatever its poll rate. Queued in order
with everything else, a sighting never overtakes a change of the same item (and one older
than a change committed since is stale, and ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from attrs import frozen

from .._changes import ItemError
from .._errors import PayloadError, StoreUnavailable
from ..store import Committed, Observation, Store
from ..store._base import mended, unstorable

log = logging.getLogger("scanhub")


@frozen
class Untrack:
    """Remove keys from the tracked set (queued in order with the observations)."""

    keys: tuple[str, ...]


Op = Observation | Untrack


@frozen
class RecorderHealth:
    """Whether the store takes commits, and since when it has not."""

    ok: bool
    pending: int
    failing_since: datetime | None = None
    last_error: str | None = None


class Recorder:
    """Commits observations to the store in batches, in order (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        max_pending: int = 10_000,
        batch: int = 1000,
        backoff: tuple[float, float] = (0.1, 5.0),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.max_pending = max_pending
        self.batch = batch
        self._backoff = backoff
        self._now = now
        self._queue: deque[tuple[Op, asyncio.Future[object]]] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        # One commit at a time: `close` may run while the writer's commit is in flight, and
        # the two must never commit (and answer) the queue's head twice.
        self._committing = asyncio.Lock()
        self._idle.set()
        #: Set while fewer than `max_pending` observations wait: the engine dispatches polls
        #: only then.
        self.room = asyncio.Event()
        self.room.set()
        self._failing_since: datetime | None = None
        self._last_error: str | None = None
        #: The id of the newest transition this recorder committed.
        self.last_id = 0
        #: Sightings gathered since the last queued batch: key -> (when, error).
        self._sightings: dict[str, tuple[datetime, ItemError | None]] = {}
        self.sighting_every = 1.0

    # --- handing things in -----------------------------------------------------------------

    def submit(self, op: Op) -> asyncio.Future[object]:
        """Queue an observation (or an untrack); the future resolves to its `Committed` (a
        list of keys for an untrack) once committed."""
        fut: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._queue.append((op, fut))
        self._idle.clear()
        self._wake.set()
        if len(self._queue) >= self.max_pending:
            self.room.clear()
        return fut

    def sight(self, key: str, at: datetime, error: ItemError | None = None) -> None:
        """A poll of `key` found nothing new at `at` (or failed with `error`): gathered, and
        queued with the others within a second (see the module docstring)."""
        first = not self._sightings
        self._sightings[key] = (at, error)
        if len(self._sightings) >= self.batch:
            self._queue_sightings()
        elif first:
            self._wake.set()  # an idle writer starts the gathering time

    def _queue_sightings(self) -> None:
        gathered, self._sightings = self._sightings, {}
        for key, (at, error) in gathered.items():
            self.submit(Observation(key, at, None, error))

    async def commit(self, observations: Sequence[Observation]) -> list[Committed]:
        """Queue observations and wait until they are committed."""
        futures = [self.submit(ob) for ob in observations]
        results = await asyncio.gather(*futures)
        return [r for r in results if isinstance(r, Committed)]

    async def flush(self) -> None:
        """Wait until everything queued (and every sighting gathered) so far is committed."""
        if self._sightings:
            self._queue_sightings()
        if self._queue:
            await asyncio.gather(*(asyncio.shield(f) for _, f in list(self._queue)))

    @property
    def pending(self) -> int:
        """Observations not committed yet."""
        return len(self._queue)

    @property
    def idle(self) -> bool:
        """True when nothing waits to be committed (changes; sightings may be gathering)."""
        return not self._queue

    def health(self) -> RecorderHealth:
        """Whether commits succeed, and what waits."""
        return RecorderHealth(
            self._failing_since is None, len(self._queue), self._failing_since, self._last_error
        )

    # --- the writer --------------------------------------------------------------------------

    async def run(self) -> None:
        """Commit what is queued, for good (a task the engine owns)."""
        delay = self._backoff[0]
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                if self._sightings:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.sighting_every):
                            await self._wake.wait()
                    if self._sightings:
                        self._queue_sightings()
                else:
                    await self._wake.wait()
                await asyncio.sleep(0)  # let a burst of polls finish into one batch
                continue
            try:
                await self._commit_head()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not isinstance(exc, StoreUnavailable) and self._mend_head():
                    continue  # an observation no store could write, mended: at once again
                if self._failing_since is None:
                    self._failing_since = self._now()
                    log.error(
                        "scanhub: the store does not take commits (%s: %s); %d observations "
                        "wait, retrying with backoff; polling pauses when %d wait",
                        type(exc).__name__,
                        exc,
                        len(self._queue),
                        self.max_pending,
                    )
                self._last_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(self._backoff[1], delay * 2)
                continue
            if self._failing_since is not None:
                log.warning(
                    "scanhub: the store takes commits again (after %.1fs)",
                    (self._now() - self._failing_since).total_seconds(),
                )
                self._failing_since, self._last_error = None, None
            delay = self._backoff[0]

    def _mend_head(self) -> bool:
        """After a commit failed other than with the store away: mend the observations of the
        head's run that no store can write (`unstorable`; a Python caller's lone surrogate), so
        that one of them does not stop every commit after it for good. True when any was."""
        found = False
        for i, (op, fut) in enumerate(self._queue):
            if i >= self.batch or not isinstance(op, Observation):
                break
            why = unstorable(op)
            if why is None:
                continue
            found = True
            log.error("scanhub: %s cannot be stored as observed (%s): mended", ascii(op.key), why)
            again = mended(op)
            if again is not None:
                self._queue[i] = (again, fut)
                continue
            del self._queue[i]  # its key itself cannot be written: nothing of it can be kept
            if not fut.done():
                fut.set_exception(PayloadError(f"cannot be stored: {why}", operation="store"))
            self._taken()
            break  # the queue changed under the loop: the next failure looks again
        return found

    async def _commit_head(self) -> None:
        """Commit the longest run at the head of the queue: observations (up to `batch`), or
        one untrack. On failure nothing is taken off the queue."""
        async with self._committing:
            if self._queue:
                await self._commit_locked()

    async def _commit_locked(self) -> None:
        head = self._queue[0][0]
        if isinstance(head, Untrack):
            gone = await self.store.untrack(list(head.keys))
            _, fut = self._queue.popleft()
            if not fut.done():
                fut.set_result(gone)
            self._taken()
            return
        run: list[Observation] = []
        for op, _ in self._queue:
            if not isinstance(op, Observation) or len(run) >= self.batch:
                break
            run.append(op)
        started = time.monotonic()
        results = await self.store.commit(run)
        took = time.monotonic() - started
        if took > 5:
            log.warning("scanhub: a commit of %d observations took %.1fs", len(run), took)
        for result in results:
            _, fut = self._queue.popleft()
            if result.id is not None:
                self.last_id = max(self.last_id, result.id)
            if not fut.done():
                fut.set_result(result)
        self._taken()

    def _taken(self) -> None:
        if len(self._queue) < self.max_pending:
            self.room.set()
        if not self._queue:
            self._idle.set()

    async def close(self, grace: float = 10.0) -> None:
        """Commit what waits (for up to `grace` seconds); what cannot be committed by then is
        counted in the log, never silently dropped."""
        if self._sightings:
            self._queue_sightings()
        if not self._queue:
            return
        try:
            async with asyncio.timeout(grace):
                while self._queue:
                    try:
                        await self._commit_head()
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        if not isinstance(exc, StoreUnavailable) and self._mend_head():
                            continue  # as `run` does: what waits behind it is committed
                        await asyncio.sleep(0.2)
        except TimeoutError:
            log.error(
                "scanhub: stopping with %d observations the store did not take (%s); they are "
                "lost, and the next start polls their items again",
                len(self._queue),
                self._last_error or "the store is not answering",
            )
        for _, fut in self._queue:
            if not fut.done():
                fut.cancel()
        self._queue.clear()
        self._taken()


__all__ = ["Op", "Recorder", "RecorderHealth", "Untrack"]

"""The aggregator: many clients, many tracked items, one shared session.

- `snapshot()` refreshes every tracked, non-terminal item concurrently (bounded per source). A
  source that fails, times out or is rate-limited never fails the snapshot: its items keep their
  last known state and carry the error.
- `watch()` yields a `Change` for every lifecycle, verdict, message or vendor-status change,
  polls stable items less and less often (capped, jittered), waits as long as a rate-limited
  source was told to, stops polling terminal items, and ends when all are terminal or at the
  deadline.
- Lifecycle is monotonic per item: queued < running < terminal. A stale answer that would move
  an item backwards (running -> queued, terminal -> anything active) is ignored.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType

import aiohttp
from attrs import define, field, frozen

from ._clients import Client
from ._errors import BadRequestError, RateLimitedError, ScanhubError, WaitTimeoutError
from ._model import Item, Lifecycle

log = logging.getLogger("scanhub")

_RANK = {
    Lifecycle.QUEUED: 0,
    Lifecycle.RUNNING: 1,
    Lifecycle.SUCCEEDED: 2,
    Lifecycle.FAILED: 2,
    Lifecycle.CANCELLED: 2,
    Lifecycle.EXPIRED: 2,
}


@frozen
class ItemError:
    """Why the last refresh of an item (or a discovery on a source) failed."""

    type: str
    message: str
    retryable: bool
    observed_at: datetime
    retry_after: float | None = None

    @classmethod
    def of(cls, exc: BaseException, observed_at: datetime) -> ItemError:
        """Describe an exception (its text is already redacted by the client)."""
        if isinstance(exc, ScanhubError):
            return cls(
                type(exc).__name__,
                str(exc),
                exc.retryable,
                observed_at,
                exc.retry_after if isinstance(exc, RateLimitedError) else None,
            )
        return cls(type(exc).__name__, f"unexpected error: {exc}", False, observed_at)


@frozen
class Snapshot:
    """Every tracked item at one moment, with the errors of those that could not be refreshed."""

    items: tuple[Item, ...]
    #: Item key -> the error of its last refresh (absent when it succeeded).
    errors: Mapping[str, ItemError]
    observed_at: datetime
    #: Source name -> the error of a discovery query on it (see `ScanHub.discover_*`).
    source_errors: Mapping[str, ItemError] = field(factory=dict)

    @property
    def all_terminal(self) -> bool:
        """True when every item has finished."""
        return all(i.lifecycle.is_terminal for i in self.items)

    def counts(self) -> dict[str, int]:
        """Items per lifecycle value."""
        out: dict[str, int] = {}
        for item in self.items:
            out[item.lifecycle.value] = out.get(item.lifecycle.value, 0) + 1
        return out


@frozen
class Change:
    """An item changed between two observations. `before` is None for the first sighting."""

    before: Item | None
    after: Item
    observed_at: datetime

    @property
    def key(self) -> str:
        """The tracked item's key."""
        return self.after.key


@define
class _Slot:
    key: str
    item: Item
    error: ItemError | None = None
    interval: float = 0.0
    next_due: float = 0.0


def _significant(a: Item, b: Item) -> bool:
    return (
        a.lifecycle is not b.lifecycle
        or a.verdict is not b.verdict
        or a.message != b.message
        or a.vendor_status != b.vendor_status
    )


def merge(old: Item, new: Item) -> Item:
    """`new`, unless it would move the lifecycle backwards, in which case `old` stands."""
    if old.lifecycle.is_terminal and not new.lifecycle.is_terminal:
        return old
    before, after = _RANK.get(old.lifecycle), _RANK.get(new.lifecycle)
    if before is not None and after is not None and after < before:
        return old
    return new


class ScanHub:
    """Tracks scans and promotions across named clients.

    Use as `async with ScanHub([client, ...]) as hub:`; it opens one `aiohttp.ClientSession`
    shared by every client that did not bring its own, and closes it on exit.
    """

    def __init__(
        self,
        clients: Iterable[Client] = (),
        *,
        concurrency: int = 16,
        interval: float = 5.0,
        max_interval: float = 60.0,
        backoff: float = 1.5,
        connection_limit: int = 200,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.concurrency = concurrency
        self.interval = interval
        self.max_interval = max_interval
        self.backoff = backoff
        self._connection_limit = connection_limit
        self._clock, self._sleep, self._now = clock, sleep, now
        self._clients: dict[str, Client] = {}
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._slots: dict[str, _Slot] = {}
        self._session: aiohttp.ClientSession | None = None
        #: Source name -> the last failed discovery on it.
        self.source_errors: dict[str, ItemError] = {}
        #: Discovery rules (source, query) that `rediscover` runs again.
        self.rules: list[tuple[str, dict[str, str]]] = []
        for client in clients:
            self.add_client(client)

    # --- clients and session ----------------------------------------------------------------

    def add_client(self, client: Client) -> Client:
        """Register a client under its `name` (unique)."""
        if client.name in self._clients:
            raise BadRequestError(f"two clients are named {client.name!r}", operation="add client")
        self._clients[client.name] = client
        self._sems[client.name] = asyncio.Semaphore(self.concurrency)
        if self._session is not None:
            client._adopt_session(self._session)
        return client

    def client(self, name: str) -> Client:
        """The client registered as `name`."""
        try:
            return self._clients[name]
        except KeyError:
            raise BadRequestError(f"no client named {name!r}", operation="lookup") from None

    @property
    def clients(self) -> list[Client]:
        """Registered clients, in the order they were added."""
        return list(self._clients.values())

    async def __aenter__(self) -> ScanHub:
        connector = aiohttp.TCPConnector(limit=self._connection_limit, limit_per_host=0)
        self._session = aiohttp.ClientSession(connector=connector)
        for client in self._clients.values():
            client._adopt_session(self._session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for client in self._clients.values():
            await client.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- tracking -------------------------------------------------------------------------

    def track(self, item: Item) -> str:
        """Start tracking `item` (its source must be a registered client); returns its key.
        Tracking a key again replaces the item, subject to the monotonic rule."""
        self.client(item.source)
        slot = self._slots.get(item.key)
        if slot is None:
            self._slots[item.key] = _Slot(item.key, item)
        else:
            slot.item = merge(slot.item, item)
        return item.key

    def untrack(self, item: Item | str) -> None:
        """Stop tracking an item (by item or key); unknown keys are ignored."""
        self._slots.pop(item if isinstance(item, str) else item.key, None)

    @property
    def items(self) -> list[Item]:
        """Tracked items in their last known state."""
        return [s.item for s in self._slots.values()]

    def errors(self) -> dict[str, ItemError]:
        """Item key -> error of its last refresh."""
        return {k: s.error for k, s in self._slots.items() if s.error is not None}

    async def discover(self, source: str, **query: str | None) -> list[Item]:
        """Run a discovery query on a source (its vendor says what the query means, e.g. every
        AppSec+ scan of an application) and track every item found. A failure is recorded in
        `source_errors` and returns []."""
        client = self.client(source)
        args = {k: v for k, v in query.items() if v is not None}
        found: list[Item] = []
        try:
            async for item in client.discover(**args):
                self.track(item)
                found.append(item)
        except ScanhubError as exc:
            self.source_errors[source] = ItemError.of(exc, self._now())
        else:
            self.source_errors.pop(source, None)
        return found

    async def add_rule(self, source: str, query: Mapping[str, str]) -> list[Item]:
        """Remember a discovery query (re-run by `rediscover`) and run it now."""
        self.client(source)
        rule = (source, dict(query))
        if rule not in self.rules:
            self.rules.append(rule)
        return await self.discover(source, **query)

    async def rediscover(self) -> list[Item]:
        """Run every remembered discovery rule again; returns what they found."""
        found: list[Item] = []
        for source, query in list(self.rules):
            found += await self.discover(source, **query)
        return found

    async def discover_promotions(
        self, source: str, application_key: str, version: str, **filters: str | None
    ) -> list[Item]:
        """Track every promotion of an application version (AppTrust; filters: target_stage,
        status, promoted_by). Same as `discover(source, application_key=, version=, ...)`."""
        return await self.discover(
            source, application_key=application_key, version=version, **filters
        )

    async def discover_scans(
        self, source: str, application_id: str | None = None, status: str | None = None
    ) -> list[Item]:
        """Track every scan of an application (AppSec+), optionally in one status. Same as
        `discover(source, application_id=, status=)`."""
        return await self.discover(source, application_id=application_id, status=status)

    # --- refreshing -----------------------------------------------------------------------

    async def _refresh(self, slot: _Slot) -> Change | None:
        item = slot.item
        client = self._clients.get(item.source)
        if client is None:
            return None
        try:
            async with self._sems[item.source]:
                new = await client.refresh(item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one failing source never takes the others down
            if not isinstance(exc, ScanhubError):
                log.exception("scanhub: unexpected error refreshing %s", item.key)
            slot.error = ItemError.of(exc, self._now())
            return None
        slot.error = None
        merged = merge(slot.item, new)
        before, slot.item = slot.item, merged
        if _significant(before, merged):
            return Change(before, merged, self._now())
        return None

    async def snapshot(self, *, refresh_terminal: bool = False) -> Snapshot:
        """Refresh tracked items concurrently and return them all. Terminal items are final and
        not asked again unless `refresh_terminal`."""
        slots = list(self._slots.values())
        todo = [s for s in slots if refresh_terminal or not s.item.lifecycle.is_terminal]
        await asyncio.gather(*(self._refresh(s) for s in todo))
        return Snapshot(
            items=tuple(s.item for s in slots),
            errors={s.key: s.error for s in slots if s.error is not None},
            observed_at=self._now(),
            source_errors=dict(self.source_errors),
        )

    async def watch(
        self,
        interval: float | None = None,
        deadline: float | None = None,
        *,
        initial: bool = True,
    ) -> AsyncIterator[Change]:
        """Yield changes until every tracked item is terminal or `deadline` seconds pass.

        With `initial`, every tracked item is first yielded as a `Change` with `before=None`, so
        a consumer sees each item's final state exactly once in the stream.
        """
        async for change in self._poll(None, interval, deadline, initial):
            yield change

    async def wait(
        self,
        item: Item,
        timeout: float | None = None,  # noqa: ASYNC109 - the documented API is wait(item, timeout=)
        *,
        interval: float | None = None,
    ) -> Item:
        """Track `item` and poll it until terminal; raises `WaitTimeoutError` after `timeout`
        seconds (the error's `item` is its last known state)."""
        key = self.track(item)
        async for _ in self._poll({key}, interval, timeout, initial=False):
            pass
        slot = self._slots[key]
        if not slot.item.lifecycle.is_terminal:
            raise WaitTimeoutError(
                f"{key} still {slot.item.lifecycle.value} after {timeout}s",
                item=slot.item,
                vendor=slot.item.vendor,
                source=slot.item.source,
                operation="wait",
            )
        return slot.item

    async def _poll(
        self,
        keys: set[str] | None,
        interval: float | None,
        deadline: float | None,
        initial: bool,
    ) -> AsyncIterator[Change]:
        base = interval if interval is not None else self.interval
        start = self._clock()
        end = None if deadline is None else start + deadline

        def chosen() -> list[_Slot]:
            return [s for k, s in self._slots.items() if keys is None or k in keys]

        for slot in chosen():
            slot.interval, slot.next_due = base, start
            if initial:
                yield Change(None, slot.item, self._now())
        while True:
            active = [s for s in chosen() if not s.item.lifecycle.is_terminal]
            now = self._clock()
            if not active or (end is not None and now >= end):
                return
            due = [s for s in active if s.next_due <= now]
            if not due:
                wake = min(s.next_due for s in active)
                if end is not None:
                    wake = min(wake, end)
                await self._sleep(max(0.0, wake - now))
                continue
            changes = await asyncio.gather(*(self._refresh(s) for s in due))
            now = self._clock()
            for slot, change in zip(due, changes, strict=True):
                self._schedule(slot, change, base, now)
                if change is not None:
                    yield change

    def _schedule(self, slot: _Slot, change: Change | None, base: float, now: float) -> None:
        error = slot.error
        if error is not None and error.retry_after:
            # The vendor said how long to wait: hold every item of that source until then.
            until = now + error.retry_after
            for other in self._slots.values():
                if other.item.source == slot.item.source:
                    other.next_due = max(other.next_due, until)
            return
        if change is not None:
            slot.interval = base
        else:
            slot.interval = min(self.max_interval, max(base, slot.interval * self.backoff))
        slot.next_due = now + slot.interval * random.uniform(0.9, 1.1)

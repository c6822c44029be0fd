"""The `Store` protocol and the records it speaks in."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from attrs import frozen

from .._changes import Change, ItemError
from .._convert import dumps, item_from_dict, to_dict
from .._model import Item

#: The schema version the backends migrate to (`PRAGMA user_version` in SQLite).
SCHEMA_VERSION = 1


@frozen
class Retention:
    """How much history to keep: transitions older than `max_age`, or beyond the newest
    `max_per_item` of an item, are pruned. None: keep (the default, forever)."""

    max_age: timedelta | None = None
    max_per_item: int | None = None

    @property
    def keeps_everything(self) -> bool:
        """True when nothing is ever pruned."""
        return self.max_age is None and self.max_per_item is None


@frozen
class StoredItem:
    """A tracked item as the store has it."""

    item: Item
    #: How it was added: "track", "config", "discovery:<source>", ...
    how: str
    last_observed: datetime | None = None
    last_error: ItemError | None = None
    #: When its last transition was recorded (None: never).
    last_change: datetime | None = None

    @property
    def key(self) -> str:
        """The item's key."""
        return self.item.key


@frozen
class Observation:
    """A poll that changed nothing (or failed): when, and the error if there was one."""

    key: str
    observed_at: datetime
    error: ItemError | None = None


@frozen
class Transition:
    """One recorded change, with its id in the append-only log."""

    id: int
    change: Change

    @property
    def key(self) -> str:
        """The item's key."""
        return self.change.key


def item_json(item: Item, *, raw: bool = True) -> str:
    """An item as the JSON a store keeps (`to_dict`; without the vendor payload when `raw` is
    False, as transitions keep it)."""
    data = to_dict(item)
    if not raw:
        data.pop("raw", None)
    return dumps(data, separators=(",", ":"), ensure_ascii=False)


def item_row(item: Item) -> tuple[str, ...]:
    """The columns every backend keeps of an item's current state: key, kind, vendor, source,
    application id, lifecycle, verdict, and the item as JSON."""
    return (
        item.key,
        item.kind,
        str(item.vendor),
        item.source,
        item.application_id,
        item.lifecycle.value,
        item.verdict.value,
        item_json(item),
    )


def item_from_json(data: dict[str, Any]) -> Item:
    """The inverse of `item_json` (given the decoded JSON)."""
    return item_from_dict(data)


class Store(abc.ABC):
    """Where the engine keeps what it tracks and what happened. Every method is a coroutine;
    a backend serializes its own writes. See the package docstring for the guarantees."""

    retention: Retention
    #: True when several processes share the store (leases decide who polls which source, and
    #: `follow` carries every process's transitions).
    shared: bool = False

    async def lease(self, sources: Sequence[str], ttl: float) -> set[str]:
        """Take or renew the leases of `sources` for `ttl` seconds; returns those held. A store
        one process owns holds them all."""
        return set(sources)

    async def release(self) -> None:
        """Give up this process's leases (nothing to give up for a store one process owns)."""
        return

    async def follow(self, since: int) -> AsyncIterator[Change]:
        """Every transition after `since`, in id order, as it is recorded. This default looks
        every second; a shared store is told at once (PostgreSQL's LISTEN/NOTIFY)."""
        while True:
            found = await self.transitions(since=since, limit=1000)
            for t in found:
                since = t.id
                yield t.change
            if len(found) < 1000:
                await asyncio.sleep(1.0)

    @abc.abstractmethod
    async def open(self) -> None:
        """Open (and migrate) the store."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush and close."""

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abc.abstractmethod
    async def track(self, items: Sequence[tuple[Item, str]]) -> None:
        """Add items to the tracked set (item, how). A key already tracked keeps its state."""

    @abc.abstractmethod
    async def untrack(self, keys: Sequence[str]) -> None:
        """Remove keys from the tracked set (their history stays)."""

    @abc.abstractmethod
    async def tracked(self) -> list[StoredItem]:
        """Every tracked item with its current state, in the order it was first tracked."""

    @abc.abstractmethod
    async def record(self, changes: Sequence[Change]) -> list[Change]:
        """Append `changes` to the log in one commit, update the items' current state, and
        return them with their ids (in order). A consumer may see them once this returns."""

    @abc.abstractmethod
    async def observe(self, observations: Sequence[Observation]) -> None:
        """Record polls that changed nothing (last observed time, last error), in one commit."""

    @abc.abstractmethod
    async def transitions(
        self, *, since: int = 0, key: str | None = None, limit: int | None = None
    ) -> list[Transition]:
        """Recorded transitions with id > `since` (of one item if `key`), oldest first."""

    @abc.abstractmethod
    async def last_id(self) -> int:
        """The id of the newest transition (0 when there is none)."""

    @abc.abstractmethod
    async def prune(self, now: datetime) -> int:
        """Apply the retention policy; returns how many transitions were removed."""

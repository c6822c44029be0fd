"""`MemoryStore`: the library default. Everything in this process's memory; gone at exit."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime

from attrs import evolve

from .._changes import Change
from .._model import Item
from ._base import Observation, Retention, Store, StoredItem, Transition


class MemoryStore(Store):
    """A `Store` in memory (tests, one-off watches, the library default)."""

    def __init__(self, *, retention: Retention | None = None) -> None:
        self.retention = retention or Retention()
        self._items: dict[str, StoredItem] = {}
        self._log: list[Transition] = []
        self._next = 1

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def track(self, items: Sequence[tuple[Item, str]]) -> None:
        for item, how in items:
            self._items.setdefault(item.key, StoredItem(item, how))

    async def untrack(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._items.pop(key, None)

    async def tracked(self) -> list[StoredItem]:
        return list(self._items.values())

    async def record(self, changes: Sequence[Change]) -> list[Change]:
        out = []
        for change in changes:
            stored = evolve(change, id=self._next)
            self._next += 1
            self._log.append(Transition(stored.id or 0, stored))
            held = self._items.get(change.key)
            how = held.how if held else "track"
            self._items[change.key] = StoredItem(
                change.after, how, change.observed_at, None, change.observed_at
            )
            out.append(stored)
        return out

    async def observe(self, observations: Sequence[Observation]) -> None:
        for ob in observations:
            held = self._items.get(ob.key)
            if held is not None:
                self._items[ob.key] = evolve(
                    held, last_observed=ob.observed_at, last_error=ob.error
                )

    async def transitions(
        self, *, since: int = 0, key: str | None = None, limit: int | None = None
    ) -> list[Transition]:
        start = bisect.bisect_right([t.id for t in self._log], since) if since else 0
        found = [t for t in self._log[start:] if key is None or t.key == key]
        return found if limit is None else found[:limit]

    async def last_id(self) -> int:
        return self._next - 1

    async def prune(self, now: datetime) -> int:
        r = self.retention
        if r.keeps_everything:
            return 0
        keep: list[Transition] = []
        per_item: dict[str, int] = {}
        for t in reversed(self._log):
            n = per_item.get(t.key, 0)
            too_old = r.max_age is not None and t.change.observed_at < now - r.max_age
            too_many = r.max_per_item is not None and n >= r.max_per_item
            if not (too_old or too_many):
                keep.append(t)
                per_item[t.key] = n + 1
        removed = len(self._log) - len(keep)
        self._log = keep[::-1]
        return removed

"""`WorkingSet`: the items an engine is working on, a cache of the store's active items.

It holds the tracked items not finished yet of the sources this process polls: their last known
state (merged by the monotonic rule), how each was added, the error of its last poll and when
it last changed. A finished item leaves it (the store keeps it), so its size follows the work
under way, not the history.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from attrs import define

from .._changes import ItemError, merge
from .._model import Item


@define
class Active:
    """An item the engine works on."""

    item: Item
    origin: str
    error: ItemError | None = None
    #: When its last change was committed (None: not since the engine took it on).
    changed_at: datetime | None = None


class WorkingSet:
    """Active items by key, and the keys of each source and of each application of a source
    (an item's source and application are part of its key: they never change)."""

    def __init__(self) -> None:
        self._items: dict[str, Active] = {}
        self._by_source: dict[str, set[str]] = {}
        self._by_application: dict[tuple[str, str], set[str]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[Active]:
        return iter(list(self._items.values()))

    def get(self, key: str) -> Active | None:
        """The active item under `key`."""
        return self._items.get(key)

    def add(self, item: Item, origin: str, *, changed_at: datetime | None = None) -> Active:
        """Take an item on (or, when it is there already, move it forward by the monotonic
        rule); returns its entry."""
        held = self._items.get(item.key)
        if held is not None:
            held.item = merge(held.item, item)
            return held
        held = self._items[item.key] = Active(item, origin, changed_at=changed_at)
        self._by_source.setdefault(item.source, set()).add(item.key)
        self._by_application.setdefault((item.source, item.application_id), set()).add(item.key)
        return held

    def remove(self, key: str) -> Active | None:
        """Drop an item (finished, untracked, or now another process's); returns it."""
        held = self._items.pop(key, None)
        if held is not None:
            source, application = held.item.source, held.item.application_id
            keys = self._by_source.get(source)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_source[source]
            keys = self._by_application.get((source, application))
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_application[source, application]
        return held

    def keys_of(self, source: str) -> set[str]:
        """The active keys of one source."""
        return set(self._by_source.get(source, ()))

    def keys_of_application(self, source: str, application: str) -> set[str]:
        """The active keys of one application of one source."""
        return set(self._by_application.get((source, application), ()))

    def count_of(self, source: str) -> int:
        """How many active items one source has."""
        return len(self._by_source.get(source, ()))

    def errors(self) -> dict[str, ItemError]:
        """Key -> the error of its last poll, for items whose last poll failed."""
        return {k: a.error for k, a in self._items.items() if a.error is not None}


__all__ = ["Active", "WorkingSet"]

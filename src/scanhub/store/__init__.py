"""Durable state for the watcher: `Store` and its backends.

A store keeps the tracked set (with how each item was added), every item's current state, an
append-only log of transitions with monotonically increasing integer ids, and per item the last
observation time and last error. The engine writes to it and commits a transition before any
consumer sees it; consumers (the CLI's `history`, the service's API and live stream) read from
it and resume from a transition id.

Backends: `MemoryStore` (the library default) and `SQLiteStore` (one file, WAL, forward-only
migrations). `open_store("memory")`, `open_store("path/to/state.db")` pick one by URL or path.
"""

from ._base import (
    SCHEMA_VERSION,
    Observation,
    Retention,
    Store,
    StoredItem,
    Transition,
    item_json,
)
from .memory import MemoryStore
from .sqlite import SQLiteStore


def open_store(
    location: str, *, retention: Retention | None = None, holder: str | None = None
) -> Store:
    """A store for `location`: `memory` (or `:memory:`), a PostgreSQL URL (`postgresql://...`;
    the password from `SCANHUB_DATABASE_URL` or `PGPASSWORD`, never the URL), or a SQLite file
    path (`sqlite:///path` or a plain path)."""
    if location in ("memory", ":memory:", "memory://"):
        return MemoryStore(retention=retention)
    if location.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore, database_url

        return PostgresStore(database_url(location), retention=retention, holder=holder)
    if location.startswith("sqlite:///"):
        location = location[len("sqlite:///") :]
    elif location.startswith("sqlite://"):
        location = location[len("sqlite://") :]
    return SQLiteStore(location, retention=retention)


__all__ = [
    "SCHEMA_VERSION",
    "MemoryStore",
    "Observation",
    "Retention",
    "SQLiteStore",
    "Store",
    "StoredItem",
    "Transition",
    "item_json",
    "open_store",
]

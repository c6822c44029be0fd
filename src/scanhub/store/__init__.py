"""The truth: `Store` and its backends.

A store keeps the tracked set (with how each item was added), every item's current state, an
append-only log of transitions with increasing integer ids, per item the last observation time
and last error, (shared) the leases of sources, and each sink's cursor and dead letters. Items
are written through one method, `commit(observations)`, which applies one rule (`plan`) in
every backend (a sink's own state through its ledger, `store.sinks`: a `SinkLedger`);
everything else (the engine's working set, watch consumers, the live stream, the JSON API,
other replicas) reads it back.

Backends: `MemoryStore` (the library default), `SQLiteStore` (one file, WAL, forward-only
migrations, indexed reads) and `PostgresStore` (several replicas). `open_store("memory")`,
`open_store("path/to/state.db")`, `open_store("postgresql://...")` pick one.
"""

from ._base import (
    LOG_TIME_SLACK,
    ORDERS,
    OUTCOMES,
    PHASES,
    SCHEMA_VERSION,
    SEARCH_SEPARATOR,
    STAT_GROUPS,
    Activity,
    Committed,
    Count,
    DeadLetter,
    GroupStats,
    ItemQuery,
    Observation,
    Oldest,
    Outcome,
    Overdue,
    Page,
    ReplayPastEnd,
    Retention,
    SinkLedger,
    SinkState,
    SinkStatus,
    Spread,
    Store,
    StoredItem,
    Transition,
    item_json,
    outcome_of,
    phases,
    plan,
    search_text,
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
    "LOG_TIME_SLACK",
    "ORDERS",
    "OUTCOMES",
    "PHASES",
    "SCHEMA_VERSION",
    "SEARCH_SEPARATOR",
    "STAT_GROUPS",
    "Activity",
    "Committed",
    "Count",
    "DeadLetter",
    "GroupStats",
    "ItemQuery",
    "MemoryStore",
    "Observation",
    "Oldest",
    "Outcome",
    "Overdue",
    "Page",
    "ReplayPastEnd",
    "Retention",
    "SQLiteStore",
    "SinkLedger",
    "SinkState",
    "SinkStatus",
    "Spread",
    "Store",
    "StoredItem",
    "Transition",
    "item_json",
    "open_store",
    "outcome_of",
    "phases",
    "plan",
    "search_text",
]

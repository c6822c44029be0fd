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

import re

from .._errors import ConfigError
from ._base import (
    LOG_TIME_SLACK,
    MIN_SEARCH,
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

#: A location's scheme: `scheme://` at its start, as RFC 3986 spells a scheme.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")

#: The schemes of a PostgreSQL URL, as libpq reads them.
POSTGRES_SCHEMES = ("postgresql", "postgres")


def location_scheme(location: str) -> str | None:
    """The scheme of a state location, in lower case (`postgresql`, `sqlite`, ...), read as
    libpq and SQLAlchemy read one (case-insensitive, surrounding white space ignored); None
    for a file path."""
    found = _SCHEME.match(location.strip())
    return found.group(1).lower() if found else None


def open_store(
    location: str, *, retention: Retention | None = None, holder: str | None = None
) -> Store:
    """A store for `location`: `memory` (or `:memory:`), a PostgreSQL URL (`postgresql://...`;
    the password from `SCANHUB_DATABASE_URL` or `PGPASSWORD`, never the URL), or a SQLite file
    path (`sqlite:///path` or a plain path). Schemes are read in any case; any other
    `scheme://` is a `ConfigError` (which never shows the location: it may hold a password),
    not a file path. `holder` names this replica in a shared store's leases."""
    if location in ("memory", ":memory:"):
        return MemoryStore(retention=retention)
    scheme = location_scheme(location)
    if scheme is None:
        return SQLiteStore(location, retention=retention)
    rest = location.strip()[len(scheme) + len("://") :]
    if scheme == "memory" and not rest:
        return MemoryStore(retention=retention)
    if scheme in POSTGRES_SCHEMES:
        from .postgres import PostgresStore, database_url

        url = database_url(f"{scheme}://{rest}")  # the scheme as libpq spells it
        return PostgresStore(url, retention=retention, holder=holder)
    if scheme == "sqlite":
        return SQLiteStore(rest[1:] if rest.startswith("/") else rest, retention=retention)
    raise ConfigError(
        f"a state location starting with {scheme}:// is not one scanhub opens: give a file "
        "path, sqlite:///PATH, memory or postgresql://...",
        operation="load config",
    )


__all__ = [
    "LOG_TIME_SLACK",
    "MIN_SEARCH",
    "ORDERS",
    "OUTCOMES",
    "PHASES",
    "POSTGRES_SCHEMES",
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
    "location_scheme",
    "open_store",
    "outcome_of",
    "phases",
    "plan",
    "search_text",
]

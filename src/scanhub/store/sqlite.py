"""`SQLiteStore`: one file, stdlib `sqlite3` on one worker thread, WAL, forward migrations.

- WAL journal with `synchronous=NORMAL`: a commit is durable against the process being killed
  at any moment (`kill -9`), and readers (`scanhub history`, a second process) never block the
  writer.
- `PRAGMA user_version` holds the schema version; `MIGRATIONS[n]` takes version n to n+1, each in
  one `BEGIN IMMEDIATE` transaction, so two processes opening the same file at once migrate it
  once.
- Every commit is one transaction: the current states of the batch's keys are read, the commit
  rule (`plan`) applied, transitions appended (with ids handed out under the write lock) and
  the items updated, whatever the batch holds.
- Reads are indexed queries: one index per filter (each ordered by key, for keyset pages), a
  trigram full-text index for text search, counts kept by triggers (so a total, the summary and
  /metrics never count rows), partial indexes over the active items.
- The log keeps each transition's item without its vendor payload (the current state keeps it,
  in its own column), and points at the item's previous transition instead of copying it.

Three parts share the store's one thread and connection (`Runner`): `SQLiteStore` (opening,
the writes, the item and log reads), `SQLiteQueries` (the statements built from what is
asked: pages of items, time in state) and `SQLiteSinks` (the sinks' delivery ledger).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .._changes import ItemError
from .._convert import converter
from .._errors import ConfigError, StoreUnavailable
from .._model import Lifecycle
from ._base import (
    LOG_TIME_SLACK,
    ORDERS,
    PRUNED,
    SCHEMA_VERSION,
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
    Retention,
    Row,
    SinkLedger,
    SinkState,
    SinkStatus,
    Store,
    StoredItem,
    Transition,
    assemble_activity,
    assemble_stats,
    change_of,
    check_limit,
    check_replay,
    item_from_text,
    item_json,
    new_item_columns,
    page_parts,
    plan,
    raw_json,
    search_text,
    since_of,
    stored_row,
    stored_search_text,
)

T = TypeVar("T")

log = logging.getLogger("scanhub")


class Runner(Protocol):
    """How a part of a `SQLiteStore` reaches its connection: `fn` runs on the store's one
    thread, in order with every other call (`SQLiteStore._run`)."""

    def __call__(self, fn: Callable[[sqlite3.Connection], T], /) -> Awaitable[T]: ...


#: MIGRATIONS[n] takes the schema from version n to n + 1 (statements separated by ";;").
MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the first schema.
    """
    CREATE TABLE items (
        key TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        how TEXT NOT NULL,
        kind TEXT NOT NULL,
        vendor TEXT NOT NULL,
        source TEXT NOT NULL,
        application_id TEXT NOT NULL,
        lifecycle TEXT NOT NULL,
        verdict TEXT NOT NULL,
        item TEXT NOT NULL,
        last_observed TEXT,
        last_error TEXT,
        changed_at TEXT
    );;
    CREATE INDEX items_seq ON items (seq);;
    CREATE TABLE transitions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        observed_at TEXT NOT NULL,
        before TEXT,
        after TEXT NOT NULL
    );;
    CREATE INDEX transitions_key ON transitions (key, id);;
    CREATE INDEX transitions_time ON transitions (observed_at)
    """,
    # 1 -> 2: indexed reads (a column and an index per filter, a trigram text index, counts
    # kept by triggers), the vendor payload in its own column, and a log that points at the
    # previous transition instead of copying it. Existing rows are carried over.
    """
    CREATE TABLE items2 (
        rid INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        seq INTEGER NOT NULL,
        origin TEXT NOT NULL,
        kind TEXT NOT NULL,
        vendor TEXT NOT NULL,
        source TEXT NOT NULL,
        application_id TEXT NOT NULL,
        application_name TEXT,
        lifecycle TEXT NOT NULL,
        verdict TEXT NOT NULL,
        vendor_status TEXT NOT NULL,
        message TEXT,
        active INTEGER NOT NULL,
        since TEXT NOT NULL,
        running_at TEXT,
        finished_at TEXT,
        changed_at TEXT,
        observed_at TEXT,
        last_error TEXT,
        last_transition INTEGER,
        item TEXT NOT NULL,
        raw TEXT,
        search TEXT NOT NULL
    );;
    INSERT INTO items2 (key, seq, origin, kind, vendor, source, application_id, lifecycle,
        verdict, vendor_status, message, active, since, changed_at, observed_at, last_error,
        last_transition, item, raw, search)
    SELECT key, seq, how, kind, vendor, source, application_id, lifecycle, verdict,
        COALESCE(json_extract(item, '$.vendor_status'), ''), json_extract(item, '$.message'),
        lifecycle NOT IN ('succeeded', 'failed', 'cancelled', 'expired'),
        COALESCE(json_extract(item, '$.created_at'), changed_at, last_observed, ''),
        changed_at, last_observed, last_error,
        (SELECT MAX(id) FROM transitions t WHERE t.key = items.key),
        json_remove(item, '$.raw', '$.key'), json_extract(item, '$.raw'),
        lower(key || ' ' || COALESCE(json_extract(item, '$.vendor_status'), '') || ' ' ||
              COALESCE(json_extract(item, '$.message'), ''))
    FROM items;;
    DROP TABLE items;;
    ALTER TABLE items2 RENAME TO items;;
    CREATE TABLE transitions2 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        observed_at TEXT NOT NULL,
        prev INTEGER,
        after TEXT NOT NULL
    );;
    INSERT INTO transitions2 (id, key, observed_at, prev, after)
    SELECT id, key, observed_at, LAG(id) OVER (PARTITION BY key ORDER BY id), after
    FROM transitions ORDER BY id;;
    DROP TABLE transitions;;
    ALTER TABLE transitions2 RENAME TO transitions;;
    CREATE INDEX transitions_key ON transitions (key, id);;
    CREATE INDEX items_seq ON items (seq);;
    CREATE INDEX items_vendor ON items (vendor, key);;
    CREATE INDEX items_source ON items (source, key);;
    CREATE INDEX items_kind ON items (kind, key);;
    CREATE INDEX items_lifecycle ON items (lifecycle, key);;
    CREATE INDEX items_verdict ON items (verdict, key);;
    CREATE INDEX items_application ON items (application_id, key);;
    CREATE INDEX items_application_name ON items (application_name, key);;
    CREATE INDEX items_active ON items (source, seq) WHERE active;;
    CREATE INDEX items_active_since ON items (source, since) WHERE active;;
    CREATE INDEX items_finished ON items (finished_at) WHERE finished_at IS NOT NULL;;
    CREATE TABLE item_counts (
        vendor TEXT NOT NULL,
        source TEXT NOT NULL,
        kind TEXT NOT NULL,
        lifecycle TEXT NOT NULL,
        verdict TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (vendor, source, kind, lifecycle, verdict)
    ) WITHOUT ROWID;;
    INSERT INTO item_counts
    SELECT vendor, source, kind, lifecycle, verdict, COUNT(*) FROM items
    GROUP BY vendor, source, kind, lifecycle, verdict;;
    CREATE TRIGGER items_counted_in AFTER INSERT ON items BEGIN
        INSERT INTO item_counts VALUES (new.vendor, new.source, new.kind, new.lifecycle,
            new.verdict, 1)
        ON CONFLICT (vendor, source, kind, lifecycle, verdict) DO UPDATE SET n = n + 1;
    END;;
    CREATE TRIGGER items_counted_out AFTER DELETE ON items BEGIN
        UPDATE item_counts SET n = n - 1 WHERE vendor = old.vendor AND source = old.source
            AND kind = old.kind AND lifecycle = old.lifecycle AND verdict = old.verdict;
    END;;
    CREATE TRIGGER items_counted_move AFTER UPDATE OF lifecycle, verdict ON items
    WHEN old.lifecycle IS NOT new.lifecycle OR old.verdict IS NOT new.verdict BEGIN
        UPDATE item_counts SET n = n - 1 WHERE vendor = old.vendor AND source = old.source
            AND kind = old.kind AND lifecycle = old.lifecycle AND verdict = old.verdict;
        INSERT INTO item_counts VALUES (new.vendor, new.source, new.kind, new.lifecycle,
            new.verdict, 1)
        ON CONFLICT (vendor, source, kind, lifecycle, verdict) DO UPDATE SET n = n + 1;
    END;;
    CREATE VIRTUAL TABLE items_search USING fts5(
        search, content='items', content_rowid='rid', tokenize='trigram'
    );;
    INSERT INTO items_search (items_search) VALUES ('rebuild');;
    CREATE TRIGGER items_search_in AFTER INSERT ON items BEGIN
        INSERT INTO items_search (rowid, search) VALUES (new.rid, new.search);
    END;;
    CREATE TRIGGER items_search_out AFTER DELETE ON items BEGIN
        INSERT INTO items_search (items_search, rowid, search)
        VALUES ('delete', old.rid, old.search);
    END;;
    CREATE TRIGGER items_search_move AFTER UPDATE OF search ON items
    WHEN old.search IS NOT new.search BEGIN
        INSERT INTO items_search (items_search, rowid, search)
        VALUES ('delete', old.rid, old.search);
        INSERT INTO items_search (rowid, search) VALUES (new.rid, new.search);
    END
    """,
    # 2 -> 3: sinks, each a reader of the log with its own cursor, and their dead letters.
    """
    CREATE TABLE sinks (
        name TEXT PRIMARY KEY,
        position INTEGER NOT NULL,
        generation INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'active',
        head INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        first_attempt TEXT,
        next_attempt TEXT,
        last_success TEXT,
        last_error TEXT,
        last_error_at TEXT,
        last_status INTEGER,
        delivered INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        dead INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT
    );;
    CREATE TABLE sink_dead (
        sink TEXT NOT NULL,
        id INTEGER NOT NULL,
        key TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        first_attempt TEXT NOT NULL,
        last_attempt TEXT NOT NULL,
        error TEXT NOT NULL,
        status INTEGER,
        PRIMARY KEY (sink, id)
    ) WITHOUT ROWID
    """,
    # 3 -> 4 (time in state): the page's orders, newest change first and by start time. Only
    # indexes, each IF NOT EXISTS (written as a 3 beside the sinks' 3, renumbered at the merge).
    """
    CREATE INDEX IF NOT EXISTS items_changed ON items (changed_at, key);;
    CREATE INDEX IF NOT EXISTS items_since ON items (since, key)
    """,
    # 4 -> 5: nothing in SQLite. PostgreSQL's 5 moves the time of an item's last change to a
    # table of its own so that its rows are updated in place (HOT); SQLite has no such
    # update: an index entry changes only when its column is set (see `_state_update`).
    "",
    # 5 -> 6: an item's history is read through its chain of transitions (each points at the
    # item's previous one, `prev`) from its last one, instead of through an index of the log
    # by item: that index took an entry a transition at its item's place, a page written at
    # random for every transition of a batch (most of a commit's WAL). The chain's end is the
    # item's `last_transition` while it is tracked; `retired` keeps the end of the history of
    # an item no longer tracked (one row each time an item is untracked: an item tracked
    # again starts a new chain). The ends of the histories already in the log are found here.
    """
    CREATE TABLE retired (
        key TEXT NOT NULL,
        last INTEGER NOT NULL,
        PRIMARY KEY (key, last)
    ) WITHOUT ROWID;;
    INSERT OR IGNORE INTO retired (key, last) SELECT key, id FROM transitions
    WHERE id NOT IN (SELECT prev FROM transitions WHERE prev IS NOT NULL)
    AND id NOT IN (SELECT last_transition FROM items WHERE last_transition IS NOT NULL);;
    DROP INDEX IF EXISTS transitions_key
    """,
    # 6 -> 7: an item's search text keeps its fields apart (`SEARCH_SEPARATOR`: a search no
    # longer matches from one field into the next), made again for every row by `search_text`
    # itself, with the name its row keeps (`_stored_search`; rows carried over from schema 1
    # held the key, vendor status and message only). The text index follows through its
    # trigger. One transaction, as every migration: about 150 s for 1,000,000 items here,
    # while other processes opening the file wait (up to `connect`'s 30 s busy timeout).
    "UPDATE items SET search = scanhub_search(key, item, application_name, search)",
    # 7 -> 8: the log's identity (`SinkLedger.log_id`), made once, random: a sink's `webhook-id`
    # names a transition by it and its id, unique across state files.
    """
    CREATE TABLE log_identity (id TEXT NOT NULL);;
    INSERT INTO log_identity (id) VALUES (lower(hex(randomblob(8))))
    """,
    # 8 -> 9: a transition whose previous one is pruned keeps the item's state before it
    # (`kept_before`, the previous one's `after`, written by `prune`): its event's body
    # (`previous_lifecycle`, `previous_verdict`) stays what it was. NULL everywhere else. An
    # item whose last transition an older scanhub pruned is marked so (`PRUNED`): its next
    # transition keeps the item's state; the ends in `retired` of histories it pruned go.
    # `pruned_by_count`: the log's last id when it was last
    # numbered by item for `max_per_item` (the next pruning numbers only the items since).
    f"""
    ALTER TABLE transitions ADD COLUMN kept_before TEXT;;
    UPDATE items SET last_transition = {PRUNED} WHERE last_transition IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM transitions t WHERE t.id = items.last_transition);;
    DELETE FROM retired WHERE NOT EXISTS (SELECT 1 FROM transitions t WHERE t.id = retired.last);;
    CREATE TABLE pruned_by_count (per_item INTEGER NOT NULL, numbered INTEGER NOT NULL)
    """,
)
assert len(MIGRATIONS) == SCHEMA_VERSION


def _stored_search(key: str, item: str, name: str | None, search: str) -> str:
    """Migration 7's function: the row's new search text, or its text as it was."""
    made = stored_search_text(key, item, name)
    return search if made is None else made


#: Before an item's row is deleted (untracked): the end of its history, to read it by (none
#: when it was pruned, `PRUNED`).
_RETIRE = (
    "INSERT OR IGNORE INTO retired (key, last) SELECT key, last_transition FROM items"
    f" WHERE key = ? AND last_transition > {PRUNED}"
)
#: The transitions a pruning removes (`_prune`), by id, with their item's key.
_PRUNING = "CREATE TEMP TABLE IF NOT EXISTS pruning (id INTEGER PRIMARY KEY, key TEXT NOT NULL)"
#: Too old: before ?1 (the first transition young enough, or the log's newest).
_PRUNE_OLD = "INSERT INTO temp.pruning SELECT id, key FROM transitions WHERE id < ?1"
#: Too many: past the newest ?1 of an item, the whole log numbered by item (the first pruning
#: by count: then only the items with transitions since, `_PRUNE_MANY_OF`).
_PRUNE_MANY = (
    "INSERT OR IGNORE INTO temp.pruning SELECT id, key FROM (SELECT id, key,"
    " ROW_NUMBER() OVER (PARTITION BY key ORDER BY id DESC) AS n FROM transitions) WHERE n > ?1"
)
#: Too many of item ?2: past its newest ?1, its chains walked from their ends as `_HISTORY`
#: walks them (a scalar lookup by id a step).
_PRUNE_MANY_OF = (
    "INSERT OR IGNORE INTO temp.pruning SELECT id, ?2 FROM (WITH RECURSIVE chain(id) AS ("
    f" SELECT last_transition FROM items WHERE key = ?2 AND last_transition > {PRUNED}"
    " UNION SELECT last FROM retired WHERE key = ?2"
    " UNION SELECT (SELECT p.id FROM transitions p WHERE p.id ="
    " (SELECT t.prev FROM transitions t WHERE t.id = chain.id) AND p.key = ?2)"
    " FROM chain WHERE chain.id IS NOT NULL)"
    " SELECT id FROM chain WHERE id IS NOT NULL ORDER BY id DESC LIMIT -1 OFFSET ?1)"
)
#: One item's history after ?1 (?2: its key), oldest first: its chains of transitions walked
#: from their ends (its row's last transition, the ends kept when it was untracked) through
#: `prev`, each step a lookup by id, as far back as ?1 or what the log still holds. Ids are
#: never reused, so `prev` is the same item's; each step checks the key all the same. Written so
#: that statistics cannot change the plan into a read of the log: a step is a scalar lookup
#: by id (a join there gets a Bloom filter, built by scanning the whole log, once the log
#: has statistics), and CROSS JOIN keeps the chain the outer loop (else a small analyzed log
#: is scanned and the chain searched).
_HISTORY = (
    "WITH RECURSIVE chain(id) AS ("
    " SELECT id FROM (SELECT last_transition AS id FROM items WHERE key = ?2"
    " UNION SELECT last FROM retired WHERE key = ?2) WHERE id > ?1"
    " UNION SELECT (SELECT p.id FROM transitions p WHERE p.id ="
    " (SELECT t.prev FROM transitions t WHERE t.id = chain.id) AND p.id > ?1 AND p.key = ?2)"
    " FROM chain WHERE chain.id IS NOT NULL)"
    " SELECT t.id, t.observed_at, t.after, COALESCE(p.after, t.kept_before) FROM chain"
    " CROSS JOIN transitions t ON t.id = chain.id LEFT JOIN transitions p ON p.id = t.prev"
    " ORDER BY t.id"
)

#: Columns a page of items reads (no vendor payload).
_LISTED = "item, origin, observed_at, last_error, changed_at, since, running_at, finished_at"
_N = 8  # how many columns _LISTED has
_TERMINAL = tuple(lc.value for lc in Lifecycle if lc.is_terminal)


def _ts(value: datetime) -> str:
    """A time as the store keeps it: ISO 8601 in UTC with microseconds (sorts as text), as
    `isoformat(timespec="microseconds")` writes it with `Z` for its "+00:00" (written out:
    this runs for every transition, and is 40% cheaper than `isoformat` and a slice)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return _TS % (
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


_TS = "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ"


def _dt(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value)  # Python 3.11 reads the `Z` the store writes


#: Columns of a sink's state, in `SinkState`'s order.
_SINK = (
    "name, position, generation, status, head, attempts, first_attempt, next_attempt,"
    " last_success, last_error, last_error_at, last_status, delivered, failures, dead,"
    " updated_at"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ots(value: datetime | None) -> str | None:
    return None if value is None else _ts(value)


def _sink(row: Sequence[Any]) -> SinkState:
    (
        name,
        position,
        generation,
        status,
        head,
        attempts,
        first,
        next_,
        success,
        error,
        error_at,
        last_status,
        delivered,
        failures,
        dead,
        updated,
    ) = row
    return SinkState(
        name,
        position,
        generation,
        SinkStatus(status),
        head,
        attempts,
        _dt(first),
        _dt(next_),
        _dt(success),
        error,
        _dt(error_at),
        last_status,
        delivered,
        failures,
        dead,
        _dt(updated),
    )


def _error_json(error: ItemError | None) -> str | None:
    return None if error is None else json.dumps(converter.unstructure(error))


def _error(text: str | None) -> ItemError | None:
    return None if text is None else converter.structure(json.loads(text), ItemError)


def _listed_row(row: tuple[Any, ...]) -> StoredItem:
    return _stored(row)


#: `_stored` of a listed row (no vendor payload), remembered by the row's values themselves:
#: StoredItems are frozen, and a row that changed is another key, so nothing here can be
#: stale. A page read again is not decoded again. Bounded, least recently used out first.
_listed = functools.lru_cache(maxsize=4096)(_listed_row)


def _stored(row: Sequence[Any], raw: str | None = None) -> StoredItem:
    item, origin, observed, error, changed, since, running, finished = row
    return StoredItem(
        item_from_text(item, raw),
        origin,
        _dt(observed),
        _error(error),
        _dt(changed),
        _dt(since),
        _dt(running),
        _dt(finished),
    )


class SQLiteStore(Store):
    """A `Store` in a SQLite file."""

    def __init__(self, path: str | Path, *, retention: Retention | None = None) -> None:
        super().__init__()
        self.path = str(path)
        self.retention = retention or Retention()
        self._db: sqlite3.Connection | None = None
        # One thread owns the connection: every call runs there, in order.
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="scanhub-db")
        self.sinks = SQLiteSinks(self._run)
        self._queries = SQLiteQueries(self._run)
        self._rows = RowCache()
        self._checkpoints: Checkpointer | None = None

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            db = self._db
            if db is None:
                raise RuntimeError("the store is not open")
            if self._checkpoints is None:
                return fn(db)
            before = db.total_changes
            result = fn(db)
            checkpoints = self._checkpoints  # None once `fn` closed the store
            if checkpoints is not None and db.total_changes != before:  # a write
                checkpoints.after_write(db)
            return result

        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, call)
        except sqlite3.OperationalError as exc:
            if not _away(exc):
                raise  # the statement is wrong, or the file (not its being busy or full)
            raise StoreUnavailable(
                f"{self.path}: the state file cannot be written now ({exc})", operation="store"
            ) from exc

    # --- opening and migrations -----------------------------------------------------------

    async def open(self) -> None:
        if self._db is not None:
            return
        loop = asyncio.get_running_loop()
        db = await loop.run_in_executor(self._thread, self._connect)
        self._checkpoints = await loop.run_in_executor(
            self._thread, Checkpointer.attach, db, self.path
        )
        self._db = db

    def _connect(self) -> sqlite3.Connection:
        try:
            db = connect(self.path)
        except sqlite3.OperationalError as exc:
            raise ConfigError(
                f"{self.path}: cannot open the state file: {exc}", operation="open store"
            ) from None
        except sqlite3.DatabaseError as exc:  # a file that is not SQLite at all
            raise ConfigError(
                f"{self.path}: not a scanhub state file ({exc})", operation="open store"
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"{self.path}: cannot open the state file: {exc}", operation="open store"
            ) from None
        try:
            migrate(db)
        except sqlite3.OperationalError as exc:  # locked, read-only, I/O: the file is one
            db.close()
            if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED"):
                raise ConfigError(
                    f"{self.path}: the state file is busy: another process holds its write"
                    " lock (migrating or writing it); try again",
                    operation="open store",
                ) from None
            raise ConfigError(
                f"{self.path}: cannot open the state file: {exc}", operation="open store"
            ) from None
        except sqlite3.DatabaseError as exc:
            db.close()
            raise ConfigError(
                f"{self.path}: not a scanhub state file ({exc})", operation="open store"
            ) from None
        except ConfigError as exc:
            db.close()
            raise ConfigError(f"{self.path}: {exc.message}", operation="open store") from None
        return db

    async def close(self) -> None:
        if self._db is None:
            return

        def shut(db: sqlite3.Connection) -> None:
            db.execute("PRAGMA optimize")  # first: if it fails, the store is as it was
            # The checkpointer's connection too (after a checkpoint under way): the last of
            # the two to close copies what is left of the WAL into the file and removes it.
            if self._checkpoints is not None:
                self._checkpoints.close()
                self._checkpoints = None
            db.close()
            self._rows.clear()

        await self._run(shut)
        self._db = None
        self._thread.shutdown(wait=True)
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="scanhub-db")

    # --- writes ---------------------------------------------------------------------------

    async def commit(self, observations: Sequence[Observation]) -> list[Committed]:
        if not observations:
            return []
        results = await self._run(lambda db: _commit(db, observations, self._rows))
        if any(r.id is not None for r in results):
            self._appended.set()
        return results

    async def untrack(self, keys: Sequence[str]) -> list[str]:
        def write(db: sqlite3.Connection) -> list[str]:
            with _tx(db):
                gone = []
                for key in keys:
                    db.execute(_RETIRE, (key,))
                    if db.execute("DELETE FROM items WHERE key = ?", (key,)).rowcount:
                        gone.append(key)
            self._rows.forget(keys)
            return gone

        return await self._run(write)

    async def prune(self, now: datetime) -> int:
        r = self.retention
        if r.keeps_everything:
            return 0

        cutoff = None if r.max_age is None else _ts(now - r.max_age)

        def write(db: sqlite3.Connection) -> int:
            with _tx(db):
                removed = _prune(db, cutoff, r.max_per_item)
            self._rows.clear()  # rows whose last transition went hold `PRUNED` now
            return removed

        return await self._run(write)

    # --- reads ----------------------------------------------------------------------------

    async def get(self, key: str) -> StoredItem | None:
        def read(db: sqlite3.Connection) -> Any:
            return db.execute(f"SELECT {_LISTED}, raw FROM items WHERE key = ?", (key,)).fetchone()

        row = await self._run(read)
        return None if row is None else _stored(row[:_N], row[_N])

    async def query(self, query: ItemQuery) -> Page:
        return await self._queries.query(query)

    async def active(self, sources: Collection[str] | None = None) -> list[StoredItem]:
        def read(db: sqlite3.Connection) -> list[Any]:
            if sources is None:
                return db.execute(
                    f"SELECT {_LISTED} FROM items WHERE active ORDER BY seq"
                ).fetchall()
            rows: list[Any] = []
            for source in sources:
                rows += db.execute(
                    f"SELECT {_LISTED}, seq FROM items WHERE active AND source = ? ORDER BY seq",
                    (source,),
                ).fetchall()
            rows.sort(key=lambda r: r[_N])
            return [r[:_N] for r in rows]

        return [_stored(r) for r in await self._run(read)]

    async def tracked_at(self, keys: Collection[str] | None = None) -> tuple[list[StoredItem], int]:
        def read(db: sqlite3.Connection) -> tuple[list[Any], int]:
            db.execute("BEGIN")  # one snapshot for both reads (WAL)
            try:
                sql = f"SELECT {_LISTED}, raw, seq FROM items"
                if keys is None:
                    rows = db.execute(sql + " ORDER BY seq").fetchall()
                else:  # by the index of keys, 500 a statement (not every item's row)
                    wanted = list(dict.fromkeys(keys))
                    rows = []
                    for start in range(0, len(wanted), 500):
                        chunk = wanted[start : start + 500]
                        marks = ",".join("?" * len(chunk))
                        rows += db.execute(f"{sql} WHERE key IN ({marks})", chunk).fetchall()
                    rows.sort(key=lambda r: r[_N + 1])
                last = db.execute("SELECT COALESCE(MAX(id), 0) FROM transitions").fetchone()[0]
            finally:
                db.execute("COMMIT")
            return rows, int(last)

        rows, last = await self._run(read)
        return [_stored(r[:_N], r[_N]) for r in rows], last

    async def counts(self) -> list[Count]:
        def read(db: sqlite3.Connection) -> list[Any]:
            return db.execute(
                "SELECT vendor, source, kind, lifecycle, verdict, n FROM item_counts WHERE n > 0"
                " ORDER BY vendor, source, kind, lifecycle, verdict"
            ).fetchall()

        return [Count(*r) for r in await self._run(read)]

    async def oldest_active(self) -> list[Oldest]:
        def read(db: sqlite3.Connection) -> list[Any]:
            sources = [r[0] for r in db.execute("SELECT DISTINCT source FROM items WHERE active")]
            out = []
            for source in sorted(sources):
                found = db.execute(
                    "SELECT key, since FROM items WHERE active AND source = ? AND since > ''"
                    " ORDER BY since LIMIT 1",  # '': a migrated row's start is not known
                    (source,),
                ).fetchone()
                if found is not None:
                    out.append((source, *found))
            return out

        rows = await self._run(read)
        return [Oldest(s, key, at) for s, key, since in rows if (at := _dt(since)) is not None]

    async def stats(
        self, *, since: datetime, until: datetime, group_by: Sequence[str] = ("source", "kind")
    ) -> list[GroupStats]:
        return await self._queries.stats(since=since, until=until, group_by=group_by)

    async def activity(self, *, since: datetime, until: datetime, bucket: int) -> list[Activity]:
        return await self._queries.activity(since=since, until=until, bucket=bucket)

    async def overdue(self, cutoffs: Sequence[tuple[str, str, datetime]]) -> list[Overdue]:
        return await self._queries.overdue(cutoffs)

    async def transitions(
        self, *, since: int = 0, key: str | None = None, limit: int | None = None
    ) -> list[Transition]:
        check_limit(limit)
        args: list[Any] = [min(since, 2**63 - 1)]
        if key is None:
            sql = (
                "SELECT t.id, t.observed_at, t.after, COALESCE(p.after, t.kept_before)"
                " FROM transitions t"
                " LEFT JOIN transitions p ON p.id = t.prev WHERE t.id > ?1 ORDER BY t.id"
            )
        else:
            sql = _HISTORY
            args.append(key)
        if limit is not None:
            args.append(min(limit, 2**63 - 1))
            sql += f" LIMIT ?{len(args)}"

        def read(db: sqlite3.Connection) -> list[Any]:
            return db.execute(sql, args).fetchall()

        out = []
        for tid, observed, after, before in await self._run(read):
            change = change_of(
                tid,
                _dt(observed) or datetime.now(UTC),
                json.loads(after),
                None if before is None else json.loads(before),
            )
            out.append(Transition(tid, change))
        return out

    async def last_id(self) -> int:
        def read(db: sqlite3.Connection) -> int:
            return int(db.execute("SELECT COALESCE(MAX(id), 0) FROM transitions").fetchone()[0])

        return await self._run(read)

    def size(self) -> int:
        """Bytes the database file (and its WAL) take on disk."""
        total = 0
        for suffix in ("", "-wal"):
            p = Path(self.path + suffix)
            if p.exists():
                total += p.stat().st_size
        return total


class SQLiteQueries:
    """The reads of a `SQLiteStore` whose statements are built from what is asked: a page of
    items in any of `ORDERS`, filtered and searched, with its total (`query`), and time in
    state over a window (`stats`, `activity`, `overdue`). Each is one or a few indexed
    statements on the store's thread and connection (`run`)."""

    def __init__(self, run: Runner) -> None:
        self._run = run

    async def query(self, query: ItemQuery) -> Page:
        counted = query.counted
        parts = page_parts(query, _ts)
        column = ORDERS[query.sort[0]]

        def read(db: sqlite3.Connection) -> tuple[list[Any], int]:
            where, args, total = _searched(db, query)
            rows: list[Any] = []
            for condition, given, order_by in parts:
                page_where = [*where, condition] if condition else where
                sql = f"SELECT {_LISTED}, key, {column} FROM items"
                if page_where:
                    sql += " WHERE " + " AND ".join(page_where)
                sql += f" ORDER BY {order_by} LIMIT ?"
                rows += db.execute(sql, [*args, *given, query.limit + 1 - len(rows)]).fetchall()
                if len(rows) > query.limit:
                    break
            if total is None and counted:
                count_where, count_args = _count_where(query)
                total = db.execute(
                    "SELECT COALESCE(SUM(n), 0) FROM item_counts" + count_where, count_args
                ).fetchone()[0]
            elif total is None:
                sql = "SELECT COUNT(*) FROM items"
                if where:
                    sql += " WHERE " + " AND ".join(where)
                total = db.execute(sql, args).fetchone()[0]
            return rows, int(total)

        rows, total = await self._run(read)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        last = rows[-1] if more else None
        value = None
        if last is not None and query.sort[0] != "key":
            value = last[_N + 1]
        return Page(
            [_listed(r[:_N]) for r in rows],
            last[_N] if last is not None else None,
            total,
            value,
        )

    async def stats(
        self, *, since: datetime, until: datetime, group_by: Sequence[str] = ("source", "kind")
    ) -> list[GroupStats]:
        groups = _groups(group_by)
        g = ", ".join(groups)
        # The window's finished items (the partial index on finished_at), with their phases in
        # seconds; percentiles by rank within each group (SQLite has no percentile function),
        # interpolated as PostgreSQL's percentile_cont.
        window = (
            f"WITH d AS (SELECT {_group_columns(groups)}, lifecycle, verdict,"
            f" MAX(0.0, {_span('since', 'running_at')}) AS queued,"
            f" CASE WHEN running_at < finished_at THEN {_span('running_at', 'finished_at')}"
            " END AS running,"
            f" MAX(0.0, {_span('since', 'finished_at')}) AS total"
            " FROM items WHERE finished_at >= ? AND finished_at < ?)"
        )
        counts = (
            f"{window} SELECT {g}, COUNT(*), SUM(lifecycle = 'failed'),"
            " SUM(lifecycle IN ('cancelled', 'expired')), SUM(verdict IN ('fail', 'error'))"
            f" FROM d GROUP BY {g} ORDER BY {g}"
        )
        spreads = (
            f"{window}, v AS ("
            f"SELECT 'queued' AS m, {g}, queued AS v FROM d WHERE queued IS NOT NULL"
            f" UNION ALL SELECT 'running', {g}, running FROM d WHERE running IS NOT NULL"
            f" UNION ALL SELECT 'total', {g}, total FROM d),"
            f" r AS (SELECT m, {g}, v, ROW_NUMBER() OVER (PARTITION BY m, {g} ORDER BY v) AS r,"
            f" COUNT(*) OVER (PARTITION BY m, {g}) AS n FROM v)"
            f" SELECT m, {g}, MAX(n), {_rank_percentile(0.5)}, {_rank_percentile(0.9)}, MAX(v)"
            f" FROM r GROUP BY m, {g}"
        )
        bounds = (_ts(since), _ts(until))

        def read(db: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            db.execute("BEGIN")  # one snapshot for both reads (WAL)
            try:
                return (
                    db.execute(counts, bounds).fetchall(),
                    db.execute(spreads, bounds).fetchall(),
                )
            finally:
                db.execute("COMMIT")

        totals, found = await self._run(read)
        return assemble_stats(groups, totals, found)

    async def activity(self, *, since: datetime, until: datetime, bucket: int) -> list[Activity]:
        start, end = _ts(since), _ts(until)
        sql = (
            # The time's whole seconds (its first 19 characters): strftime reads a fraction to
            # the millisecond, rounded, so 08:59:59.9995 would count in the next hour.
            "SELECT (CAST(strftime('%s', substr(observed_at, 1, 19)) AS INTEGER) / ?) * ?,"
            " json_extract(after, '$.lifecycle'), json_extract(after, '$.verdict'), COUNT(*)"
            " FROM transitions WHERE id >= ? AND observed_at >= ? AND observed_at < ?"
            " GROUP BY 1, 2, 3"
        )

        def read(db: sqlite3.Connection) -> list[Any]:
            first = _first_id_at(db, _ts(since - LOG_TIME_SLACK))
            return db.execute(sql, (bucket, bucket, first, start, end)).fetchall()

        return assemble_activity(await self._run(read))

    async def overdue(self, cutoffs: Sequence[tuple[str, str, datetime]]) -> list[Overdue]:
        def read(db: sqlite3.Connection) -> list[Overdue]:
            out = []
            for source, kind, cutoff in cutoffs:
                for vendor, n in db.execute(
                    "SELECT vendor, COUNT(*) FROM items"
                    " WHERE active AND source = ? AND since > '' AND since < ? AND kind = ?"
                    " GROUP BY vendor",  # '': a migrated row's start is not known (never stuck)
                    (source, _ts(cutoff), kind),
                ):
                    if n:
                        out.append(Overdue(vendor, source, kind, int(n)))
            return out

        return await self._run(read)


class SQLiteSinks(SinkLedger):
    """The sinks' delivery ledger of a `SQLiteStore`: the `sinks` and `sink_dead` tables,
    read and written on the store's thread and connection (`run`: the store's way there)."""

    def __init__(self, run: Runner) -> None:
        self._run = run

    async def log_id(self) -> str:
        def read(db: sqlite3.Connection) -> str:
            return str(db.execute("SELECT id FROM log_identity").fetchone()[0])

        return await self._run(read)

    async def open(self, name: str, now: datetime) -> SinkState:
        def write(db: sqlite3.Connection) -> Any:
            with _tx(db):
                db.execute(
                    "INSERT OR IGNORE INTO sinks (name, position, updated_at)"
                    " SELECT ?, COALESCE(MAX(id), 0), ? FROM transitions",
                    (name, _ts(now)),
                )
                return db.execute(f"SELECT {_SINK} FROM sinks WHERE name = ?", (name,)).fetchone()

        return _sink(await self._run(write))

    async def states(self, names: Collection[str] | None = None) -> list[SinkState]:
        def read(db: sqlite3.Connection) -> list[Any]:
            return db.execute(f"SELECT {_SINK} FROM sinks ORDER BY name").fetchall()

        found = [_sink(r) for r in await self._run(read)]
        return [s for s in found if names is None or s.name in names]

    async def save(self, state: SinkState, dead: Sequence[DeadLetter] = ()) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            with _tx(db):
                cur = db.execute(
                    "UPDATE sinks SET position = MAX(position, ?), status = ?, head = ?,"
                    " attempts = ?, first_attempt = ?, next_attempt = ?, last_success = ?,"
                    " last_error = ?, last_error_at = ?, last_status = ?,"
                    " delivered = MAX(delivered, ?), failures = MAX(failures, ?),"
                    " dead = MAX(dead, ?), updated_at = ? WHERE name = ? AND generation = ?",
                    (
                        state.position,
                        state.status.value,
                        state.head,
                        state.attempts,
                        _ots(state.first_attempt),
                        _ots(state.next_attempt),
                        _ots(state.last_success),
                        state.last_error,
                        _ots(state.last_error_at),
                        state.last_status,
                        state.delivered,
                        state.failures,
                        state.dead,
                        _ots(state.updated_at),
                        state.name,
                        state.generation,
                    ),
                )
                if not cur.rowcount:
                    return False
                db.executemany(
                    "INSERT OR REPLACE INTO sink_dead (sink, id, key, attempts, first_attempt,"
                    " last_attempt, error, status) VALUES (?,?,?,?,?,?,?,?)",
                    [
                        (
                            d.sink,
                            d.id,
                            d.key,
                            d.attempts,
                            _ts(d.first_attempt),
                            _ts(d.last_attempt),
                            d.error,
                            d.status,
                        )
                        for d in dead
                    ],
                )
                return True

        return await self._run(write)

    async def replay(self, name: str, since: int, now: datetime) -> SinkState:
        def write(db: sqlite3.Connection) -> Any:
            with _tx(db):
                newest = db.execute("SELECT COALESCE(MAX(id), 0) FROM transitions").fetchone()
                check_replay(name, since, int(newest[0]))
                db.execute(
                    "INSERT INTO sinks (name, position, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET position = excluded.position,"
                    " generation = generation + 1, status = 'active', head = NULL,"
                    " attempts = 0, first_attempt = NULL, next_attempt = NULL,"
                    " updated_at = excluded.updated_at",
                    (name, since, _ts(now)),
                )
                db.execute("DELETE FROM sink_dead WHERE sink = ? AND id > ?", (name, since))
                return db.execute(f"SELECT {_SINK} FROM sinks WHERE name = ?", (name,)).fetchone()

        return _sink(await self._run(write))

    async def dead_letters(
        self, name: str, *, after: int = 0, limit: int = 100
    ) -> list[DeadLetter]:
        def read(db: sqlite3.Connection) -> list[Any]:
            return db.execute(
                "SELECT sink, id, key, attempts, first_attempt, last_attempt, error, status"
                " FROM sink_dead WHERE sink = ? AND id > ? ORDER BY id LIMIT ?",
                (name, min(after, 2**63 - 1), limit),
            ).fetchall()

        return [
            DeadLetter(sink, tid, key, n, _dt(first) or _EPOCH, _dt(last) or _EPOCH, err, st)
            for sink, tid, key, n, first, last, err, st in await self._run(read)
        ]


def _groups(group_by: Sequence[str]) -> tuple[str, ...]:
    """The group columns of a stats query (a constant one when grouped by nothing)."""
    unknown = [g for g in group_by if g not in STAT_GROUPS]
    if unknown:
        raise ValueError(f"group_by: expected some of {', '.join(STAT_GROUPS)}, got {unknown}")
    chosen = tuple(g for g in STAT_GROUPS if g in group_by)
    return chosen or ("everything",)


def _group_columns(groups: Sequence[str]) -> str:
    return ", ".join("'' AS everything" if g == "everything" else g for g in groups)


def _span(start: str, end: str) -> str:
    """Seconds from one kept time to another (julianday: to the millisecond)."""
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


def _rank_percentile(p: float) -> str:
    """The `p` percentile of `v` over ranked rows `r` of groups of `n`, interpolated between
    the ranks either side of p * (n - 1), as percentile_cont does."""
    h = f"((n - 1) * {p!r})"
    lo = f"CAST({h} AS INTEGER)"
    return (
        f"SUM(CASE WHEN r = {lo} + 1 THEN v * (1 - ({h} - {lo}))"
        f" WHEN r = {lo} + 2 THEN v * ({h} - {lo}) ELSE 0 END)"
    )


def _first_id_at(db: sqlite3.Connection, at: str) -> int:
    """The first id of the log recorded at or after `at` (a bisection over ids: the log is in
    time order but for disorder within `LOG_TIME_SLACK`, which callers look back over, so this
    reads a few rows by id, never the log before the window)."""
    lo, hi = db.execute("SELECT MIN(id), MAX(id) FROM transitions").fetchone()
    if lo is None:
        return 0
    hi += 1
    while lo < hi:
        mid = (lo + hi) // 2
        found = db.execute(
            "SELECT id, observed_at FROM transitions WHERE id >= ? ORDER BY id LIMIT 1", (mid,)
        ).fetchone()
        if found is None or found[1] >= at:
            hi = mid
        else:
            lo = found[0] + 1
    return int(lo)


#: A text search matching at least this share of all items reads them in the page's order,
#: keeping those that match (about limit / share rows); a rarer one sorts its matches (about
#: 2 µs each). At 100,000 items, a word in 10% of them: 23 ms sorting, 5 ms walking; in 2%:
#: 6 ms sorting, 10 ms walking.
WALK_SHARE = 0.05


def _where(query: ItemQuery, *, walk: bool = False) -> tuple[list[str], list[Any]]:
    """The conditions of a query; `walk`: a text search keeps to the page's order (the index
    of matches is read once, as a list, instead of leading the plan)."""
    where: list[str] = []
    args: list[Any] = []
    for column in ("vendor", "source", "kind", "lifecycle", "verdict"):
        value = getattr(query, column)
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if query.application is not None:
        where.append("(application_id = ? OR application_name = ?)")
        args += [query.application, query.application]
    if query.text:
        # The trigram index finds substrings of three characters or more (`MIN_SEARCH`, which
        # `ItemQuery` holds a search to).
        rid = "+rid" if walk else "rid"
        where.append(f"{rid} IN (SELECT rowid FROM items_search WHERE items_search MATCH ?)")
        args.append(_match(query.text.casefold()))
    return where, args


def _match(needle: str) -> str:
    """A trigram MATCH for a substring (a phrase: no operators)."""
    return '"' + needle.replace('"', '""') + '"'


def _searched(db: sqlite3.Connection, query: ItemQuery) -> tuple[list[str], list[Any], int | None]:
    """`_where`, choosing the plan of a text search, and the total when it is known already: a
    text search alone is counted by its index (no row of items read)."""
    needle = (query.text or "").casefold()
    if not needle or query.application is not None or _count_where(query)[1]:
        return (*_where(query), None)
    matches = db.execute(
        "SELECT COUNT(*) FROM items_search WHERE items_search MATCH ?", (_match(needle),)
    ).fetchone()[0]
    everything = db.execute("SELECT COALESCE(SUM(n), 0) FROM item_counts").fetchone()[0]
    return (*_where(query, walk=matches >= WALK_SHARE * everything), int(matches))


def _count_where(query: ItemQuery) -> tuple[str, list[Any]]:
    where, args = [], []
    for column in ("vendor", "source", "kind", "lifecycle", "verdict"):
        value = getattr(query, column)
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    return (" WHERE " + " AND ".join(where) if where else ""), args


#: The frames of the WAL a checkpoint waits for: SQLite's own `wal_autocheckpoint`.
CHECKPOINT_FRAMES = 1000
#: Past this many frames in the WAL, the store's thread copies what is left (`Checkpointer`).
WAL_LIMIT_FRAMES = 4 * CHECKPOINT_FRAMES
_U32 = struct.Struct("=I")


class Checkpointer:
    """Copies a store's WAL into its file on a thread of its own, so that no commit waits for
    it. SQLite runs a checkpoint inside the COMMIT that takes the WAL past `wal_autocheckpoint`
    frames: in a stream of commits, a fifth of their time, and each such commit two to four
    times as long as the others (SQLite's documentation suggests a checkpoint thread for
    this). The checkpoints are as frequent as SQLite's (every `CHECKPOINT_FRAMES` frames), so
    under `synchronous=NORMAL` (the WAL synced when it is copied) a power loss can take what it
    could before, and what is committed while a pass is under way (SQLite syncs in the commit
    that crosses the mark, this thread just after it). SIGKILL loses nothing committed, as
    before: a commit is in the WAL when it returns.

    Where the WAL stands is read from its index, the `-shm` file, whose header SQLite documents
    for its unix and windows VFSes ("WAL-mode File Format"): the frames written (`mxFrame`,
    bytes 16-19) and those copied (`nBackfill`, bytes 96-99). A pass copies the WAL as it
    stood when the pass began; this thread passes again while what came meanwhile is
    `CHECKPOINT_FRAMES` or more (else, with no write after it, that would wait unsynced). The
    WAL starts over only when a write begins with all of it copied, which a thread copying
    behind a stream of commits never quite reaches: once the WAL holds `WAL_LIMIT_FRAMES`, the
    store's thread waits for this thread's pass to end (it stops there), copies the rest
    itself, and the next write starts the WAL over: the WAL holds at most that limit and one
    write. If a checkpoint on this thread fails, SQLite's own checkpoints are turned back on
    (logged once)."""

    def __init__(self, path: str, shm: int) -> None:
        self.path = path
        self._shm = shm
        self._thread = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="scanhub-checkpoint"
        )
        self._db: sqlite3.Connection | None = None
        self._running: concurrent.futures.Future[bool] | None = None
        #: Set by the store's thread: this thread stops after its pass (`_work`).
        self._halt = threading.Event()
        self._off = False
        #: Checkpoints run on this thread, and by the store's after a write.
        self.passes = 0
        self.inline = 0

    @classmethod
    def attach(cls, db: sqlite3.Connection, path: str) -> Checkpointer | None:
        """A checkpointer for the store's connection `db` (in WAL mode), whose own checkpoints
        are turned off; None where the WAL's index cannot be read (no `-shm` file: an
        in-memory database, another VFS), and SQLite checkpoints as it always does."""
        if path == ":memory:" or not hasattr(os, "pread"):
            return None
        path = os.path.abspath(path)  # the thread opens it later: from another directory maybe
        shm = _wal_index(path + "-shm")
        if shm is None:
            return None
        checkpointer = cls(path, shm)
        if checkpointer.position() is None:
            checkpointer.close()
            return None
        db.execute("PRAGMA wal_autocheckpoint=0")
        return checkpointer

    def position(self) -> tuple[int, int] | None:
        """The WAL's frames, and how many of them are in the file (read without a lock: a
        value may be a moment old, which only moves a checkpoint by a commit)."""
        try:
            head = os.pread(self._shm, 100, 0)
        except OSError:
            return None
        if len(head) < 100:
            return None
        return _U32.unpack_from(head, 16)[0], _U32.unpack_from(head, 96)[0]

    def after_write(self, db: sqlite3.Connection) -> None:
        """On the store's thread, after a write on its connection `db`."""
        if self._off:
            return
        running = self._running
        if running is not None:
            if not running.done():
                at = self.position()
                if at is None or at[0] < WAL_LIMIT_FRAMES:
                    return  # the thread copies this write too before it stops
                self._halt.set()  # past the limit: its pass ends, and this thread copies the rest
            try:
                worked = running.result()
            finally:
                self._halt.clear()
            self._running = None
            if not worked:
                self._off = True
                db.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_FRAMES}")
                return
        at = self.position()
        if at is None:
            return
        frames, copied = at
        if frames >= WAL_LIMIT_FRAMES and frames > copied:
            try:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:  # the write is committed: the next one tries again
                log.warning("%s: a checkpoint failed (%s)", self.path, exc)
                return
            self.inline += 1
        elif frames - copied >= CHECKPOINT_FRAMES:
            self._running = self._thread.submit(self._work)

    def _work(self) -> bool:
        """On this thread: passes until less than `CHECKPOINT_FRAMES` are left to copy, a reader
        (or another checkpoint) holds the rest, or the store's thread asks it to stop; False
        if a pass failed. A whole pass that moved nothing in the index read (not the index of
        the WAL copied, then) ends it too."""
        while True:
            before = self.position()
            whole = self._checkpoint()
            if whole is None:
                return False
            at = self.position()
            if not whole or self._halt.is_set() or at is None or at == before:
                return True
            if at[0] - at[1] < CHECKPOINT_FRAMES:
                return True

    def _checkpoint(self) -> bool | None:
        """One pass: True if it copied the whole WAL as it stood, False if a reader or another
        checkpoint held some of it back, None if it failed."""
        try:
            if self._db is None:
                self._db = sqlite3.connect(
                    self.path, timeout=30, isolation_level=None, check_same_thread=False
                )
                self._db.execute("PRAGMA synchronous=NORMAL")
            busy, frames, copied = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames < 0:  # not in WAL mode: not the store's database
                raise sqlite3.OperationalError(f"{self.path} has no WAL")
        except sqlite3.Error as exc:
            log.warning(
                "%s: a checkpoint on its own thread failed (%s); commits checkpoint the WAL"
                " themselves from now on",
                self.path,
                exc,
            )
            return None
        self.passes += 1
        return not busy and copied == frames

    def close(self) -> None:
        """Wait for a checkpoint under way, and close this thread's connection."""
        self._halt.set()
        if self._running is not None:
            self._running.result()
            self._running = None

        def shut() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        self._thread.submit(shut).result()
        self._thread.shutdown(wait=True)
        # The WAL index's descriptor stays open (`_wal_index`).


#: The WAL indexes (`-shm` files) that checkpointers read, by device and inode: each open once,
#: and closed only once its file is removed. Closing a descriptor of a file drops every POSIX
#: lock the process holds on that file, whichever descriptor took it: SQLite's locks on the
#: `-shm` file, of every connection of this process to the database (its readers' marks, its
#: writer's lock, the lock that says the index is in use), and another process could then
#: empty the WAL under a reader here, write beside a writer, or rebuild the index in use.
#: SQLite removes the file when the last connection to the database closes (and only then:
#: each connection holds a lock on the database that forbids it), so a removed file is no
#: connection's any more, and its descriptor can be closed.
_WAL_INDEXES: dict[tuple[int, int], int] = {}
_WAL_INDEXES_LOCK = threading.Lock()


def _wal_index(name: str) -> int | None:
    """A descriptor of the WAL index `name`, open for as long as the file is there; None when
    there is none."""
    with _WAL_INDEXES_LOCK:
        for known, fd in list(_WAL_INDEXES.items()):
            if os.fstat(fd).st_nlink == 0:
                del _WAL_INDEXES[known]
                os.close(fd)
        try:
            found = os.stat(name)
        except OSError:
            return None
        known_fd = _WAL_INDEXES.get((found.st_dev, found.st_ino))
        if known_fd is not None:
            return known_fd
        try:
            fd = os.open(name, os.O_RDONLY)
        except OSError:
            return None
        opened = os.fstat(fd)
        # (Were the file replaced between the two calls, a descriptor this replaces is left
        # open, never closed.)
        _WAL_INDEXES[opened.st_dev, opened.st_ino] = fd
        return fd


#: SQLite's primary result codes that mean "not now" (locked, busy, out of memory or disk,
#: read-only, I/O, cannot open), not "the statement is wrong" (`SQLITE_ERROR`: no such table,
#: a syntax error), as PostgreSQL's `_unavailable` tells them apart: only these make a
#: `StoreUnavailable`, which is retried and held (the recorder mends an observation no store
#: can write only after another error).
_AWAY = frozenset({5, 6, 7, 8, 9, 10, 13, 14, 15})


def _away(exc: sqlite3.OperationalError) -> bool:
    """Whether `exc` means the state file cannot be used now (see `_AWAY`)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is None or code & 0xFF in _AWAY


#: A pruning removing at least this share of what the log keeps finds the transitions left
#: that follow what goes, and the items whose last one goes, by reading the log and the items
#: once (in SQLite's C, a row a few hundred nanoseconds); a smaller one walks the pruned items'
#: chains (a lookup a step, a statement each from Python: about 100 times a row read).
_READ_WHOLE = 0.02
#: A smaller pruning's walk stops past this share of the log's span in steps, and reads the log
#: instead: the items it prunes keep long histories (a step costs about 25 rows read).
_WALK_STEPS = 0.04


def _prune(db: sqlite3.Connection, cutoff: str | None, per_item: int | None) -> int:
    """`SQLiteStore.prune` in its transaction: the transitions observed before `cutoff` or
    past the newest `per_item` of their item go (`Retention`); how many went. A transition
    left whose previous one goes keeps what it followed (`kept_before`); an item whose last
    one goes is marked `PRUNED`. The caller clears the row cache."""
    db.execute(_PRUNING)
    db.execute("DELETE FROM temp.pruning")
    if cutoff is not None:
        # The log is in time order (ids are handed out as commits happen): what is too old is
        # a prefix of it, short of the newest transition, which is always kept.
        (first,) = db.execute(
            "SELECT COALESCE((SELECT id FROM transitions WHERE observed_at >= ? ORDER BY id"
            " LIMIT 1), (SELECT MAX(id) FROM transitions))",
            (cutoff,),
        ).fetchone()
        if first is not None:
            db.execute(_PRUNE_OLD, (first,))
    if per_item is not None:
        # Numbered by item: the whole log once (and when `per_item` changes), then only the
        # items with transitions since the last numbering (no other can have more since).
        (last,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM transitions").fetchone()
        done = db.execute("SELECT per_item, numbered FROM pruned_by_count").fetchone()
        if done is None or done[0] != per_item or done[1] > last:
            db.execute(_PRUNE_MANY, (per_item,))
        else:
            keys = db.execute("SELECT DISTINCT key FROM transitions WHERE id > ?", (done[1],))
            db.executemany(_PRUNE_MANY_OF, [(per_item, key) for (key,) in keys.fetchall()])
        db.execute("DELETE FROM pruned_by_count")
        db.execute("INSERT INTO pruned_by_count VALUES (?, ?)", (per_item, last))
    (going,) = db.execute("SELECT COUNT(*) FROM temp.pruning").fetchone()
    if not going:
        return 0
    (span,) = db.execute(  # each of the two read at an end of the log's index
        "SELECT (SELECT MAX(id) FROM transitions) - (SELECT MIN(id) FROM transitions) + 1"
    ).fetchone()
    whole = going >= _READ_WHOLE * span
    # A walk longer than the read it saves (items of long histories kept, pruned by age:
    # 20 items of 10,000 transitions walked 1.6 s an hour) stops, and the log is read.
    if whole or not _keep_before_walked(db, int(_WALK_STEPS * span)):
        db.execute(
            "UPDATE transitions SET kept_before ="
            " (SELECT p.after FROM transitions p WHERE p.id = transitions.prev)"
            " WHERE prev IN (SELECT id FROM temp.pruning)"
            " AND id NOT IN (SELECT id FROM temp.pruning)"
        )
    if cutoff is not None:  # (an item's last transition is its newest: never past a count)
        # Looked up by each pruned transition's key (the items' rows are wide: not read all).
        db.execute(
            f"UPDATE items SET last_transition = {PRUNED} WHERE rid IN (SELECT i.rid"
            " FROM temp.pruning d CROSS JOIN items i ON i.key = d.key"
            " WHERE i.last_transition = d.id)"
        )
    removed = db.execute(
        "DELETE FROM transitions WHERE id IN (SELECT id FROM temp.pruning)"
    ).rowcount
    # The ends kept in `retired` of the histories that went: `retired` read once (an end a
    # row, of an item untracked whose history is still in the log), or looked up by key.
    db.execute(
        "DELETE FROM retired WHERE last IN (SELECT id FROM temp.pruning)"
        if whole
        else "DELETE FROM retired WHERE (key, last) IN (SELECT key, id FROM temp.pruning)"
    )
    db.execute("DELETE FROM temp.pruning")
    return int(removed)


def _keep_before_walked(db: sqlite3.Connection, steps: int) -> bool:
    """The transitions left whose previous one goes (`temp.pruning`) keep it (`kept_before`):
    found on each pruned item's chains, walked from their ends back through what stays (what
    goes is a chain's older part), a lookup by id a step. False: more than `steps` steps were
    needed (what was found is kept; the rest is not)."""

    def look(tid: int) -> tuple[int | None, bool] | None:
        """A transition's previous one, and whether it goes; None: not in the log."""
        return db.execute(  # type: ignore[no-any-return]
            "SELECT prev, EXISTS (SELECT 1 FROM temp.pruning WHERE id = ?1)"
            " FROM transitions WHERE id = ?1",
            (tid,),
        ).fetchone()

    keys = [k for (k,) in db.execute("SELECT DISTINCT key FROM temp.pruning")]
    for key in keys:
        for (at,) in db.execute(
            f"SELECT last_transition FROM items WHERE key = ?1 AND last_transition > {PRUNED}"
            " UNION SELECT last FROM retired WHERE key = ?1",
            (key,),
        ).fetchall():
            step = look(at)
            if step is None or step[1]:
                continue  # this chain goes whole
            while step[0] is not None:
                steps -= 1
                if steps < 0:
                    return False
                before = look(step[0])
                if before is None:
                    break  # pruned before now (and `at` kept what it followed then)
                if before[1]:  # `at` stays, the one it follows goes
                    db.execute(
                        "UPDATE transitions SET kept_before ="
                        " (SELECT after FROM transitions WHERE id = ?2) WHERE id = ?1",
                        (at, step[0]),
                    )
                    break
                at, step = step[0], before
    return True


class RowCache:
    """The items' rows a commit reads (what `plan` judges an observation by, and the values
    of the indexed columns its update compares), as this connection's last commits left them:
    a batch of observations of items committed recently (a watch's, a poller's) reads none
    from the file. Valid only while no other connection has committed to the file (SQLite's
    `PRAGMA data_version`, read once a commit under its write lock: another process, another
    store on the same file); anything else this connection writes to `items` (`untrack`)
    forgets its keys. Entries are immutable tuples stored after the commit succeeded, so a
    failed commit leaves none of its plan here. At most `LIMIT` rows, the least recently
    committed go first."""

    LIMIT = 8192

    def __init__(self) -> None:
        # key -> (lifecycle, verdict, vendor status, message, observed at, last transition,
        # application name, search text, rowid)
        self._held: dict[str, tuple[Any, ...]] = {}
        self._version: int | None = None

    def read(
        self,
        db: sqlite3.Connection,
        keys: list[str],
        rows: dict[str, Row],
        was: dict[str, tuple[Any, ...]],
        rids: dict[str, int],
    ) -> list[str]:
        """Fill `rows`, `was` and `rids` with the held rows of `keys`; returns the keys to
        read."""
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._held.clear()
            self._version = version
            return keys
        held = self._held
        missing = []
        for key in keys:
            h = held.get(key)
            if h is None:
                missing.append(key)
                continue
            lc, verdict, status, message, observed, last, name, search, rid = h
            rows[key] = Row(key, lc, verdict, status, message, observed, last)
            was[key] = (lc, verdict, message, name, search)
            rids[key] = rid
        return missing

    def keep(
        self,
        rows: dict[str, Row],
        was: dict[str, tuple[Any, ...]],
        rids: dict[str, int],
        searched: dict[str, str],
    ) -> None:
        """After a commit: hold its rows as they are now (`searched`: the search texts it
        wrote)."""
        held = self._held
        for key, row in rows.items():
            item = row.item
            old = was.get(key)
            name = old[3] if old is not None else None
            search = searched.get(key, old[4] if old is not None else None)
            if item is not None and item.application_name:
                name = item.application_name
            # As the file holds it, in UTC (`_ts`). `plan` already gives a zoned time in UTC;
            # this is for a naive one, which the file holds as local time made aware: the next
            # commit of a naive time is then refused alike, cached or read from the file.
            observed = row.observed_at
            if observed is not None and observed.tzinfo is not UTC:
                observed = observed.astimezone(UTC)
            held.pop(key, None)
            held[key] = (
                row.lifecycle,
                row.verdict,
                row.vendor_status,
                row.message,
                observed,
                row.last_transition,
                name,
                search,
                rids[key],
            )
        while len(held) > self.LIMIT:
            del held[next(iter(held))]

    def forget(self, keys: Collection[str]) -> None:
        for key in keys:
            self._held.pop(key, None)

    def clear(self) -> None:
        self._held.clear()
        self._version = None


def _commit(
    db: sqlite3.Connection, observations: Sequence[Observation], cache: RowCache
) -> list[Committed]:
    """One commit (see `Store.commit`), on the store's thread; `cache`: the rows committed
    before on this connection (`RowCache`)."""
    with _tx(db):
        keys = list(dict.fromkeys(ob.key for ob in observations))
        rows: dict[str, Row] = {}
        # What the row held before (lifecycle, verdict, message, application name, search
        # text): an item's update sets only the columns that change (`_update_states`).
        was: dict[str, tuple[Any, ...]] = {}
        # Each row's rowid: the batch's updates find their rows by it, not through the index of
        # keys (0.4 µs a transition).
        rids: dict[str, int] = {}
        keys = cache.read(db, keys, rows, was, rids)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, lc, verdict, status, message, observed, last, name, search, rid in db.execute(
                "SELECT key, lifecycle, verdict, vendor_status, message, observed_at,"
                " last_transition, application_name, search, rid FROM items"
                f" WHERE key IN ({marks})",
                chunk,
            ):
                row = rows[key] = stored_row(key, lc, verdict, status, message, _dt(observed), last)
                was[key] = (row.lifecycle, row.verdict, message, name, search)
                rids[key] = rid
        # Ids are handed out here, under the write lock, so a batch knows them as it goes (an
        # item's second transition in a batch points at its first). Never reused, as
        # AUTOINCREMENT promises: past the largest id ever handed out.
        next_id = (
            1
            + db.execute(
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'transitions'),"
                " 0), COALESCE((SELECT MAX(id) FROM transitions), 0))"
            ).fetchone()[0]
        )
        results: list[Committed] = []
        append = results.append
        inserted: dict[str, tuple[Observation, Row]] = {}
        logged: list[tuple[int, str, str, int | None, str]] = []
        # (rowid, transition id) of the transitions whose item's last one was pruned.
        follows_pruned: list[tuple[int, int]] = []
        # The JSON of the items logged, by identity: an item's current state is most often the
        # state its last transition logged, and is not encoded twice.
        encoded: dict[int, str] = {}
        # Times as text, by instant: an item's last transition and its row share one.
        times: dict[datetime, str] = {}
        for ob in observations:
            key = ob.key
            step, after = plan(rows.get(key), ob)
            if after is None or step.outcome is Outcome.STALE:
                append(Committed(key, step.outcome))
                continue
            rows[key] = after
            if step.insert:
                inserted[key] = (ob, after)
            tid = None
            if step.record:
                item = after.item
                assert item is not None
                tid = next_id
                next_id += 1
                text = encoded[id(item)] = item_json(item)
                at = ob.observed_at
                stamp = times.get(at)
                if stamp is None:
                    stamp = times[at] = _ts(at)
                prev = after.last_transition
                if prev == PRUNED:  # it follows the state its row holds (`kept_before`)
                    prev = None
                    follows_pruned.append((rids[key], tid))
                logged.append((tid, key, stamp, prev, text))
                after.last_transition, after.changed_at = tid, at
            append(Committed(key, step.outcome, tid, after.lifecycle))
        if inserted:
            # New rows get the rowids SQLite would give them (past the largest), named here so
            # that the batch's updates and the row cache know them.
            start, top = db.execute(
                "SELECT (SELECT COALESCE(MAX(seq), 0) FROM items),"
                " (SELECT COALESCE(MAX(rid), 0) FROM items)"
            ).fetchone()
            new_rows = []
            for n, (key, (ob, _)) in enumerate(inserted.items(), 1):
                assert ob.item is not None  # `plan` inserts only an observation with an item
                rids[key] = top + n
                new_rows.append(
                    (
                        top + n,
                        key,
                        start + n,
                        *new_item_columns(ob),
                        _ts(since_of(ob.item, ob.observed_at)),
                    )
                )
            db.executemany(
                "INSERT INTO items (rid, key, seq, origin, kind, vendor, source, application_id,"
                " lifecycle, verdict, vendor_status, active, since, item, search)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,'{}','')",
                new_rows,
            )
        if logged:
            _append_log(db, logged)
        if follows_pruned:  # before the rows take their new states
            db.executemany(
                "UPDATE transitions SET kept_before = (SELECT item FROM items WHERE rid = ?)"
                " WHERE id = ?",
                follows_pruned,
            )
        searched = _update_states(db, rows, was, rids, inserted, encoded, times)
    cache.keep(rows, was, rids, searched)  # committed: what the rows hold now
    return results


#: How many transitions one INSERT appends to the log: a row a statement costs twice as much
#: (each statement's own run, and AUTOINCREMENT's update of `sqlite_sequence` at its end). 100
#: rows are 500 variables, within the 999 that older SQLite builds allow.
_LOG_ROWS = 100
_LOG_INSERT = "INSERT INTO transitions (id, key, observed_at, prev, after) VALUES "
_LOG_INSERT_ONE = _LOG_INSERT + "(?,?,?,?,?)"
_LOG_INSERT_MANY = _LOG_INSERT + ",".join(["(?,?,?,?,?)"] * _LOG_ROWS)


def _append_log(
    db: sqlite3.Connection, logged: list[tuple[int, str, str, int | None, str]]
) -> None:
    """Insert a commit's transitions, `_LOG_ROWS` a statement (the rest one by one)."""
    whole = len(logged) - len(logged) % _LOG_ROWS
    for start in range(0, whole, _LOG_ROWS):
        db.execute(_LOG_INSERT_MANY, list(chain.from_iterable(logged[start : start + _LOG_ROWS])))
    if whole < len(logged):
        db.executemany(_LOG_INSERT_ONE, logged[whole:])


def _update_states(
    db: sqlite3.Connection,
    rows: dict[str, Row],
    was: dict[str, tuple[Any, ...]],
    rids: dict[str, int],
    inserted: dict[str, Any],
    encoded: dict[int, str],
    times: dict[datetime, str],
) -> dict[str, str]:
    """Rewrite the batch's changed rows; returns the search texts written, by key. SQLite
    updates every index over a column an UPDATE sets (and runs the triggers of the columns it
    names), whether its value changed or not, so the rows are grouped by which indexed columns
    change (`_state_update`): a new vendor status rewrites the row and its `changed_at` index
    entry, not the indexes of every filter; the search text (its own trigram index) is written
    only when it differs from the row's."""
    groups: dict[tuple[bool, bool, bool], list[tuple[Any, ...]]] = {}
    searched: dict[str, str] = {}
    sightings = []
    for key, row in rows.items():
        if not row.dirty:
            continue
        at = row.observed_at
        observed = None
        if at is not None:
            observed = times.get(at)
            if observed is None:
                observed = times[at] = _ts(at)
        item = row.item
        if item is None:
            sightings.append((observed, _error_json(row.error), rids[key]))
            continue
        lc = item.lifecycle
        new = key in inserted
        old = was.get(key)
        # The name the row keeps when the vendor gives none (as its column keeps it).
        text = search_text(item, None if old is None else old[3], key)
        if new or old is None or old[4] != text:
            searched[key] = text
        moved = new or old is None or old[0] is not lc or old[1] is not item.verdict
        name = item.application_name
        # An empty name is no name (as `search_text` reads it): the row keeps the one it has.
        named = bool(name) and (new or old is None or old[3] != name)
        changed = row.changed_at
        if changed is not None:
            stamp = times.get(changed)
            if stamp is None:
                stamp = times[changed] = _ts(changed)
        values: tuple[Any, ...] = (
            item.vendor_status,
            item.message,
            observed if lc is Lifecycle.RUNNING or lc.is_terminal else None,
            observed,
            _error_json(row.error),
            row.last_transition,
            encoded.get(id(item)) or item_json(item),
            raw_json(item),
        )
        if changed is not None:
            values += (stamp,)
        if moved:
            values += (lc.value, item.verdict.value, not lc.is_terminal)
            values += (observed if lc.is_terminal else None,)
        if named:
            values += (name,)
        groups.setdefault((changed is not None, moved, named), []).append((*values, rids[key]))
    for shape, states in groups.items():
        db.executemany(_state_update(*shape), states)
    if searched:
        db.executemany(
            "UPDATE items SET search = ? WHERE rid = ?",
            [(text, rids[key]) for key, text in searched.items()],
        )
    if sightings:
        db.executemany("UPDATE items SET observed_at = ?, last_error = ? WHERE rid = ?", sightings)
    return searched


@functools.cache
def _state_update(changed: bool, moved: bool, named: bool) -> str:
    """The UPDATE of an item's new state that sets the indexed columns that change: the time
    of its last transition (`changed`), its lifecycle and verdict and what follows from them
    (`moved`), its application's name (`named`); the other columns are in no index."""
    sql = (
        "UPDATE items SET vendor_status = ?, message = ?,"
        # Only an item seen under way before (`active` is the row's old value) gets a time it
        # started running or finished: one first seen finished has none.
        " running_at = CASE WHEN active THEN COALESCE(running_at, ?) ELSE running_at END,"
        " observed_at = ?, last_error = ?, last_transition = ?, item = ?, raw = ?"
    )
    if changed:
        sql += ", changed_at = ?"
    if moved:
        sql += (
            ", lifecycle = ?, verdict = ?, active = ?,"
            " finished_at = CASE WHEN active THEN COALESCE(finished_at, ?) ELSE finished_at END"
        )
    if named:
        sql += ", application_name = ?"
    return sql + " WHERE rid = ?"


class _tx:
    """`BEGIN IMMEDIATE ... COMMIT` (or ROLLBACK) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type:
            self.db.execute("ROLLBACK")
            return
        try:
            self.db.execute("COMMIT")
        except sqlite3.Error:
            # A failed COMMIT may leave the transaction open (I/O error, full disk): left
            # so, its writes would be read back and every later BEGIN refused.
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection in WAL mode with `synchronous=NORMAL`, for use from one thread at a time.
    Switching a new file to WAL takes a lock that does not wait like other statements do, so
    two processes opening one new file at once retry it."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    for attempt in range(300):
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if attempt == 299 or "locked" not in str(exc):
                db.close()
                raise
            time.sleep(0.1)
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


def migrate(db: sqlite3.Connection) -> int:
    """Bring the schema to `SCHEMA_VERSION`; returns the version found before. Safe to run
    twice and from two processes at once (each step re-reads the version under a write lock).
    A file from a newer scanhub is refused (`ConfigError`)."""
    found = int(db.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise ConfigError(
            f"the state file has schema version {found}, newer than this scanhub "
            f"({SCHEMA_VERSION}); upgrade scanhub",
            operation="open store",
        )
    _check_ours(db, found)
    _apply_migrations(db)
    missing = sorted(_schema_tables() - _tables(db))
    if missing:
        # A table gone from a file of this version: every read of it would fail later, with
        # the driver's traceback, in the middle of a command.
        raise ConfigError(
            f"a damaged scanhub state file: table {', '.join(missing)} missing"
            f" (schema version {SCHEMA_VERSION})",
            operation="open store",
        )
    return found


def _apply_migrations(db: sqlite3.Connection) -> None:
    db.create_function("scanhub_search", 4, _stored_search, deterministic=True)
    while True:
        with _tx(db):
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version >= SCHEMA_VERSION:
                return
            for statement in MIGRATIONS[version].split(";;"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {version + 1}")


def _tables(db: sqlite3.Connection) -> set[str]:
    rows = db.execute(
        "SELECT name FROM sqlite_master"
        " WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
    ).fetchall()
    return {str(name) for (name,) in rows}


@functools.cache
def _schema_tables() -> frozenset[str]:
    """The tables of a state file of `SCHEMA_VERSION`, as the migrations make them."""
    db = sqlite3.connect(":memory:")
    try:
        _apply_migrations(db)
        return frozenset(_tables(db))
    finally:
        db.close()


def _check_ours(db: sqlite3.Connection, found: int) -> None:
    """Refuse, before writing anything, a SQLite file that is not a scanhub state file: one
    with no schema version whose tables are another application's (migrating would add
    scanhub's tables to it), or one whose schema version is not scanhub's (it has neither
    `items` nor `transitions`: another application's own `user_version`)."""
    tables = _tables(db)
    if found == 0 and tables:
        raise ConfigError(
            "not a scanhub state file (a SQLite database of something else: it holds the"
            f" tables {', '.join(repr(t) for t in sorted(tables)[:5])}"
            f"{', ...' if len(tables) > 5 else ''})",
            operation="open store",
        )
    if found > 0 and not tables & {"items", "transitions"}:
        raise ConfigError(
            f"not a scanhub state file (a SQLite database with schema version {found} but"
            " without scanhub's tables)",
            operation="open store",
        )


__all__ = ["MIGRATIONS", "SQLiteStore", "connect", "migrate"]

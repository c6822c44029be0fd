"""`SQLiteStore`: one file, stdlib `sqlite3` on one worker thread, WAL, forward migrations.

- WAL journal with `synchronous=NORMAL`: a commit is durable against the process being killed
  at any moment (`kill -9`), and readers (`scanhub history`, a second process) never block the
  writer.
- `PRAGMA user_version` holds the schema version; `MIGRATIONS[n]` takes version n to n+1, each in
  one `BEGIN IMMEDIATE` transaction, so two processes opening the same file at once migrate it
  once.
- Every write is one transaction: a batch of transitions, or of observations.
- Transitions keep the items without their vendor payload (`raw`); the current state of each
  item keeps it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from attrs import evolve

from .._changes import Change, ItemError
from .._convert import converter
from .._model import Item
from ._base import (
    SCHEMA_VERSION,
    Observation,
    Retention,
    Store,
    StoredItem,
    Transition,
    item_from_json,
    item_json,
    item_row,
)

T = TypeVar("T")

#: MIGRATIONS[n] takes the schema from version n to n + 1.
MIGRATIONS: tuple[str, ...] = (
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
    );
    CREATE INDEX items_seq ON items (seq);
    CREATE TABLE transitions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        observed_at TEXT NOT NULL,
        before TEXT,
        after TEXT NOT NULL
    );
    CREATE INDEX transitions_key ON transitions (key, id);
    CREATE INDEX transitions_time ON transitions (observed_at);
    """,
)
assert len(MIGRATIONS) == SCHEMA_VERSION


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class SQLiteStore(Store):
    """A `Store` in a SQLite file."""

    def __init__(self, path: str | Path, *, retention: Retention | None = None) -> None:
        self.path = str(path)
        self.retention = retention or Retention()
        self._db: sqlite3.Connection | None = None
        # One thread owns the connection: every call runs there, in order.
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="scanhub-db")

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._db is None:
                raise RuntimeError("the store is not open")
            return fn(self._db)

        return await asyncio.get_running_loop().run_in_executor(self._thread, call)

    # --- opening and migrations -----------------------------------------------------------

    async def open(self) -> None:
        if self._db is not None:
            return
        loop = asyncio.get_running_loop()
        self._db = await loop.run_in_executor(self._thread, self._connect)

    def _connect(self) -> sqlite3.Connection:
        db = connect(self.path)
        migrate(db)
        return db

    async def close(self) -> None:
        if self._db is None:
            return

        def shut(db: sqlite3.Connection) -> None:
            db.execute("PRAGMA optimize")
            db.close()

        await self._run(shut)
        self._db = None
        self._thread.shutdown(wait=True)
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="scanhub-db")

    # --- writes ---------------------------------------------------------------------------

    async def track(self, items: Sequence[tuple[Item, str]]) -> None:
        rows = [(*item_row(item), how) for item, how in items]

        def write(db: sqlite3.Connection) -> None:
            with _tx(db):
                seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM items").fetchone()[0]
                for n, row in enumerate(rows, 1):
                    db.execute(
                        "INSERT OR IGNORE INTO items (key, kind, vendor, source, application_id,"
                        " lifecycle, verdict, item, how, seq) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (*row, seq + n),
                    )

        await self._run(write)

    async def untrack(self, keys: Sequence[str]) -> None:
        def write(db: sqlite3.Connection) -> None:
            with _tx(db):
                db.executemany("DELETE FROM items WHERE key = ?", [(k,) for k in keys])

        await self._run(write)

    async def record(self, changes: Sequence[Change]) -> list[Change]:
        rows = [
            (
                c.key,
                _ts(c.observed_at),
                None if c.before is None else item_json(c.before, raw=False),
                item_json(c.after, raw=False),
            )
            for c in changes
        ]
        states = [(*item_row(c.after), _ts(c.observed_at)) for c in changes]

        def write(db: sqlite3.Connection) -> list[int]:
            ids = []
            with _tx(db):
                seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM items").fetchone()[0]
                for row, state in zip(rows, states, strict=True):
                    cur = db.execute(
                        "INSERT INTO transitions (key, observed_at, before, after) "
                        "VALUES (?,?,?,?)",
                        row,
                    )
                    ids.append(int(cur.lastrowid or 0))
                    seq += 1
                    db.execute(
                        "INSERT INTO items (key, kind, vendor, source, application_id, lifecycle,"
                        " verdict, item, last_observed, how, seq, last_error, changed_at)"
                        " VALUES (?,?,?,?,?,?,?,?,?, 'track', ?, NULL, ?9)"
                        " ON CONFLICT (key) DO UPDATE SET lifecycle = excluded.lifecycle,"
                        " verdict = excluded.verdict, item = excluded.item,"
                        " last_observed = excluded.last_observed, last_error = NULL,"
                        " changed_at = excluded.changed_at",
                        (*state, seq),
                    )
            return ids

        ids = await self._run(write)
        return [evolve(c, id=i) for c, i in zip(changes, ids, strict=True)]

    async def observe(self, observations: Sequence[Observation]) -> None:
        rows = [
            (
                _ts(ob.observed_at),
                None if ob.error is None else json.dumps(converter.unstructure(ob.error)),
                ob.key,
            )
            for ob in observations
        ]

        def write(db: sqlite3.Connection) -> None:
            with _tx(db):
                db.executemany(
                    "UPDATE items SET last_observed = ?, last_error = ? WHERE key = ?", rows
                )

        await self._run(write)

    async def prune(self, now: datetime) -> int:
        r = self.retention
        if r.keeps_everything:
            return 0

        def write(db: sqlite3.Connection) -> int:
            removed = 0
            with _tx(db):
                if r.max_age is not None:
                    cur = db.execute(
                        "DELETE FROM transitions WHERE observed_at < ?", (_ts(now - r.max_age),)
                    )
                    removed += cur.rowcount
                if r.max_per_item is not None:
                    cur = db.execute(
                        "DELETE FROM transitions WHERE id IN (SELECT id FROM (SELECT id, "
                        "ROW_NUMBER() OVER (PARTITION BY key ORDER BY id DESC) AS n "
                        "FROM transitions) WHERE n > ?)",
                        (r.max_per_item,),
                    )
                    removed += cur.rowcount
            return removed

        return await self._run(write)

    # --- reads ----------------------------------------------------------------------------

    async def tracked(self) -> list[StoredItem]:
        def read(db: sqlite3.Connection) -> list[Any]:
            return db.execute(
                "SELECT item, how, last_observed, last_error, changed_at FROM items ORDER BY seq"
            ).fetchall()

        out = []
        for item, how, observed, error, changed in await self._run(read):
            err = None if error is None else converter.structure(json.loads(error), ItemError)
            out.append(
                StoredItem(item_from_json(json.loads(item)), how, _dt(observed), err, _dt(changed))
            )
        return out

    async def transitions(
        self, *, since: int = 0, key: str | None = None, limit: int | None = None
    ) -> list[Transition]:
        sql = "SELECT id, observed_at, before, after FROM transitions WHERE id > ?"
        args: list[Any] = [since]
        if key is not None:
            sql += " AND key = ?"
            args.append(key)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)

        def read(db: sqlite3.Connection) -> list[Any]:
            return db.execute(sql, args).fetchall()

        out = []
        for tid, observed, before, after in await self._run(read):
            change = Change(
                None if before is None else item_from_json(json.loads(before)),
                item_from_json(json.loads(after)),
                datetime.fromisoformat(observed),
                tid,
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


class _tx:
    """`BEGIN IMMEDIATE ... COMMIT` (or ROLLBACK) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


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
        except sqlite3.OperationalError:
            if attempt == 299:
                raise
            time.sleep(0.1)
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


def migrate(db: sqlite3.Connection) -> int:
    """Bring the schema to `SCHEMA_VERSION`; returns the version found before. Safe to run
    twice and from two processes at once (each step re-reads the version under a write lock)."""
    found = int(db.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise RuntimeError(
            f"the state file has schema version {found}, newer than this scanhub "
            f"({SCHEMA_VERSION}); upgrade scanhub"
        )
    while True:
        with _tx(db):
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version >= SCHEMA_VERSION:
                return found
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {version + 1}")


__all__ = ["MIGRATIONS", "SQLiteStore", "connect", "migrate"]

"""`PostgresStore`: the store for several `scanhub serve` replicas on one PostgreSQL database.

Driver: asyncpg (the `postgres` extra). It is native asyncio (no thread hop per call), speaks
PostgreSQL's binary protocol, and has LISTEN/NOTIFY built in (`add_listener`), which the
replicas use to hear of each other's transitions. psycopg 3 would do too; asyncpg needs no libpq
and is the faster of the two for the many small statements a watcher makes.

- Schema versions live in `scanhub_meta`; `MIGRATIONS[n]` takes version n to n+1 under a
  transaction-level advisory lock, so running them twice, or from two processes at once, is
  safe.
- Transitions are appended under a transaction-level advisory lock too: ids are handed out and
  committed in the same order, so a reader resuming "after id N" (SSE `Last-Event-ID`,
  `history --since`) never misses a transition that another replica committed late with a
  smaller id. The commit NOTIFYs `scanhub_transitions`.
- Leases: a row per source (`holder`, `expires_at`). A replica polls a source only while it holds
  its lease; a lease not renewed for its period expires and another replica takes the source.
  With `holder` set, `record` drops changes of sources this replica does not hold (fencing), so a
  replica that lost a lease never records a transition twice.
- The password comes from the environment (`SCANHUB_DATABASE_URL` or libpq's `PGPASSWORD`), never
  from a file, and is never printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from attrs import evolve

from .._changes import Change, ItemError
from .._convert import converter
from .._errors import ConfigError
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

#: Advisory-lock keys (any 64-bit numbers unique to scanhub).
_MIGRATION_LOCK = 0x5CA9_4B00_0000_0001
_APPEND_LOCK = 0x5CA9_4B00_0000_0002
CHANNEL = "scanhub_transitions"

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS items (
        key TEXT PRIMARY KEY,
        seq BIGINT NOT NULL,
        how TEXT NOT NULL,
        kind TEXT NOT NULL,
        vendor TEXT NOT NULL,
        source TEXT NOT NULL,
        application_id TEXT NOT NULL,
        lifecycle TEXT NOT NULL,
        verdict TEXT NOT NULL,
        item TEXT NOT NULL,
        last_observed TIMESTAMPTZ,
        last_error TEXT,
        changed_at TIMESTAMPTZ
    );
    CREATE INDEX IF NOT EXISTS items_seq ON items (seq);
    CREATE SEQUENCE IF NOT EXISTS items_seq_gen;
    CREATE TABLE IF NOT EXISTS transitions (
        id BIGSERIAL PRIMARY KEY,
        key TEXT NOT NULL,
        source TEXT NOT NULL,
        observed_at TIMESTAMPTZ NOT NULL,
        before TEXT,
        after TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS transitions_key ON transitions (key, id);
    CREATE INDEX IF NOT EXISTS transitions_time ON transitions (observed_at);
    CREATE TABLE IF NOT EXISTS leases (
        source TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    );
    """,
)
assert len(MIGRATIONS) == SCHEMA_VERSION


def database_url(url: str | None, env: dict[str, str] | None = None) -> str:
    """The URL to connect with: `url` (which must carry no password), else
    `SCANHUB_DATABASE_URL` from the environment (which may). libpq's variables (`PGPASSWORD`,
    `PGHOST`, ...) fill in what the URL leaves out."""
    env = dict(os.environ if env is None else env)
    if url in ("postgresql://", "postgres://"):
        url = None  # "the URL in the environment"
    if url:
        if urlsplit(url).password:
            raise ConfigError(
                "a PostgreSQL URL in --state or [state] url must not carry a password; put it "
                "in SCANHUB_DATABASE_URL or PGPASSWORD",
                operation="load config",
            )
        return url
    found = env.get("SCANHUB_DATABASE_URL")
    if not found:
        raise ConfigError(
            "no PostgreSQL URL: give --state postgresql://... or set SCANHUB_DATABASE_URL",
            operation="load config",
        )
    return found


def redact_url(url: str) -> str:
    """The URL as it may be shown: without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}:***@" if parts.username else "***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


class PostgresStore(Store):
    """A `Store` in PostgreSQL (see the module docstring). `holder` names this replica for
    leases and fencing; None (a single process) records everything."""

    shared = True

    def __init__(
        self,
        url: str,
        *,
        retention: Retention | None = None,
        holder: str | None = None,
        pool_size: int = 10,
    ) -> None:
        self._url = url
        self.retention = retention or Retention()
        self.holder = holder
        self._pool_size = pool_size
        self._pool: Any = None

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self._url)!r})"

    # --- opening ----------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        import asyncpg  # type: ignore[import-untyped]  # the driver ships no annotations

        self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=self._pool_size)
        async with self._pool.acquire() as con:
            await migrate(con)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    # --- writes -----------------------------------------------------------------------------

    async def track(self, items: Sequence[tuple[Item, str]]) -> None:
        rows = [(*item_row(item), how) for item, how in items]
        async with self._pool.acquire() as con, con.transaction():
            await con.executemany(
                "INSERT INTO items (key, kind, vendor, source, application_id, lifecycle, verdict,"
                " item, how, seq) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9, nextval('items_seq_gen'))"
                " ON CONFLICT (key) DO NOTHING",
                rows,
            )

    async def untrack(self, keys: Sequence[str]) -> None:
        async with self._pool.acquire() as con:
            await con.execute("DELETE FROM items WHERE key = ANY($1::text[])", list(keys))

    async def record(self, changes: Sequence[Change]) -> list[Change]:
        if not changes:
            return []
        async with self._pool.acquire() as con, con.transaction():
            await con.execute("SELECT pg_advisory_xact_lock($1)", _APPEND_LOCK)
            held = None
            if self.holder is not None:
                rows = await con.fetch(
                    "SELECT source FROM leases WHERE holder = $1 AND expires_at > now()",
                    self.holder,
                )
                held = {r["source"] for r in rows}
            kept = [
                c for c in changes if held is None or c.after.source in held
            ]  # fencing: a source whose lease moved is its new holder's to record
            if not kept:
                return []
            # One statement for the log and one for the current states, whatever the batch:
            # ids come in input order (WITH ORDINALITY), under the append lock.
            rows = await con.fetch(
                "INSERT INTO transitions (key, source, observed_at, before, after)"
                " SELECT k, s, o, b, a FROM unnest($1::text[], $2::text[], $3::timestamptz[],"
                " $4::text[], $5::text[]) WITH ORDINALITY AS t(k, s, o, b, a, n) ORDER BY n"
                " RETURNING id",
                [c.key for c in kept],
                [c.after.source for c in kept],
                [c.observed_at for c in kept],
                [None if c.before is None else item_json(c.before, raw=False) for c in kept],
                [item_json(c.after, raw=False) for c in kept],
            )
            ids = sorted(int(r["id"]) for r in rows)
            latest: dict[str, Change] = {c.key: c for c in kept}  # the last state of each item
            states = [(*item_row(c.after), c.observed_at) for c in latest.values()]
            await con.executemany(
                "INSERT INTO items (key, kind, vendor, source, application_id, lifecycle,"
                " verdict, item, how, seq, last_observed, last_error, changed_at)"
                " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,'track', nextval('items_seq_gen'), $9,"
                " NULL, $9)"
                " ON CONFLICT (key) DO UPDATE SET lifecycle = excluded.lifecycle,"
                " verdict = excluded.verdict, item = excluded.item,"
                " last_observed = excluded.last_observed, last_error = NULL,"
                " changed_at = excluded.changed_at",
                states,
            )
            out = [evolve(c, id=i) for c, i in zip(kept, ids, strict=True)]
            if out:
                await con.execute("SELECT pg_notify($1, $2)", CHANNEL, str(out[-1].id))
        return out

    async def observe(self, observations: Sequence[Observation]) -> None:
        rows = [
            (
                ob.observed_at,
                None if ob.error is None else json.dumps(converter.unstructure(ob.error)),
                ob.key,
            )
            for ob in observations
        ]
        async with self._pool.acquire() as con:
            await con.executemany(
                "UPDATE items SET last_observed = $1, last_error = $2 WHERE key = $3", rows
            )

    async def prune(self, now: datetime) -> int:
        r = self.retention
        if r.keeps_everything:
            return 0
        removed = 0
        async with self._pool.acquire() as con, con.transaction():
            if r.max_age is not None:
                status = await con.execute(
                    "DELETE FROM transitions WHERE observed_at < $1", now - r.max_age
                )
                removed += int(status.split()[-1])
            if r.max_per_item is not None:
                status = await con.execute(
                    "DELETE FROM transitions WHERE id IN (SELECT id FROM (SELECT id, "
                    "ROW_NUMBER() OVER (PARTITION BY key ORDER BY id DESC) AS n "
                    "FROM transitions) ranked WHERE n > $1)",
                    r.max_per_item,
                )
                removed += int(status.split()[-1])
        return removed

    # --- reads ------------------------------------------------------------------------------

    async def tracked(self) -> list[StoredItem]:
        async with self._pool.acquire() as con:
            rows = await con.fetch(
                "SELECT item, how, last_observed, last_error, changed_at FROM items ORDER BY seq"
            )
        out = []
        for r in rows:
            err = r["last_error"]
            error = None if err is None else converter.structure(json.loads(err), ItemError)
            out.append(
                StoredItem(
                    item_from_json(json.loads(r["item"])),
                    r["how"],
                    _utc(r["last_observed"]),
                    error,
                    _utc(r["changed_at"]),
                )
            )
        return out

    async def transitions(
        self, *, since: int = 0, key: str | None = None, limit: int | None = None
    ) -> list[Transition]:
        sql = "SELECT id, observed_at, before, after FROM transitions WHERE id > $1"
        args: list[Any] = [since]
        if key is not None:
            args.append(key)
            sql += f" AND key = ${len(args)}"
        sql += " ORDER BY id"
        if limit is not None:
            args.append(limit)
            sql += f" LIMIT ${len(args)}"
        async with self._pool.acquire() as con:
            rows = await con.fetch(sql, *args)
        return [
            Transition(
                int(r["id"]),
                Change(
                    None if r["before"] is None else item_from_json(json.loads(r["before"])),
                    item_from_json(json.loads(r["after"])),
                    _utc(r["observed_at"]) or datetime.now(UTC),
                    int(r["id"]),
                ),
            )
            for r in rows
        ]

    async def last_id(self) -> int:
        async with self._pool.acquire() as con:
            return int(await con.fetchval("SELECT COALESCE(MAX(id), 0) FROM transitions"))

    # --- replicas ---------------------------------------------------------------------------

    async def lease(self, sources: Sequence[str], ttl: float) -> set[str]:
        """Take or renew the leases of `sources` for `ttl` seconds; returns those held."""
        if self.holder is None:
            return set(sources)
        async with self._pool.acquire() as con:
            rows = await con.fetch(
                "INSERT INTO leases (source, holder, expires_at)"
                " SELECT s, $2, now() + make_interval(secs => $3) FROM unnest($1::text[]) s"
                " ON CONFLICT (source) DO UPDATE SET holder = excluded.holder,"
                " expires_at = excluded.expires_at"
                " WHERE leases.holder = excluded.holder OR leases.expires_at < now()"
                " RETURNING source",
                list(sources),
                self.holder,
                ttl,
            )
        return {r["source"] for r in rows}

    async def release(self) -> None:
        """Give up every lease this replica holds (a clean stop hands sources over at once)."""
        if self.holder is not None and self._pool is not None:
            async with self._pool.acquire() as con:
                await con.execute("DELETE FROM leases WHERE holder = $1", self.holder)

    async def follow(self, since: int) -> AsyncIterator[Change]:
        """Every transition after `since`, in id order, as it is committed by any replica
        (LISTEN/NOTIFY, with a periodic look in case a notification was missed)."""
        wake = asyncio.Event()

        def heard(*_: object) -> None:
            wake.set()

        con = await self._pool.acquire()
        try:
            await con.add_listener(CHANNEL, heard)
            while True:
                found = await self.transitions(since=since, limit=1000)
                for t in found:
                    since = t.id
                    yield t.change
                if len(found) == 1000:
                    continue
                wake.clear()
                try:
                    async with asyncio.timeout(2.0):
                        await wake.wait()
                except TimeoutError:
                    pass
        finally:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await con.remove_listener(CHANNEL, heard)
            await self._pool.release(con)


async def migrate(con: Any) -> int:
    """Bring the schema to `SCHEMA_VERSION` under an advisory lock; returns the version found."""
    async with con.transaction():
        await con.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await con.execute("CREATE TABLE IF NOT EXISTS scanhub_meta (version INTEGER NOT NULL)")
        version = await con.fetchval("SELECT version FROM scanhub_meta")
        if version is None:
            await con.execute("INSERT INTO scanhub_meta (version) VALUES (0)")
            version = 0
        found = int(version)
        if found > SCHEMA_VERSION:
            raise RuntimeError(
                f"the database has schema version {found}, newer than this scanhub "
                f"({SCHEMA_VERSION}); upgrade scanhub"
            )
        for step in range(found, SCHEMA_VERSION):
            await con.execute(MIGRATIONS[step])
            await con.execute("UPDATE scanhub_meta SET version = $1", step + 1)
        return found


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)

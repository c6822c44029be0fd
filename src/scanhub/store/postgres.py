"""`PostgresStore`: the store for several `scanhub serve` replicas on one PostgreSQL database.

Driver: asyncpg (the `postgres` extra). It is native asyncio (no thread hop per call), speaks
PostgreSQL's binary protocol, and has LISTEN/NOTIFY built in (`add_listener`), which the
replicas use to hear of each other's commits. psycopg 3 would do too; asyncpg needs no libpq
and is the faster of the two for the many small statements a watcher makes.

- Schema versions live in `scanhub_meta`; `MIGRATIONS[n]` takes version n to n+1 under a
  transaction-level advisory lock, so running them twice, or from two processes at once, is
  safe.
- A commit runs under a transaction-level advisory lock: the current states of the batch's
  keys are read, the commit rule (`plan`) applied, and ids handed out and committed in the same
  order, so a reader resuming "after id N" (SSE `Last-Event-ID`, `history --since`) never
  misses a transition another replica committed late with a smaller id. Any replica may
  commit what it saw of any item: the rule judges it against what is stored (a state that
  moves nothing forward, or an answer older than what is stored, records nothing), so a
  replica that lost a source's lease cannot record a transition twice, and nothing a replica
  saw is dropped for want of a lease.
- Each commit that appended NOTIFYs `scanhub_transitions`; each that changed the tracked set
  NOTIFYs `scanhub_tracking` with the sources concerned, so the replica polling a source learns
  of items tracked on another replica at once.
- Leases: a row per source (`holder`, `expires_at`). A replica polls a source only while it holds
  its lease; a lease not renewed for its period expires and another replica takes the source.
- Reads are indexed queries (an index per filter, a trigram index for text search where the
  `pg_trgm` extension can be created, counts kept by a trigger).
- The password comes from the environment (`SCANHUB_DATABASE_URL` or libpq's `PGPASSWORD`), never
  from a file, and is never printed.

Three parts share the store's pool: `PostgresStore` (opening, the writes, the item and log
reads, leases and notifications), `PostgresQueries` (the statements built from what is asked:
pages of items, time in state) and `PostgresSinks` (the sinks' delivery ledger).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._changes import Change, ItemError
from .._convert import converter
from .._errors import ConfigError, StoreUnavailable
from .._model import Lifecycle
from ._base import (
    LOG_TIME_SLACK,
    ORDERS,
    PHASES,
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
    value_text,
)

log = logging.getLogger("scanhub")

#: Advisory-lock keys (any 64-bit numbers unique to scanhub).
_MIGRATION_LOCK = 0x5CA9_4B00_0000_0001
_APPEND_LOCK = 0x5CA9_4B00_0000_0002
CHANNEL = "scanhub_transitions"
TRACKING_CHANNEL = "scanhub_tracking"

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
    # 1 -> 2: a column and an index per filter, counts kept by a trigger, the vendor payload in
    # its own column, and a log that points at the previous transition instead of copying it.
    """
    ALTER TABLE items RENAME COLUMN how TO origin;
    ALTER TABLE items RENAME COLUMN last_observed TO observed_at;
    ALTER TABLE items ADD COLUMN application_name TEXT;
    ALTER TABLE items ADD COLUMN vendor_status TEXT NOT NULL DEFAULT '';
    ALTER TABLE items ADD COLUMN message TEXT;
    ALTER TABLE items ADD COLUMN active BOOLEAN NOT NULL DEFAULT TRUE;
    ALTER TABLE items ADD COLUMN since TIMESTAMPTZ;
    ALTER TABLE items ADD COLUMN running_at TIMESTAMPTZ;
    ALTER TABLE items ADD COLUMN finished_at TIMESTAMPTZ;
    ALTER TABLE items ADD COLUMN last_transition BIGINT;
    ALTER TABLE items ADD COLUMN raw TEXT;
    ALTER TABLE items ADD COLUMN search TEXT NOT NULL DEFAULT '';
    UPDATE items SET
        vendor_status = COALESCE(item::jsonb ->> 'vendor_status', ''),
        message = item::jsonb ->> 'message',
        active = lifecycle NOT IN ('succeeded', 'failed', 'cancelled', 'expired'),
        since = COALESCE((item::jsonb ->> 'created_at')::timestamptz, changed_at, observed_at,
                         now()),
        last_transition = (SELECT MAX(id) FROM transitions t WHERE t.key = items.key),
        raw = (item::jsonb -> 'raw')::text,
        item = ((item::jsonb - 'raw') - 'key')::text,
        search = lower(key || ' ' || COALESCE(item::jsonb ->> 'vendor_status', '') || ' ' ||
                       COALESCE(item::jsonb ->> 'message', ''));
    ALTER TABLE items ALTER COLUMN since SET NOT NULL;
    ALTER TABLE transitions ADD COLUMN prev BIGINT;
    UPDATE transitions t SET prev = p.prev FROM (
        SELECT id, LAG(id) OVER (PARTITION BY key ORDER BY id) AS prev FROM transitions
    ) p WHERE p.id = t.id;
    ALTER TABLE transitions DROP COLUMN before;
    DROP INDEX IF EXISTS transitions_time;
    CREATE INDEX items_vendor ON items (vendor, key);
    CREATE INDEX items_source ON items (source, key);
    CREATE INDEX items_kind ON items (kind, key);
    CREATE INDEX items_lifecycle ON items (lifecycle, key);
    CREATE INDEX items_verdict ON items (verdict, key);
    CREATE INDEX items_application ON items (application_id, key);
    CREATE INDEX items_application_name ON items (application_name, key);
    CREATE INDEX items_active ON items (source, seq) WHERE active;
    CREATE INDEX items_active_since ON items (source, since) WHERE active;
    CREATE INDEX items_finished ON items (finished_at) WHERE finished_at IS NOT NULL;
    CREATE TABLE item_counts (
        vendor TEXT NOT NULL,
        source TEXT NOT NULL,
        kind TEXT NOT NULL,
        lifecycle TEXT NOT NULL,
        verdict TEXT NOT NULL,
        n BIGINT NOT NULL,
        PRIMARY KEY (vendor, source, kind, lifecycle, verdict)
    );
    INSERT INTO item_counts
    SELECT vendor, source, kind, lifecycle, verdict, COUNT(*) FROM items
    GROUP BY vendor, source, kind, lifecycle, verdict;
    CREATE FUNCTION scanhub_count_items() RETURNS trigger AS $$
    BEGIN
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
            UPDATE item_counts SET n = n - 1 WHERE vendor = OLD.vendor AND source = OLD.source
                AND kind = OLD.kind AND lifecycle = OLD.lifecycle AND verdict = OLD.verdict;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO item_counts VALUES (NEW.vendor, NEW.source, NEW.kind, NEW.lifecycle,
                NEW.verdict, 1)
            ON CONFLICT (vendor, source, kind, lifecycle, verdict) DO UPDATE
            SET n = item_counts.n + 1;
        END IF;
        RETURN NULL;
    END $$ LANGUAGE plpgsql;
    CREATE TRIGGER items_counted AFTER INSERT OR DELETE ON items
        FOR EACH ROW EXECUTE FUNCTION scanhub_count_items();
    CREATE TRIGGER items_counted_move AFTER UPDATE OF lifecycle, verdict ON items
        FOR EACH ROW WHEN (OLD.lifecycle IS DISTINCT FROM NEW.lifecycle
                           OR OLD.verdict IS DISTINCT FROM NEW.verdict)
        EXECUTE FUNCTION scanhub_count_items();
    """,
    # 2 -> 3: sinks, each a reader of the log with its own cursor, and their dead letters.
    """
    CREATE TABLE sinks (
        name TEXT PRIMARY KEY,
        position BIGINT NOT NULL,
        generation BIGINT NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'active',
        head BIGINT,
        attempts INTEGER NOT NULL DEFAULT 0,
        first_attempt TIMESTAMPTZ,
        next_attempt TIMESTAMPTZ,
        last_success TIMESTAMPTZ,
        last_error TEXT,
        last_error_at TIMESTAMPTZ,
        last_status INTEGER,
        delivered BIGINT NOT NULL DEFAULT 0,
        failures BIGINT NOT NULL DEFAULT 0,
        dead BIGINT NOT NULL DEFAULT 0,
        updated_at TIMESTAMPTZ
    );
    CREATE TABLE sink_dead (
        sink TEXT NOT NULL,
        id BIGINT NOT NULL,
        key TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        first_attempt TIMESTAMPTZ NOT NULL,
        last_attempt TIMESTAMPTZ NOT NULL,
        error TEXT NOT NULL,
        status INTEGER,
        PRIMARY KEY (sink, id)
    );
    """,
    # 3 -> 4 (time in state): the page's orders, newest change first and by start time. Only
    # indexes, each IF NOT EXISTS (written as a 3 beside the sinks' 3, renumbered at the merge).
    """
    CREATE INDEX IF NOT EXISTS items_changed ON items (changed_at, key);
    CREATE INDEX IF NOT EXISTS items_since ON items (since, key);
    """,
    # 4 -> 5: HOT updates of the items. When an item last changed moves to a table of its own
    # (`item_changes`: a row an item, with the index of the "newest change first" order, whose
    # never-changed part, NULL, is in key order): a transition then changes no indexed column
    # of its item's row (a new vendor status, a new payload), so PostgreSQL rewrites the row
    # in its page without a new entry in each of its 15 indexes, and the room for that is
    # kept in each page (fillfactor 50; pages written from now on). Existing times are
    # carried over. Replicas of an older scanhub cannot write to it (no `items.changed_at`):
    # upgrade them together.
    """
    CREATE TABLE item_changes (
        key TEXT PRIMARY KEY REFERENCES items (key) ON DELETE CASCADE,
        changed_at TIMESTAMPTZ
    );
    INSERT INTO item_changes (key, changed_at) SELECT key, changed_at FROM items;
    CREATE INDEX item_changes_changed ON item_changes (changed_at, key);
    DROP INDEX IF EXISTS items_changed;
    ALTER TABLE items DROP COLUMN changed_at;
    ALTER TABLE items SET (fillfactor = 50);
    """,
    # 5 -> 6: an item's history is read through its chain of transitions (`prev`) from its
    # last one instead of through `transitions_key (key, id)`, an index entry a transition (96
    # bytes of each transition's 407 on disk) written at its item's place. `retired` keeps
    # the end of the history of an item no longer tracked (see SQLite's 6); the ends of the
    # histories already in the log are found here.
    """
    CREATE TABLE retired (
        key TEXT NOT NULL,
        last BIGINT NOT NULL,
        PRIMARY KEY (key, last)
    );
    INSERT INTO retired (key, last) SELECT t.key, t.id FROM transitions t
    WHERE NOT EXISTS (SELECT 1 FROM transitions n WHERE n.prev = t.id)
    AND NOT EXISTS (SELECT 1 FROM items i WHERE i.last_transition = t.id)
    ON CONFLICT DO NOTHING;
    DROP INDEX IF EXISTS transitions_key;
    """,
    # 6 -> 7: an item's search text keeps its fields apart (see SQLite's 7), made again for
    # every row by `search_text` itself: in Python (`_rewrite_search`), not in SQL, whose
    # `lower` is not Python's `casefold`.
    "",
    # 7 -> 8: the log's identity (see SQLite's 8), shared by every replica.
    """
    CREATE TABLE log_identity (id TEXT NOT NULL);
    INSERT INTO log_identity (id)
    VALUES (substr(md5(random()::text || clock_timestamp()::text), 1, 16));
    """,
    # 8 -> 9: what a transition followed, kept when pruning takes its previous one (see
    # SQLite's 9). A NULL in every other row costs no byte: the row's null bitmap fits in the
    # padding of its header.
    # An item whose last transition an older scanhub pruned is marked so (`PRUNED`), the ends
    # in `retired` of histories it pruned go, and `pruned_by_count` is SQLite's 9's. `pruning`
    # holds what a pruning removes while it runs (pruning holds the append lock: one at a
    # time): a table of the schema's, unlogged, not a temporary one, which a role without the
    # TEMPORARY privilege could not make. Under the append lock, as migration 7: an older
    # replica still running commits before or after it, never between its statements.
    f"""
    SELECT pg_advisory_xact_lock({_APPEND_LOCK});
    ALTER TABLE transitions ADD COLUMN IF NOT EXISTS kept_before TEXT;
    UPDATE items i SET last_transition = {PRUNED} WHERE last_transition IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM transitions t WHERE t.id = i.last_transition);
    DELETE FROM retired r WHERE NOT EXISTS (SELECT 1 FROM transitions t WHERE t.id = r.last);
    CREATE TABLE IF NOT EXISTS pruned_by_count (
        per_item INTEGER NOT NULL, numbered BIGINT NOT NULL
    );
    CREATE UNLOGGED TABLE IF NOT EXISTS pruning (id BIGINT PRIMARY KEY, key TEXT NOT NULL);
    """,
)
assert len(MIGRATIONS) == SCHEMA_VERSION

#: Untrack: each item's row goes, the end of its history kept in `retired` to read it by
#: (none when it was pruned, `PRUNED`).
_UNTRACK = (
    "WITH gone AS (DELETE FROM items WHERE key = ANY($1::text[])"
    " RETURNING key, source, last_transition),"
    " kept AS (INSERT INTO retired (key, last) SELECT key, last_transition FROM gone"
    f" WHERE last_transition > {PRUNED} ON CONFLICT DO NOTHING)"
    " SELECT key, source FROM gone"
)
#: Empties `pruning` (migration 9's): the transitions a pruning removes, by id, with their
#: item's key (see SQLite's `_prune`), emptied again when it ends. A DELETE, not a TRUNCATE:
#: that waits for every lock on the table (a `pg_dump` under way holds one), and pruning holds
#: the append lock meanwhile, so every replica's commits would wait too.
_PRUNING = "DELETE FROM pruning"
#: Too old: before the first transition observed at $1 or later (or the log's newest, always
#: kept).
_PRUNE_OLD = (
    "INSERT INTO pruning SELECT id, key FROM transitions WHERE id < COALESCE("
    " (SELECT id FROM transitions WHERE observed_at >= $1 ORDER BY id LIMIT 1),"
    " (SELECT MAX(id) FROM transitions))"
)
#: The items whose last transition goes: their next one keeps what they are (`PRUNED`).
_PRUNE_ENDS = (
    f"UPDATE items i SET last_transition = {PRUNED} FROM pruning d"
    " WHERE i.key = d.key AND i.last_transition = d.id"
)
#: Too many: past the newest $1 of an item, the whole log numbered by item (the first pruning
#: by count: then only the items with transitions since, `_PRUNE_MANY_SINCE`, another
#: replica's too: ids are handed out under the append lock, which pruning holds).
_PRUNE_MANY = (
    "INSERT INTO pruning SELECT id, key FROM (SELECT id, key,"
    " ROW_NUMBER() OVER (PARTITION BY key ORDER BY id DESC) AS n FROM transitions) ranked"
    " WHERE n > $1 ON CONFLICT DO NOTHING"
)
#: Too many: past the newest $1 of each item with transitions after $2, its chains walked from
#: their ends as `_HISTORY` walks them (a lookup by id a step).
_PRUNE_MANY_SINCE = (
    "WITH RECURSIVE keys AS (SELECT DISTINCT key FROM transitions WHERE id > $2),"
    " ends(id) AS (SELECT i.last_transition FROM keys JOIN items i ON i.key = keys.key"
    f" WHERE i.last_transition > {PRUNED}"
    " UNION SELECT r.last FROM keys JOIN retired r ON r.key = keys.key),"
    " chain(id, key, prev) AS (SELECT t.id, t.key, t.prev FROM ends"
    " JOIN transitions t ON t.id = ends.id"
    " UNION ALL SELECT t.id, t.key, t.prev FROM chain JOIN transitions t ON t.id = chain.prev)"
    " INSERT INTO pruning SELECT id, key FROM (SELECT id, key,"
    " ROW_NUMBER() OVER (PARTITION BY key ORDER BY id DESC) AS n FROM chain) ranked"
    " WHERE n > $1 ON CONFLICT DO NOTHING"
)
#: A transition left whose previous one goes keeps the item's state before it: each chain of
#: the items pruned walked from its end through what stays, a lookup by id a step.
_PRUNE_KEEP = (
    "WITH RECURSIVE keys AS (SELECT DISTINCT key FROM pruning),"
    " ends(id) AS (SELECT i.last_transition FROM keys JOIN items i ON i.key = keys.key"
    f" WHERE i.last_transition > {PRUNED}"  # (an end pruned before: no chain to walk)
    " UNION SELECT r.last FROM keys JOIN retired r ON r.key = keys.key),"
    " chain(id, prev) AS (SELECT t.id, t.prev FROM ends JOIN transitions t ON t.id = ends.id"
    " WHERE NOT EXISTS (SELECT 1 FROM pruning d WHERE d.id = t.id)"
    " UNION ALL SELECT t.id, t.prev FROM chain JOIN transitions t ON t.id = chain.prev"
    " WHERE NOT EXISTS (SELECT 1 FROM pruning d WHERE d.id = t.id))"
    " UPDATE transitions t SET kept_before = p.after FROM chain c"
    " JOIN pruning d ON d.id = c.prev JOIN transitions p ON p.id = c.prev"
    " WHERE t.id = c.id"
)
#: The transitions left whose previous one goes, found by reading the log once (a large
#: pruning, see SQLite's `_READ_WHOLE`).
_PRUNE_KEEP_WHOLE = (
    "UPDATE transitions t SET kept_before = p.after FROM pruning d"
    " JOIN transitions p ON p.id = d.id"
    " WHERE t.prev = d.id AND NOT EXISTS (SELECT 1 FROM pruning e WHERE e.id = t.id)"
)
#: Share of the log a pruning removes from which it reads the log once (SQLite's).
_READ_WHOLE = 0.02
#: Prune what `pruning` holds, with the ends kept in `retired` among them (looked up by their
#: key: no walk of `retired` or of the log); how many transitions went.
_PRUNED = (
    "WITH gone AS (DELETE FROM transitions t USING pruning d WHERE t.id = d.id"
    " RETURNING t.id, t.key),"
    " ends AS (DELETE FROM retired r USING gone g WHERE r.key = g.key AND r.last = g.id)"
    " SELECT COUNT(*) FROM gone"
)
#: One item's history after $1 ($2: its key), oldest first: its chains walked from their ends
#: through `prev`, a lookup by id a step (see SQLite's `_HISTORY`).
_HISTORY = (
    "WITH RECURSIVE chain(id) AS ("
    " SELECT id FROM (SELECT last_transition AS id FROM items WHERE key = $2"
    " UNION SELECT last FROM retired WHERE key = $2) ends WHERE id > $1"
    " UNION SELECT t.prev FROM chain JOIN transitions t ON t.id = chain.id"
    " WHERE t.key = $2 AND t.prev > $1)"
    " SELECT t.id, t.observed_at, t.after, COALESCE(p.after, t.kept_before) AS before"
    " FROM chain"
    " JOIN transitions t ON t.id = chain.id LEFT JOIN transitions p ON p.id = t.prev"
    " WHERE t.key = $2 ORDER BY t.id"
)

#: Columns a page of items reads (no vendor payload).
_LISTED = "item, origin, observed_at, last_error, changed_at, since, running_at, finished_at"
#: What the reads of items read from: each item with when it last changed (NULL: never).
_ITEMS = "items JOIN item_changes USING (key)"


#: libpq's connection parameters that carry a secret (`?password=`, the client key's
#: `?sslpassword=`): refused in a URL given on the command line or in a file, like a password
#: before the host, and never shown.
_SECRET_PARAMS = frozenset({"password", "sslpassword"})


def _password_span(url: str) -> tuple[int, int] | None:
    """Where a password before the host may be in `url`, or None. libpq ends a URI's user
    info at the last `@` before the first `/` after `scheme://` (so a password may hold an
    unencoded `#` or `?`, which Python's URL parser does not see as one); a password with an
    unencoded `/` is misread by every parser, and would be shown whole by a span that ends
    where they end. So the span runs from the first `:` to the last `@` of everything after
    `scheme://`: what is shown masks too much rather than too little (an `@` in the path or
    query after a `host:port` masks them too)."""
    _, sep, rest = url.partition("://")
    if not sep:
        return None
    start = len(url) - len(rest)
    userinfo, at, _ = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return None
    colon = start + userinfo.index(":")
    return colon + 1, start + len(userinfo)


def _away(url: str, exc: BaseException) -> StoreUnavailable:
    """The database away (not answering, starting up, shutting down) as `open` says it."""
    why = _unsaid(url, f"{type(exc).__name__}: {exc}")
    return StoreUnavailable(f"the database is unavailable ({why})", operation="open store")


def _unsaid(url: str, text: str) -> str:
    """`text` (a driver's error) with the password of `url`, if it quotes it, hidden."""
    password = _libpq_password(url)
    return text.replace(password, "***") if password else text


def _libpq_password(url: str) -> str | None:
    """The password as libpq reads one before the host (its user info ends at the last `@`
    before the first `/`), or None."""
    rest = url.partition("://")[2]
    userinfo, at, _ = rest.split("/", 1)[0].rpartition("@")
    return userinfo.partition(":")[2] if at and ":" in userinfo else None


def _parse_problem(url: str) -> str | None:
    """Why asyncpg (which reads a URL as Python's parser does) would misread or refuse `url`,
    as the end of a sentence that shows nothing of the URL, or None."""
    password = _libpq_password(url)
    if password is None and _password_span(url) is not None:
        # An `@` after the first `/`: a password holding an unencoded `/` (a parser reads
        # what comes before it as the host and port), or an `@` in the path or query.
        return (
            "has an @ after its host: percent-encode a / in the password (%2F), or an @ in "
            "the path or query (%40)"
        )
    if password is not None and any(c in password for c in "?#"):
        return "has a password holding an unencoded ? or #: percent-encode it (%3F, %23)"
    try:
        parts = urlsplit(url)
        parse_qsl(parts.query, True)
        if "," not in parts.netloc:  # several hosts (libpq's failover list) have ports each
            parts.port  # noqa: B018 - reading it checks it (ValueError when out of range)
    except ValueError as exc:
        # The user info is cut off before the port is read: the message quotes no password.
        return f"is not a URL libpq can read ({exc})"
    return None


def url_problem(url: str) -> str | None:
    """What is wrong with a PostgreSQL URL given in --state or [state] url, as the end of a
    sentence (None: nothing): not one, or one that carries a password."""
    if _libpq_password(url) is not None:  # first: a parser's message may quote the password
        return "must not carry a password; put it in SCANHUB_DATABASE_URL or PGPASSWORD"
    problem = _parse_problem(url)
    if problem is not None:
        return problem
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        return "must start with postgresql://"
    if any(k in _SECRET_PARAMS for k, _ in parse_qsl(parts.query, True)):
        return "must not carry a password; put it in SCANHUB_DATABASE_URL or PGPASSWORD"
    return None


def database_url(url: str | None, env: dict[str, str] | None = None) -> str:
    """The URL to connect with: `url` (which must carry no password, before the host or as a
    query parameter), else `SCANHUB_DATABASE_URL` from the environment (which may, and is
    checked as asyncpg will read it). libpq's variables (`PGPASSWORD`, `PGHOST`, ...) fill in
    what the URL leaves out."""
    env = dict(os.environ if env is None else env)
    if url in ("postgresql://", "postgres://"):
        url = None  # "the URL in the environment"
    if url:
        problem = url_problem(url)
        if problem is not None:
            raise ConfigError(
                f"a PostgreSQL URL in --state or [state] url {problem}", operation="load config"
            )
        return url
    found = env.get("SCANHUB_DATABASE_URL")
    if not found:
        raise ConfigError(
            "no PostgreSQL URL: give --state postgresql://... or set SCANHUB_DATABASE_URL",
            operation="load config",
        )
    if not _POSTGRES_SCHEME.match(found):
        # A libpq key=value string (`host=db password=...`), a URL without its scheme, the
        # password alone: nothing of it is shown, it may be all secret.
        raise ConfigError(
            "SCANHUB_DATABASE_URL does not hold a postgresql:// URL (its value is not shown)",
            operation="load config",
        )
    problem = _parse_problem(found)
    if problem is not None:
        raise ConfigError(
            f"the PostgreSQL URL in SCANHUB_DATABASE_URL ({redact_url(found)}) {problem}",
            operation="load config",
        )
    return found


#: What a PostgreSQL URL starts with, in any case.
_POSTGRES_SCHEME = re.compile(r"postgres(ql)?://", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL as it may be shown: without its password, before the host (however it is
    written, up to the URL's last `@`) or in the query. Text that is no URL at all (no
    `scheme://`: a libpq key=value string, a password) shows nothing of itself."""
    if "://" not in url:
        return "a PostgreSQL URL"
    span = _password_span(url)
    if span is not None:
        url = url[: span[0]] + "***" + url[span[1] :]
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, True)
    except ValueError:
        return "a PostgreSQL URL"  # one libpq cannot read shows nothing of itself
    if not any(k in _SECRET_PARAMS for k, _ in query):
        return url
    shown = [(k, "***" if k in _SECRET_PARAMS else v) for k, v in query]
    query_text = urlencode(shown, safe="*")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query_text, parts.fragment))


class PostgresStore(Store):
    """A `Store` in PostgreSQL (see the module docstring). `holder` names this replica in the
    leases table; None (a single process) holds every lease."""

    shared = True

    def __init__(
        self,
        url: str,
        *,
        retention: Retention | None = None,
        holder: str | None = None,
        pool_size: int = 10,
    ) -> None:
        super().__init__()
        self._url = url
        self.retention = retention or Retention()
        self.holder = holder
        self._pool_size = pool_size
        self._pool: Any = None
        self.sinks = PostgresSinks(self._acquire, holder)
        self._queries = PostgresQueries(self._acquire)

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self._url)!r})"

    # --- opening ----------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        import asyncpg  # type: ignore[import-untyped]  # the driver ships no annotations

        problem = _parse_problem(self._url)  # before the driver, whose errors quote the URL
        if problem is not None:
            raise ConfigError(f"{redact_url(self._url)} {problem}", operation="open store")
        try:
            try:
                self._pool = await asyncpg.create_pool(
                    self._url, min_size=1, max_size=self._pool_size
                )
            except (asyncpg.ClientConfigurationError, ValueError, OverflowError) as exc:
                # A URL or libpq variable asyncpg cannot use (`?sslmode=bogus`): the user's to
                # mend. (OverflowError: a port past 65535 from PGPORT, which reaches the socket.)
                raise ConfigError(
                    f"{redact_url(self._url)}: cannot connect with these settings:"
                    f" {_unsaid(self._url, str(exc))}",
                    operation="open store",
                ) from None
            async with self._pool.acquire() as con:
                await migrate(con)
                self._queries.trigram = await _trigram_index(con)
        except _unavailable() as exc:  # away: tried again by a caller (serve, at start)
            pool, self._pool = self._pool, None
            if pool is not None:
                pool.terminate()
            raise _away(self._url, exc) from None

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @contextlib.asynccontextmanager
    async def _acquire(self) -> AsyncIterator[Any]:
        """A pooled connection; the database being away is a `StoreUnavailable`."""
        if self._pool is None:
            raise RuntimeError("the store is not open")
        try:
            async with self._pool.acquire() as con:
                yield con
        except _unavailable() as exc:
            raise StoreUnavailable(
                f"the database is unavailable ({type(exc).__name__}: {exc})",
                operation="store",
            ) from exc

    # --- writes -----------------------------------------------------------------------------

    async def commit(self, observations: Sequence[Observation]) -> list[Committed]:
        if not observations:
            return []
        async with self._acquire() as con, con.transaction():
            results, appended = await _commit(con, observations)
        if appended:
            self._appended.set()
        return results

    async def untrack(self, keys: Sequence[str]) -> list[str]:
        async with self._acquire() as con, con.transaction():
            rows = await con.fetch(_UNTRACK, list(keys))
            if rows:
                sources = sorted({r["source"] for r in rows})
                await con.execute("SELECT pg_notify($1, $2)", TRACKING_CHANNEL, json.dumps(sources))
        gone = {r["key"] for r in rows}
        return [k for k in dict.fromkeys(keys) if k in gone]  # in the order given

    async def prune(self, now: datetime) -> int:
        r = self.retention
        if r.keeps_everything:
            return 0
        async with self._acquire() as con, con.transaction():
            # Under the append lock: no commit reads an item's last transition meanwhile (it
            # would point its new one at a transition this pruning removes).
            await con.execute("SELECT pg_advisory_xact_lock($1)", _APPEND_LOCK)
            await con.execute(_PRUNING)
            if r.max_age is not None:
                await con.execute(_PRUNE_OLD, now - r.max_age)
            if r.max_per_item is not None:
                # Numbered by item: the whole log once (and when `max_per_item` changes),
                # then only the items with transitions since the last numbering.
                last = int(await con.fetchval("SELECT COALESCE(MAX(id), 0) FROM transitions"))
                done = await con.fetchrow("SELECT per_item, numbered FROM pruned_by_count")
                if done is None or done[0] != r.max_per_item or done[1] > last:
                    await con.execute(_PRUNE_MANY, r.max_per_item)
                else:
                    await con.execute(_PRUNE_MANY_SINCE, r.max_per_item, done[1])
                await con.execute(
                    "DELETE FROM pruned_by_count; INSERT INTO pruned_by_count"
                    f" VALUES ({int(r.max_per_item)}, {last})"
                )
            going = int(await con.fetchval("SELECT COUNT(*) FROM pruning"))
            if not going:
                return 0
            await con.execute("ANALYZE pruning")  # its size: looked up by key, or joined
            span = int(
                await con.fetchval(
                    "SELECT (SELECT MAX(id) FROM transitions)"
                    " - (SELECT MIN(id) FROM transitions) + 1"
                )
            )
            # As SQLite's `_READ_WHOLE`: a large pruning reads the log once for the
            # transitions left that follow what goes; a small one walks the items' chains.
            whole = going >= _READ_WHOLE * span
            await con.execute(_PRUNE_KEEP_WHOLE if whole else _PRUNE_KEEP)
            if r.max_age is not None:  # (an item's last transition is never past a count)
                await con.execute(_PRUNE_ENDS)
            removed = int(await con.fetchval(_PRUNED))
            await con.execute(_PRUNING)
            return removed

    # --- reads ------------------------------------------------------------------------------

    async def get(self, key: str) -> StoredItem | None:
        async with self._acquire() as con:
            r = await con.fetchrow(f"SELECT {_LISTED}, raw FROM {_ITEMS} WHERE key = $1", key)
        return None if r is None else _stored(r, r["raw"])

    async def query(self, query: ItemQuery) -> Page:
        return await self._queries.query(query)

    async def active(self, sources: Collection[str] | None = None) -> list[StoredItem]:
        async with self._acquire() as con:
            if sources is None:
                rows = await con.fetch(f"SELECT {_LISTED} FROM {_ITEMS} WHERE active ORDER BY seq")
            else:
                rows = await con.fetch(
                    f"SELECT {_LISTED} FROM {_ITEMS} WHERE active AND source = ANY($1::text[])"
                    " ORDER BY seq",
                    list(sources),
                )
        return [_stored(r) for r in rows]

    async def tracked_at(self, keys: Collection[str] | None = None) -> tuple[list[StoredItem], int]:
        async with (
            self._acquire() as con,
            con.transaction(isolation="repeatable_read", readonly=True),
        ):
            if keys is None:
                rows = await con.fetch(f"SELECT {_LISTED}, raw FROM {_ITEMS} ORDER BY seq")
            else:
                rows = await con.fetch(
                    f"SELECT {_LISTED}, raw FROM {_ITEMS} WHERE key = ANY($1::text[]) ORDER BY seq",
                    list(keys),
                )
            last = await con.fetchval("SELECT COALESCE(MAX(id), 0) FROM transitions")
        return [_stored(r, r["raw"]) for r in rows], int(last)

    async def counts(self) -> list[Count]:
        async with self._acquire() as con:
            rows = await con.fetch(
                "SELECT vendor, source, kind, lifecycle, verdict, n FROM item_counts WHERE n > 0"
                " ORDER BY vendor, source, kind, lifecycle, verdict"
            )
        return [Count(*r) for r in rows]

    async def oldest_active(self) -> list[Oldest]:
        async with self._acquire() as con:
            rows = await con.fetch(
                "SELECT DISTINCT ON (source) source, key, since FROM items WHERE active"
                " ORDER BY source, since"
            )
        return [Oldest(r["source"], r["key"], _utc(r["since"]) or datetime.now(UTC)) for r in rows]

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
                "SELECT t.id, t.observed_at, t.after, COALESCE(p.after, t.kept_before) AS before"
                " FROM transitions t"
                " LEFT JOIN transitions p ON p.id = t.prev WHERE t.id > $1 ORDER BY t.id"
            )
        else:
            sql = _HISTORY
            args.append(key)
        if limit is not None:
            args.append(min(limit, 2**63 - 1))
            sql += f" LIMIT ${len(args)}"
        async with self._acquire() as con:
            rows = await con.fetch(sql, *args)
        return [
            Transition(
                int(r["id"]),
                change_of(
                    int(r["id"]),
                    _utc(r["observed_at"]) or datetime.now(UTC),
                    json.loads(r["after"]),
                    None if r["before"] is None else json.loads(r["before"]),
                ),
            )
            for r in rows
        ]

    async def last_id(self) -> int:
        async with self._acquire() as con:
            return int(await con.fetchval("SELECT COALESCE(MAX(id), 0) FROM transitions"))

    # --- replicas ---------------------------------------------------------------------------

    async def lease(self, sources: Sequence[str], ttl: float) -> set[str]:
        """Take or renew the leases of `sources` for `ttl` seconds; returns those held."""
        if self.holder is None:
            return set(sources)
        async with self._acquire() as con:
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

    async def release_leases(self) -> None:
        """Give up every lease this replica holds (a clean stop hands sources over at once)."""
        if self.holder is not None and self._pool is not None:
            async with self._acquire() as con:
                await con.execute("DELETE FROM leases WHERE holder = $1", self.holder)

    async def follow(self, since: int) -> AsyncIterator[Change]:
        """Every transition after `since`, in id order, as any replica commits it (LISTEN/
        NOTIFY, with a look every two seconds in case a notification was missed). When the
        database goes away it reconnects with backoff and resumes after the last id it
        yielded: no gap, no repeat."""
        async for _ in _listen(self._url, CHANNEL):
            while True:
                found = await self.transitions(since=since, limit=1000)
                for t in found:
                    since = t.id
                    yield t.change
                if len(found) < 1000:
                    break

    async def tracking_changes(self) -> AsyncIterator[frozenset[str]]:
        """The sources whose tracked set any replica changed (as NOTIFYed); an empty set after
        a reconnect means "anything may have changed while away"."""
        first = True
        async for payload in _listen(self._url, TRACKING_CHANNEL, payloads=True):
            if payload is None:
                if not first:
                    yield frozenset()
                first = False
                continue
            try:
                sources = json.loads(payload)
            except ValueError:
                yield frozenset()
                continue
            yield frozenset(s for s in sources if isinstance(s, str))


class PostgresQueries:
    """The reads of a `PostgresStore` whose statements are built from what is asked: a page of
    items in any of `ORDERS`, filtered and searched, with its total (`query`), and time in
    state over a window (`stats`, `activity`, `overdue`). Each is one or a few indexed
    statements on a connection of the store's pool (`acquire`)."""

    def __init__(self, acquire: Callable[[], contextlib.AbstractAsyncContextManager[Any]]) -> None:
        self._acquire = acquire
        #: Whether `pg_trgm` could be used for text search (found when the store opens).
        self.trigram = False

    async def query(self, query: ItemQuery) -> Page:
        where, args = self._where(query)
        parts = page_parts(query, lambda t: t)
        column = ORDERS[query.sort[0]]
        async with self._acquire() as con:
            rows: list[Any] = []
            for condition, given, order_by in parts:
                if column == "changed_at":
                    # Read in the order of `item_changes`' index (its key: the same value).
                    condition = _CHANGES_KEY.sub("item_changes.key", condition)
                    order_by = _CHANGES_KEY.sub("item_changes.key", order_by)
                page_where = [*where, condition] if condition else where
                sql = f"SELECT {_LISTED}, key, {column} AS sorted FROM {_ITEMS}"
                if page_where:
                    sql += " WHERE " + " AND ".join(page_where)
                sql += f" ORDER BY {order_by} LIMIT ?"
                given = [*args, *given, query.limit + 1 - len(rows)]
                rows += await con.fetch(_numbered(sql, len(args)), *given)
                if len(rows) > query.limit:
                    break
            if query.counted:
                count_where = [w for w in where if not w.startswith("(")]
                total = await con.fetchval(
                    "SELECT COALESCE(SUM(n), 0) FROM item_counts"
                    + (" WHERE " + " AND ".join(count_where) if count_where else ""),
                    *args,
                )
            else:
                sql = "SELECT COUNT(*) FROM items"
                if where:
                    sql += " WHERE " + " AND ".join(where)
                total = await con.fetchval(sql, *args)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        last = rows[-1] if more else None
        value = None
        if last is not None and query.sort[0] != "key":
            value = value_text(last["sorted"])
        return Page(
            [_stored(r) for r in rows],
            last["key"] if last is not None else None,
            int(total),
            value,
        )

    def _where(self, query: ItemQuery) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        args: list[Any] = []
        for column in ("vendor", "source", "kind", "lifecycle", "verdict"):
            value = getattr(query, column)
            if value is not None:
                args.append(value)
                where.append(f"{column} = ${len(args)}")
        if query.application is not None:
            args.append(query.application)
            where.append(f"(application_id = ${len(args)} OR application_name = ${len(args)})")
        if query.text:
            args.append(query.text.casefold())
            # With pg_trgm, its GIN index serves this; without, it is a scan.
            where.append(f"(strpos(search, ${len(args)}) > 0)")
            if self.trigram:
                args.append("%" + _like_escape(query.text.casefold()) + "%")
                where.append(f"(search LIKE ${len(args)})")
        return where, args

    async def stats(
        self, *, since: datetime, until: datetime, group_by: Sequence[str] = ("source", "kind")
    ) -> list[GroupStats]:
        unknown = [g for g in group_by if g not in STAT_GROUPS]
        if unknown:
            raise ValueError(f"group_by: expected some of {', '.join(STAT_GROUPS)}, got {unknown}")
        groups = tuple(g for g in STAT_GROUPS if g in group_by) or ("everything",)
        g = ", ".join(groups)
        chosen = ", ".join("'' AS everything" if x == "everything" else x for x in groups)
        spreads = ", ".join(
            f"COUNT({m}), percentile_cont(0.5) WITHIN GROUP (ORDER BY {m}),"
            f" percentile_cont(0.9) WITHIN GROUP (ORDER BY {m}), MAX({m})"
            for m in PHASES
        )
        sql = (
            f"WITH d AS (SELECT {chosen}, lifecycle, verdict,"
            " GREATEST(0, EXTRACT(EPOCH FROM running_at - since)::float8) AS queued,"
            " CASE WHEN running_at < finished_at"
            " THEN EXTRACT(EPOCH FROM finished_at - running_at)::float8 END AS running,"
            " GREATEST(0, EXTRACT(EPOCH FROM finished_at - since)::float8) AS total"
            " FROM items WHERE finished_at >= $1 AND finished_at < $2)"
            f" SELECT {g}, COUNT(*), COUNT(*) FILTER (WHERE lifecycle = 'failed'),"
            " COUNT(*) FILTER (WHERE lifecycle IN ('cancelled', 'expired')),"
            " COUNT(*) FILTER (WHERE verdict IN ('fail', 'error')),"
            f" {spreads} FROM d GROUP BY {g} ORDER BY {g}"
        )
        async with self._acquire() as con:
            rows = await con.fetch(sql, since, until)
        k = len(groups)
        totals = [tuple(r[: k + 4]) for r in rows]
        found = [
            (phase, *r[:k], *r[k + 4 + 4 * i : k + 8 + 4 * i])
            for r in rows
            for i, phase in enumerate(PHASES)
        ]
        return assemble_stats(groups, totals, found)

    async def activity(self, *, since: datetime, until: datetime, bucket: int) -> list[Activity]:
        async with self._acquire() as con:
            first = await _first_id_at(con, since - LOG_TIME_SLACK)
            rows = await con.fetch(
                "SELECT (floor(EXTRACT(EPOCH FROM observed_at) / $1) * $1)::bigint,"
                " after::jsonb ->> 'lifecycle', after::jsonb ->> 'verdict', COUNT(*)"
                " FROM transitions WHERE id >= $2 AND observed_at >= $3 AND observed_at < $4"
                " GROUP BY 1, 2, 3",
                bucket,
                first,
                since,
                until,
            )
        return assemble_activity([tuple(r) for r in rows])

    async def overdue(self, cutoffs: Sequence[tuple[str, str, datetime]]) -> list[Overdue]:
        out = []
        async with self._acquire() as con:
            for source, kind, cutoff in cutoffs:
                for r in await con.fetch(
                    "SELECT vendor, COUNT(*) AS n FROM items"
                    " WHERE active AND source = $1 AND since < $2 AND kind = $3 GROUP BY vendor",
                    source,
                    cutoff,
                    kind,
                ):
                    out.append(Overdue(r["vendor"], source, kind, int(r["n"])))
        return out


class PostgresSinks(SinkLedger):
    """The sinks' delivery ledger of a `PostgresStore`: the `sinks` and `sink_dead` tables,
    on connections of the store's pool (`acquire`: the store's way there)."""

    def __init__(
        self,
        acquire: Callable[[], contextlib.AbstractAsyncContextManager[Any]],
        holder: str | None = None,
    ) -> None:
        self._acquire = acquire
        #: The replica's name (`PostgresStore.holder`): a replica saves a sink's state only
        #: while it holds the sink's lease (None: one process, no leases).
        self._holder = holder

    async def log_id(self) -> str:
        async with self._acquire() as con:
            return str(await con.fetchval("SELECT id FROM log_identity"))

    async def open(self, name: str, now: datetime) -> SinkState:
        async with self._acquire() as con:
            await con.execute(
                "INSERT INTO sinks (name, position, updated_at)"
                " SELECT $1, COALESCE(MAX(id), 0), $2 FROM transitions"
                " ON CONFLICT (name) DO NOTHING",
                name,
                now,
            )
            row = await con.fetchrow(f"SELECT {_SINK} FROM sinks WHERE name = $1", name)
        return _sink(row)

    async def states(self, names: Collection[str] | None = None) -> list[SinkState]:
        async with self._acquire() as con:
            if names is None:
                rows = await con.fetch(f"SELECT {_SINK} FROM sinks ORDER BY name")
            else:
                rows = await con.fetch(
                    f"SELECT {_SINK} FROM sinks WHERE name = ANY($1::text[]) ORDER BY name",
                    list(names),
                )
        return [_sink(r) for r in rows]

    async def save(self, state: SinkState, dead: Sequence[DeadLetter] = ()) -> bool:
        async with self._acquire() as con, con.transaction():
            status = await con.execute(
                "UPDATE sinks SET position = GREATEST(position, $1), status = $2, head = $3,"
                " attempts = $4, first_attempt = $5, next_attempt = $6, last_success = $7,"
                " last_error = $8, last_error_at = $9, last_status = $10,"
                " delivered = GREATEST(delivered, $11), failures = GREATEST(failures, $12),"
                " dead = GREATEST(dead, $13), updated_at = $14"
                " WHERE name = $15 AND generation = $16"
                # A replica that lost the lease (stopped, then let go on) saves nothing: its
                # details of the sink are stale, as its dead letters may be.
                " AND ($17::text IS NULL OR EXISTS (SELECT 1 FROM leases"
                " WHERE source = 'sink:' || $15 AND holder = $17 AND expires_at > now()))",
                state.position,
                state.status.value,
                state.head,
                state.attempts,
                state.first_attempt,
                state.next_attempt,
                state.last_success,
                state.last_error,
                state.last_error_at,
                state.last_status,
                state.delivered,
                state.failures,
                state.dead,
                state.updated_at,
                state.name,
                state.generation,
                self._holder,
            )
            if status.split()[-1] == "0":
                return False
            if dead:
                await con.executemany(
                    "INSERT INTO sink_dead (sink, id, key, attempts, first_attempt,"
                    " last_attempt, error, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                    " ON CONFLICT (sink, id) DO UPDATE SET attempts = excluded.attempts,"
                    " last_attempt = excluded.last_attempt, error = excluded.error,"
                    " status = excluded.status",
                    [
                        (
                            d.sink,
                            d.id,
                            d.key,
                            d.attempts,
                            d.first_attempt,
                            d.last_attempt,
                            d.error,
                            d.status,
                        )
                        for d in dead
                    ],
                )
        return True

    async def replay(self, name: str, since: int, now: datetime) -> SinkState:
        async with self._acquire() as con, con.transaction():
            newest = await con.fetchval("SELECT COALESCE(MAX(id), 0) FROM transitions")
            check_replay(name, since, int(newest))
            row = await con.fetchrow(
                "INSERT INTO sinks (name, position, updated_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (name) DO UPDATE SET position = excluded.position,"
                " generation = sinks.generation + 1, status = 'active', head = NULL,"
                " attempts = 0, first_attempt = NULL, next_attempt = NULL,"
                f" updated_at = excluded.updated_at RETURNING {_SINK}",
                name,
                since,
                now,
            )
            await con.execute("DELETE FROM sink_dead WHERE sink = $1 AND id > $2", name, since)
        return _sink(row)

    async def dead_letters(
        self, name: str, *, after: int = 0, limit: int = 100
    ) -> list[DeadLetter]:
        async with self._acquire() as con:
            rows = await con.fetch(
                "SELECT sink, id, key, attempts, first_attempt, last_attempt, error, status"
                " FROM sink_dead WHERE sink = $1 AND id > $2 ORDER BY id LIMIT $3",
                name,
                min(after, 2**63 - 1),
                limit,
            )
        return [
            DeadLetter(
                r["sink"],
                int(r["id"]),
                r["key"],
                r["attempts"],
                _utc(r["first_attempt"]) or datetime.now(UTC),
                _utc(r["last_attempt"]) or datetime.now(UTC),
                r["error"],
                r["status"],
            )
            for r in rows
        ]


async def _listen(url: str, channel: str, *, payloads: bool = False) -> AsyncIterator[str | None]:
    """Listen on `channel` on a connection of its own, reconnecting with backoff when the
    database goes away. Yields None once listening (and again after each reconnect, and
    every two seconds without news, unless `payloads`), then each notification's payload
    (or None, unless `payloads`)."""
    import asyncpg

    delay = 0.2
    while True:
        heard: asyncio.Queue[str | None] = asyncio.Queue()
        con: Any = None
        notified, lost = _listeners(heard)
        try:
            con = await asyncpg.connect(url)

            await con.add_listener(channel, notified)
            con.add_termination_listener(lost)
            delay = 0.2
            yield None
            while True:
                try:
                    async with asyncio.timeout(2.0):
                        payload = await heard.get()
                except TimeoutError:
                    if con.is_closed():
                        raise ConnectionError("the listening connection closed") from None
                    if not payloads:
                        yield None
                    continue
                if payload == "\x00lost":
                    raise ConnectionError("the listening connection was lost")
                yield payload if payloads else None
        except asyncio.CancelledError:
            raise
        except (OSError, ConnectionError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning(
                "scanhub: listening for %s failed (%s); reconnecting in %.1fs",
                channel,
                exc,
                delay,
            )
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(5.0, delay * 2)
        finally:
            if con is not None:
                with contextlib.suppress(Exception):
                    await con.close(timeout=1)


async def _commit(con: Any, observations: Sequence[Observation]) -> tuple[list[Committed], bool]:
    """`PostgresStore.commit` within its transaction: what became of each observation, and
    whether transitions were appended. Under the append lock: the items' rows (locked), the
    rule `plan` over the batch, then one statement per table (new items, transitions from
    arrays, the items' new states from arrays) and a notification to the other replicas."""
    await con.execute("SELECT pg_advisory_xact_lock($1)", _APPEND_LOCK)
    # Each row's application name and search text: its search text is written when the
    # item's differs (`_new_states`).
    rows, searched = await _locked_rows(con, list(dict.fromkeys(ob.key for ob in observations)))
    results: list[Committed] = []
    inserted: dict[str, Observation] = {}
    # Each transition to append: (observation, item, previous: an id, or the index of
    # an earlier transition of this batch), ids handed out below, in this order.
    steps: list[tuple[Observation, Any, int | None, int | None]] = []
    last_step: dict[str, int] = {}
    # The transitions' places in `results`: (index, key, lifecycle after).
    recorded: list[tuple[int, str, Lifecycle]] = []
    # The steps whose item's last transition was pruned.
    follows_pruned: list[int] = []
    for ob in observations:
        step, after = plan(rows.get(ob.key), ob)
        if after is None or step.outcome is Outcome.STALE:
            results.append(Committed(ob.key, step.outcome))
            continue
        rows[ob.key] = after
        if step.insert:
            inserted[ob.key] = ob
        if step.record:
            earlier = last_step.get(ob.key)
            prev = after.last_transition if earlier is None else None
            if prev == PRUNED:  # it follows the state its row holds (`kept_before`)
                prev = None
                follows_pruned.append(len(steps))
            steps.append((ob, after.item, prev, earlier))
            last_step[ob.key] = len(steps) - 1
            after.changed_at = ob.observed_at
            # Made below, once the ids are handed out.
            recorded.append((len(results), ob.key, after.lifecycle))
            results.append(_RECORDED)
        else:
            results.append(Committed(ob.key, step.outcome, None, after.lifecycle))
    ids: list[int] = []
    # The JSON of the items logged, by identity: an item's current state is most often
    # the state its last transition logged, and is not encoded twice.
    encoded: dict[int, str] = {}
    if steps:
        # A range of ids for the batch, in one step: no other commit takes ids meanwhile (the
        # append lock), so the log's order is the order of commits, as before.
        last = await con.fetchval(
            "SELECT setval('transitions_id_seq', nextval('transitions_id_seq') + $1 - 1)",
            len(steps),
        )
        ids = list(range(int(last) - len(steps) + 1, int(last) + 1))
        logged = []
        for tid, (ob, item, prev, earlier) in zip(ids, steps, strict=True):
            if earlier is not None:
                prev = ids[earlier]
            text = encoded[id(item)] = item_json(item)
            logged.append((tid, ob.key, item.source, ob.observed_at, prev, text))
        for key, k in last_step.items():
            rows[key].last_transition = ids[k]
        for tid, (at, key, lifecycle) in zip(ids, recorded, strict=True):
            results[at] = Committed(key, Outcome.RECORDED, tid, lifecycle)
    if inserted:
        await con.executemany(
            "INSERT INTO items (key, seq, origin, kind, vendor, source, application_id,"
            " lifecycle, verdict, vendor_status, active, since, item)"
            " VALUES ($1, nextval('items_seq_gen'), $2, $3, $4, $5, $6, $7, $8, $9, $10,"
            " $11, '{}')",
            [
                (key, *new_item_columns(ob), since_of(ob.item, ob.observed_at))
                for key, ob in inserted.items()
                if ob.item is not None
            ],
        )
        await con.execute(
            "INSERT INTO item_changes (key) SELECT unnest($1::text[])", list(inserted)
        )
    if steps:
        await con.execute(
            "INSERT INTO transitions (id, key, source, observed_at, prev, after)"
            " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[],"
            " $4::timestamptz[], $5::bigint[], $6::text[])",
            *map(list, zip(*logged, strict=True)),
        )
        if follows_pruned:  # before the rows take their new states
            await con.execute(
                "UPDATE transitions t SET kept_before = i.item FROM items i"
                " WHERE t.id = ANY($1::bigint[]) AND i.key = t.key",
                [ids[k] for k in follows_pruned],
            )
    states, sightings = _new_states(rows, encoded, inserted, searched)
    if states:
        await con.execute(
            _UPDATE_STATES,
            *map(list, zip(*states, strict=True)),
        )
    if last_step:
        # When each item logged last changed (its own table: the items' rows stay HOT).
        await con.execute(
            "UPDATE item_changes c SET changed_at = u.at"
            " FROM unnest($1::text[], $2::timestamptz[]) AS u(key, at) WHERE c.key = u.key",
            list(last_step),
            [rows[key].changed_at for key in last_step],
        )
    if sightings:
        await con.executemany(
            "UPDATE items SET observed_at = $1, last_error = $2 WHERE key = $3",
            sightings,
        )
    if ids:
        await con.execute("SELECT pg_notify($1, $2)", CHANNEL, str(ids[-1]))
    if inserted:
        sources = sorted({ob.item.source for ob in inserted.values() if ob.item})
        await con.execute("SELECT pg_notify($1, $2)", TRACKING_CHANNEL, json.dumps(sources))
    return results, bool(ids)


#: What `results` holds of a transition until its id is handed out.
_RECORDED = Committed("", Outcome.RECORDED)


async def _locked_rows(
    con: Any, keys: list[str]
) -> tuple[dict[str, Row], dict[str, tuple[str | None, str]]]:
    """The stored rows of `keys` (what `plan` reads), locked until the transaction ends, and
    each row's application name and search text (what `_new_states` compares)."""
    rows: dict[str, Row] = {}
    searched: dict[str, tuple[str | None, str]] = {}
    for r in await con.fetch(
        "SELECT key, lifecycle, verdict, vendor_status, message, observed_at,"
        " last_transition, application_name, search FROM items WHERE key = ANY($1::text[])"
        " FOR UPDATE",
        keys,
    ):
        key, lifecycle, verdict, status, message, observed, last, name, search = r
        rows[key] = stored_row(key, lifecycle, verdict, status, message, _utc(observed), last)
        searched[key] = (name, search)
    return rows, searched


def _new_states(
    rows: dict[str, Row],
    encoded: dict[int, str],
    inserted: dict[str, Observation],
    searched: dict[str, tuple[str | None, str]],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The batch's changed rows as `_UPDATE_STATES` parameters (items whose state was
    rewritten; `encoded` holds the JSON already made for their transitions), and the
    sightings (a poll that found nothing new, or failed) as (observed_at, error, key)."""
    states: list[tuple[Any, ...]] = []
    sightings: list[tuple[Any, ...]] = []
    for key, row in rows.items():
        if not row.dirty:
            continue
        if row.item is None:
            sightings.append((row.observed_at, _error_json(row.error), key))
            continue
        item, lc = row.item, row.item.lifecycle
        known = encoded.get(id(item))
        # The name the row keeps when the vendor gives none (as its column keeps it).
        name, search = searched.get(key, (None, None))
        text = search_text(item, name, key)
        states.append(
            (
                lc.value,
                item.verdict.value,
                item.vendor_status,
                item.message,
                item.application_name or None,  # an empty name is no name: the row's stays
                not lc.is_terminal,
                row.observed_at if lc is Lifecycle.RUNNING or lc.is_terminal else None,
                row.observed_at if lc.is_terminal else None,
                row.observed_at,
                _error_json(row.error),
                row.last_transition,
                known if known is not None else item_json(item),
                raw_json(item),
                text if key in inserted or text != search else None,
                key,
            )
        )
    return states, sightings


# The items' new states, from arrays (one statement a batch: planned once, its statement-level
# triggers run once).
_UPDATE_STATES = (
    "UPDATE items AS i SET lifecycle = u.lifecycle, verdict = u.verdict,"
    " vendor_status = u.vendor_status, message = u.message,"
    " application_name = COALESCE(u.application_name, i.application_name),"
    " active = u.active,"
    # Only an item seen under way before (`i.active`: the row's old value) gets
    # a time it started running or finished: one first seen finished has none.
    " running_at = CASE WHEN i.active THEN COALESCE(i.running_at, u.running_at)"
    " ELSE i.running_at END,"
    " finished_at = CASE WHEN i.active THEN COALESCE(i.finished_at, u.finished_at)"
    " ELSE i.finished_at END,"
    " observed_at = u.observed_at, last_error = u.last_error,"
    " last_transition = u.last_transition, item = u.item, raw = u.raw,"
    " search = COALESCE(u.search, i.search)"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
    " $6::bool[], $7::timestamptz[], $8::timestamptz[],"
    " $9::timestamptz[], $10::text[], $11::bigint[], $12::text[], $13::text[],"
    " $14::text[], $15::text[]) AS u(lifecycle, verdict, vendor_status, message,"
    " application_name, active, running_at, finished_at,"
    " observed_at, last_error, last_transition, item, raw, search, key)"
    " WHERE i.key = u.key"
)


#: `key` in a page's condition and order, named as `item_changes`' (the "changed" order).
_CHANGES_KEY = re.compile(r"\bkey\b")


def _numbered(sql: str, start: int) -> str:
    """`?` marks as $n, from $start+1 on (the marks before are the filters' own $n)."""
    parts = sql.split("?")
    out = [parts[0]]
    for n, part in enumerate(parts[1:], start + 1):
        out += [f"${n}", part]
    return "".join(out)


async def _first_id_at(con: Any, at: datetime) -> int:
    """The first id of the log recorded at or after `at` (a bisection over ids: the log is in
    time order but for disorder within `LOG_TIME_SLACK`, which callers look back over, so this
    reads a few rows by id, never the log before the window)."""
    bounds = await con.fetchrow("SELECT MIN(id) AS lo, MAX(id) AS hi FROM transitions")
    if bounds["lo"] is None:
        return 0
    lo, hi = int(bounds["lo"]), int(bounds["hi"]) + 1
    while lo < hi:
        mid = (lo + hi) // 2
        found = await con.fetchrow(
            "SELECT id, observed_at FROM transitions WHERE id >= $1 ORDER BY id LIMIT 1", mid
        )
        if found is None or found["observed_at"] >= at:
            hi = mid
        else:
            lo = int(found["id"]) + 1
    return lo


async def migrate(con: Any) -> int:
    """Bring the schema to `SCHEMA_VERSION` under an advisory lock; returns the version found.
    A database from a newer scanhub is refused (`ConfigError`)."""
    async with con.transaction():
        await con.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        # Looked up before it is made: a role that may only read and write the tables (no
        # CREATE on the schema, as a hardened deployment runs it) opens a database migrated
        # already (CREATE ... IF NOT EXISTS checks the right to create first).
        if not await con.fetchval("SELECT to_regclass('scanhub_meta') IS NOT NULL"):
            await con.execute("CREATE TABLE scanhub_meta (version INTEGER NOT NULL)")
        version = await con.fetchval("SELECT version FROM scanhub_meta")
        if version is None:
            await con.execute("INSERT INTO scanhub_meta (version) VALUES (0)")
            version = 0
        found = int(version)
        if found > SCHEMA_VERSION:
            raise ConfigError(
                f"the database has schema version {found}, newer than this scanhub "
                f"({SCHEMA_VERSION}); upgrade scanhub",
                operation="open store",
            )
        for step in range(found, SCHEMA_VERSION):
            if MIGRATIONS[step]:
                await con.execute(MIGRATIONS[step])
            rewrite = _REWRITES.get(step + 1)
            if rewrite is not None:  # a step whose rows are made again in Python
                await rewrite(con)
            await con.execute("UPDATE scanhub_meta SET version = $1", step + 1)
        return found


async def _rewrite_search(con: Any, batch: int = 5000) -> None:
    """Migration 7: every item's search text made again by `search_text` with the name its row
    keeps, `batch` rows a statement in key order, under the append lock: a replica of an older
    scanhub still running commits after the migration, not between a batch's read and its
    write (its text would be overwritten with one made from the item before). A row whose item
    cannot be read keeps its text (never lost to it). One transaction, as every migration."""
    await con.execute("SELECT pg_advisory_xact_lock($1)", _APPEND_LOCK)
    after = ""
    while True:
        rows = await con.fetch(
            "SELECT key, item, application_name FROM items WHERE key > $1 ORDER BY key LIMIT $2",
            after,
            batch,
        )
        if not rows:
            return
        keys, texts = [], []
        for key, item, name in rows:
            text = stored_search_text(key, item, name)
            if text is not None:  # else the row keeps its text
                keys.append(key)
                texts.append(text)
        await con.execute(
            "UPDATE items SET search = u.search FROM unnest($1::text[], $2::text[])"
            " AS u(key, search) WHERE items.key = u.key AND items.search IS DISTINCT FROM u.search",
            keys,
            texts,
        )
        after = rows[-1][0]


#: The migrations whose rows are made again in Python, by the version they bring.
_REWRITES: dict[int, Callable[[Any], Awaitable[None]]] = {7: _rewrite_search}


async def _trigram_index(con: Any) -> bool:
    """Make text search indexed with `pg_trgm` where the extension exists or can be created
    (creating it may need more rights than scanhub's role has: then text search scans)."""
    made = await con.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')"
        " AND to_regclass('items_search') IS NOT NULL"
    )
    if made:  # (a role without the right to create them uses them)
        return True
    try:
        async with con.transaction():
            await con.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            await con.execute(
                "CREATE INDEX IF NOT EXISTS items_search ON items USING gin (search gin_trgm_ops)"
            )
    except Exception as exc:  # no extension, or no right to create it
        log.info("scanhub: text search is not indexed (pg_trgm: %s)", exc)
        return False
    return True


def _unavailable() -> tuple[type[BaseException], ...]:
    """The errors that mean "the database is away", not "the statement is wrong"."""
    import asyncpg

    return (
        OSError,
        ConnectionError,
        TimeoutError,
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.exceptions.OperatorInterventionError,
        asyncpg.exceptions.CannotConnectNowError,
    )


def _listeners(heard: asyncio.Queue[str | None]) -> tuple[Any, Any]:
    """asyncpg callbacks that put what a listening connection hears on `heard`."""

    def notified(_con: Any, _pid: int, _channel: str, payload: str) -> None:
        heard.put_nowait(payload)

    def lost(_con: Any) -> None:
        heard.put_nowait("\x00lost")

    return notified, lost


#: Columns of a sink's state, in `SinkState`'s order.
_SINK = (
    "name, position, generation, status, head, attempts, first_attempt, next_attempt,"
    " last_success, last_error, last_error_at, last_status, delivered, failures, dead,"
    " updated_at"
)


def _sink(r: Any) -> SinkState:
    return SinkState(
        r["name"],
        int(r["position"]),
        int(r["generation"]),
        SinkStatus(r["status"]),
        None if r["head"] is None else int(r["head"]),
        r["attempts"],
        _utc(r["first_attempt"]),
        _utc(r["next_attempt"]),
        _utc(r["last_success"]),
        r["last_error"],
        _utc(r["last_error_at"]),
        r["last_status"],
        int(r["delivered"]),
        int(r["failures"]),
        int(r["dead"]),
        _utc(r["updated_at"]),
    )


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _error_json(error: ItemError | None) -> str | None:
    return None if error is None else json.dumps(converter.unstructure(error))


def _stored(r: Any, raw: str | None = None) -> StoredItem:
    err = r["last_error"]
    return StoredItem(
        item_from_text(r["item"], raw),
        r["origin"],
        _utc(r["observed_at"]),
        None if err is None else converter.structure(json.loads(err), ItemError),
        _utc(r["changed_at"]),
        _utc(r["since"]),
        _utc(r["running_at"]),
        _utc(r["finished_at"]),
    )


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)

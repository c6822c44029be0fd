"""The `Store` protocol, the records it speaks in, the one rule every backend applies when it
commits what the engine saw (`plan`), and the sinks' delivery ledger every store holds
(`SinkLedger`, as `Store.sinks`).

The store is the truth. A fact exists once it is committed here: a tracked item, its current
state, a transition, a lease. Everything else reads it back: the engine's working set is a
cache of the active items it polls, and every consumer of transitions (watch, the live stream,
the JSON API, other replicas) reads the committed log, so one transition id has one body
everywhere.

One write path: `commit(observations)`. An observation is what was seen of an item at a time
(its state, or the error of a failed poll) and, for items not tracked yet, how to track them
(`origin`). In one transaction the backend reads the current state of the keys, applies `plan`
to each observation in order (the monotonic rule, change detection, stale answers), appends
a transition for every significant change, and updates the current states.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Collection, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Self

from attrs import define, evolve, field, frozen

from .._changes import Change, ItemError, is_placeholder, significant, supersedes
from .._convert import (
    compact_json,
    converter,
    item_from_dict,
    item_from_stored,
    item_to_stored,
    read_lifecycle,
    read_verdict,
    to_dict,
)
from .._model import Item, Lifecycle, Promotion, Scan, Verdict
from .._sansio import loads, mend_surrogates

log = logging.getLogger("scanhub")

#: The schema version the backends migrate to (`PRAGMA user_version` in SQLite).
SCHEMA_VERSION = 9

#: What separates the fields of an item's search text (`search_text`): a character no search
#: may hold (`ItemQuery` refuses it), so that no match runs from one field into the next.
SEARCH_SEPARATOR = "\x1f"
#: The fewest characters a text search holds: the stores find a substring through an index of
#: its three-character pieces (SQLite's FTS5 trigrams; PostgreSQL's pg_trgm, from the runs of
#: three letters or digits the search holds); a shorter one would be found only by reading every
#: item.
MIN_SEARCH = 3


@frozen
class Retention:
    """How much history to keep: transitions older than `max_age`, or beyond the newest
    `max_per_item` of an item, are pruned. None: keep (the default, forever). By age, what goes
    is the log's prefix (it is in commit order) before its first transition young enough: one
    observed earlier but committed after a younger one (a replica's clock behind) goes with
    what precedes it. The log's newest
    transition is always kept, whatever its age: the log's end, where readers resume and ids
    continue (`Store.last_id`). A transition kept reads the same after pruning as before: its
    `Change.before` stays, though the transition it followed went; and the next transition
    of an item whose last one was pruned says what the item was (not a first sighting)."""

    max_age: timedelta | None = None
    max_per_item: int | None = None

    def __attrs_post_init__(self) -> None:
        # None keeps; nothing (0, or an age of none) would prune the log's end with the rest.
        age = self.max_age
        if age is not None and not (isinstance(age, timedelta) and age > timedelta(0)):
            raise ValueError(f"Retention needs max_age > 0 (a timedelta) or None, got {age!r}")
        n = self.max_per_item
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"Retention needs max_per_item >= 1 (an int) or None, got {n!r}")

    @property
    def keeps_everything(self) -> bool:
        """True when nothing is ever pruned."""
        return self.max_age is None and self.max_per_item is None


@frozen
class StoredItem:
    """A tracked item as the store has it."""

    item: Item
    #: How it was added: "track", "config", "api", "discovery:<source>", "webhook:<source>".
    origin: str
    last_observed: datetime | None = None
    last_error: ItemError | None = None
    #: When its last transition was recorded (None: never).
    last_change: datetime | None = None
    #: Since when it is under way: the vendor's creation time, else when scanhub first saw it.
    since: datetime | None = None
    #: When scanhub first saw it running (or finished) after seeing it under way (None: not
    #: yet, or it was first seen finished).
    running_at: datetime | None = None
    #: When scanhub first saw it finished after seeing it under way (None: not finished, or
    #: first seen finished: how long it took is not known).
    finished_at: datetime | None = None

    @property
    def key(self) -> str:
        """The item's key."""
        return self.item.key

    @property
    def how(self) -> str:
        """The former name of `origin`."""
        return self.origin


@frozen
class Observation:
    """What was seen of an item at `observed_at`: its state (`item`), or why a poll failed
    (`error`), or both absent (a sighting that only says "still there"). With `origin`, an item
    not tracked yet is tracked first (tracking, discovery, webhooks); without, an observation of
    an item no longer tracked is dropped."""

    key: str
    observed_at: datetime
    item: Item | None = None
    error: ItemError | None = None
    origin: str | None = None

    @classmethod
    def of(cls, item: Item, origin: str | None = None, at: datetime | None = None) -> Observation:
        """An observation of `item` (now, unless `at`)."""
        return cls(item.key, at or datetime.now(UTC), item, None, origin)


class Outcome(StrEnum):
    """What committing an observation did."""

    #: A transition was appended (a first sighting or a significant change).
    RECORDED = "recorded"
    #: The item was tracked with no state worth recording yet (a placeholder).
    TRACKED = "tracked"
    #: Nothing worth a transition (the same state, an older one, or an error).
    UNCHANGED = "unchanged"
    #: The observation was older than what the store already had: ignored.
    STALE = "stale"
    #: The item is not tracked (any more): ignored.
    UNTRACKED = "untracked"


@frozen
class Committed:
    """The result of one observation's commit."""

    key: str
    outcome: Outcome
    #: The transition's id, when one was recorded.
    id: int | None = None
    #: The item's lifecycle after the commit (None when not tracked).
    lifecycle: Lifecycle | None = None


@frozen
class Transition:
    """One recorded change, with its id in the append-only log."""

    id: int
    change: Change

    @property
    def key(self) -> str:
        """The item's key."""
        return self.change.key


#: The orders a page of items may be read in (`ItemQuery.order`, with "-" for descending), and
#: the column of the items table each sorts by (ties are broken by key, in the same direction).
ORDERS: dict[str, str] = {
    "key": "key",
    "changed": "changed_at",
    "since": "since",
    "vendor": "vendor",
    "source": "source",
    "kind": "kind",
    "lifecycle": "lifecycle",
    "verdict": "verdict",
    "application": "application_id",
}
#: The orders whose column may be empty (an item never changed): empty values come first in
#: ascending order, last in descending order.
NULLABLE_ORDERS = frozenset({"changed"})
#: The orders that sort by a time (the cursor value is ISO 8601 text).
TIME_ORDERS = frozenset({"changed", "since"})


def _no_empty(text: str | None) -> str | None:
    return text or None


@frozen
class ItemQuery:
    """Which items to read, and which page: filters (exact, except `text`, a case-insensitive
    substring of one of the fields `search_text` covers: key, ids, application, message; at
    least `MIN_SEARCH` characters, "" being no search; it may not hold `SEARCH_SEPARATOR`,
    U+001F), an order (`order`, a
    name of `ORDERS`, "-" first for descending), keyset paging (`after`: the last key of the
    previous page, and `after_value` its value of the order's column, as `Page.next_value`
    gave it), at most `limit` rows."""

    vendor: str | None = None
    source: str | None = None
    kind: str | None = None
    lifecycle: str | None = None
    verdict: str | None = None
    application: str | None = None
    #: (An empty text is no search: None.)
    text: str | None = field(default=None, converter=_no_empty)
    after: str | None = None
    limit: int = 100
    order: str = "key"
    after_value: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.order.lstrip("-") not in ORDERS:
            raise ValueError(f"order: expected one of {', '.join(ORDERS)}, got {self.order!r}")
        if self.after_value is not None and self.order.lstrip("-") in TIME_ORDERS:
            parse_time(self.after_value)  # ValueError when it is not a time
        if self.text is not None and SEARCH_SEPARATOR in self.text:
            raise ValueError("text: must not contain U+001F (it separates the searched fields)")
        if self.text is not None and len(self.text) < MIN_SEARCH:
            raise ValueError(
                f"text: at least {MIN_SEARCH} characters (a search is read from an index of"
                f" {MIN_SEARCH}-character pieces; None: no search), got {len(self.text)}"
            )
        if self.limit < 1:
            raise ValueError(f"limit: expected at least 1, got {self.limit!r}")

    @property
    def sort(self) -> tuple[str, bool]:
        """The order's name, and whether it is descending."""
        return self.order.lstrip("-"), self.order.startswith("-")

    @property
    def counted(self) -> bool:
        """True when the total is a sum of the kept counts (no application or text filter)."""
        return self.application is None and self.text is None


@frozen
class Page:
    """A page of items (in the query's order), the key to continue after (None: the last page)
    with its value of the order's column (`next_value`, None when empty or ordered by key),
    and how many items the filters match in all."""

    items: list[StoredItem]
    next_after: str | None
    total: int
    next_value: str | None = None


@frozen
class Count:
    """How many tracked items have these labels (kept up to date on every commit)."""

    vendor: str
    source: str
    kind: str
    lifecycle: str
    verdict: str
    n: int


@frozen
class Oldest:
    """The oldest unfinished item of a source."""

    source: str
    key: str
    since: datetime


class SinkStatus(StrEnum):
    """Where a sink stands."""

    #: Delivering (or caught up).
    ACTIVE = "active"
    #: The delivery at its head failed and waits for its next attempt.
    RETRYING = "retrying"
    #: The receiver answered 410 Gone: nothing is sent until a replay.
    DISABLED = "disabled"


@frozen
class SinkState:
    """A sink's state in the store: its cursor in the log and how its deliveries go. Every
    replica reads it; the replica holding the sink's lease writes it."""

    name: str
    #: The id of the newest transition handled (delivered, filtered out, or dead-lettered).
    position: int
    #: Bumped by each replay: a deliverer whose generation is older stops and reloads.
    generation: int = 0
    status: SinkStatus = SinkStatus.ACTIVE
    #: The transition under retry (or where a 410 stopped the sink).
    head: int | None = None
    #: Attempts made of `head`, when the first was made, when the next is due.
    attempts: int = 0
    first_attempt: datetime | None = None
    next_attempt: datetime | None = None
    last_success: datetime | None = None
    #: The last failed attempt: what went wrong (never a secret), when, the answer's status.
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_status: int | None = None
    #: Totals since the sink was created: events delivered, failed attempts, dead letters.
    delivered: int = 0
    failures: int = 0
    dead: int = 0
    updated_at: datetime | None = None


@frozen
class DeadLetter:
    """A delivery given up on (its attempts or its age ran out, or the receiver refused it
    for good): listed, and sent again by a replay from its id."""

    sink: str
    #: The transition's id (the event's `id`; its `webhook-id` is `<log>-<id>`).
    id: int
    key: str
    attempts: int
    first_attempt: datetime
    last_attempt: datetime
    #: Why (never a secret), and the last answer's status (None: no answer).
    error: str
    status: int | None = None


# --- time in state -----------------------------------------------------------------------------

#: What stats may be grouped by.
STAT_GROUPS = ("vendor", "source", "kind")
#: The phases whose durations are kept: queued (since -> running), running (running ->
#: finished), total (since -> finished).
PHASES = ("queued", "running", "total")
#: The outcomes transitions are counted by (`outcome_of`).
OUTCOMES = ("queued", "running", "succeeded", "blocked", "failed", "cancelled", "unknown")


@frozen
class Spread:
    """How long one phase took over a group of finished items (seconds, to the millisecond):
    how many had it, the median and 90th percentile (linearly interpolated, as PostgreSQL's
    `percentile_cont`), and the longest."""

    n: int = 0
    p50: float | None = None
    p90: float | None = None
    max: float | None = None


@frozen
class GroupStats:
    """The items of one group (its labels; None for what it is not grouped by) that finished
    in a window, as scanhub saw them finish: how many, how many failed, were cancelled or
    expired, or got a blocking verdict, and how long they were queued, running and under way
    in all (`queued`, `running`, `total`)."""

    vendor: str | None
    source: str | None
    kind: str | None
    finished: int
    failed: int
    cancelled: int
    blocked: int
    queued: Spread
    running: Spread
    total: Spread

    @property
    def failure_rate(self) -> float:
        """Failed / finished (0 when none finished)."""
        return self.failed / self.finished if self.finished else 0.0

    @property
    def blocked_rate(self) -> float:
        """Finished with a blocking verdict (fail, error) / finished."""
        return self.blocked / self.finished if self.finished else 0.0


@frozen
class Activity:
    """How many transitions reached `outcome` in the bucket starting at `start`."""

    start: datetime
    outcome: str
    n: int


@frozen
class Overdue:
    """How many unfinished items of a source and kind have been under way since before a
    cutoff (the stuck ones)."""

    vendor: str
    source: str
    kind: str
    n: int


def outcome_of(lifecycle: str, verdict: str) -> str:
    """A transition's outcome, as the activity chart stacks it: the lifecycle reached, except
    that a success with a blocking verdict (fail, error) is `blocked`, and an expired item
    counts as `cancelled`."""
    if lifecycle == "succeeded" and verdict in ("fail", "error"):
        return "blocked"
    if lifecycle == "expired":
        return "cancelled"
    return lifecycle if lifecycle in OUTCOMES else "unknown"


def percentile(values: Sequence[float], p: float) -> float | None:
    """The `p` percentile of sorted `values`, linearly interpolated (PostgreSQL's
    `percentile_cont`, which the SQL backends compute the same way)."""
    if not values:
        return None
    h = p * (len(values) - 1)
    lo = int(h)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (h - lo)


def spread(values: Sequence[float]) -> Spread:
    """A `Spread` of durations (any order)."""
    ordered = sorted(values)
    if not ordered:
        return Spread()
    return Spread(
        len(ordered),
        ms(percentile(ordered, 0.5)),
        ms(percentile(ordered, 0.9)),
        ms(ordered[-1]),
    )


def ms(value: float | None) -> float | None:
    """Seconds to the millisecond (every backend rounds the same way)."""
    return None if value is None else round(value, 3)


def phases(
    since: datetime | None,
    running_at: datetime | None,
    finished_at: datetime | None,
    now: datetime | None = None,
) -> tuple[float | None, float | None, float | None]:
    """(queued, running, total) seconds of an item from its kept times: queued from `since`
    until it was seen running (or finished, when never seen running), running from then until
    it finished, total from `since` until it finished. With `now`, an unfinished item's
    phases run until now; without, they are None. None where a phase is not known (never
    seen running; first seen finished)."""
    if since is None:
        return None, None, None
    end = finished_at if finished_at is not None else now
    # Seen running: first seen at or past running before it finished (the same time means
    # the first look past queued found it finished).
    ran = running_at is not None and (finished_at is None or running_at < finished_at)
    queue_end = running_at if running_at is not None else end
    queued = None if queue_end is None else _seconds(queue_end - since)
    running = _seconds(end - running_at) if ran and end is not None and running_at else None
    total = None if end is None else _seconds(end - since)
    return queued, running, total


def _seconds(delta: timedelta) -> float:
    return max(0.0, delta.total_seconds())


def assemble_stats(
    groups: Sequence[str], totals: Sequence[Sequence[Any]], spreads: Sequence[Sequence[Any]]
) -> list[GroupStats]:
    """`GroupStats` from a SQL backend's rows: per group (its labels in `groups` order, then
    finished, failed, cancelled, blocked), and per phase and group (the phase, its labels,
    then n, p50, p90, max)."""
    k = len(groups)
    found: dict[tuple[Any, ...], Spread] = {}
    for row in spreads:
        n, p50, p90, longest = row[1 + k :]
        found[(row[0], *row[1 : 1 + k])] = Spread(
            int(n), ms(_float(p50)), ms(_float(p90)), ms(_float(longest))
        )
    out = []
    for row in totals:
        labels = tuple(row[:k])
        named = dict(zip(groups, labels, strict=True))
        finished, failed, cancelled, blocked = (int(x or 0) for x in row[k:])
        out.append(
            GroupStats(
                named.get("vendor"),
                named.get("source"),
                named.get("kind"),
                finished,
                failed,
                cancelled,
                blocked,
                *(found.get((phase, *labels), Spread()) for phase in PHASES),
            )
        )
    return out


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def assemble_activity(rows: Sequence[Sequence[Any]]) -> list[Activity]:
    """`Activity` from a SQL backend's rows (bucket start in epoch seconds, lifecycle,
    verdict, count), oldest first, outcomes in `OUTCOMES` order."""
    found: dict[tuple[int, str], int] = {}
    for start, lifecycle, verdict, n in rows:
        at = (int(start), outcome_of(str(lifecycle), str(verdict)))
        found[at] = found.get(at, 0) + int(n)
    rank = {o: i for i, o in enumerate(OUTCOMES)}
    return [
        Activity(datetime.fromtimestamp(start, UTC), outcome, n)
        for (start, outcome), n in sorted(found.items(), key=lambda x: (x[0][0], rank[x[0][1]]))
    ]


def check_limit(limit: int | None) -> None:
    """`Store.transitions`' `limit`: None (no limit) or 0 and more (`ValueError` otherwise), the
    same for every backend."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit: expected None or at least 0, got {limit!r}")


def parse_time(text: str) -> datetime:
    """An ISO 8601 time with a zone (as `time_text` writes it); ValueError if it is not one."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r}: a time without a zone")
    return value.astimezone(UTC)


def time_text(value: datetime) -> str:
    """A time as cursors carry it: ISO 8601 in UTC with microseconds."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def page_parts(query: ItemQuery, time_value: Any = time_text) -> list[tuple[str, list[Any], str]]:
    """How a SQL backend reads a page in the query's order: parts read one after the other
    until the page is full, each (condition or "", its arguments, ORDER BY), with `?` marks.
    An order on a column that may be empty reads the filled and the empty rows apart (each
    part an index range); the cursor continues the part it is in. `time_value` turns a
    time into the backend's value."""
    name, desc = query.sort
    column = ORDERS[name]
    op, way = ("<", "DESC") if desc else (">", "ASC")
    after, value = query.after, query.after_value
    if name == "key":
        if after is None:
            return [("", [], f"key {way}")]
        return [(f"key {op} ?", [after], f"key {way}")]
    given: Any = value
    if value is not None and name in TIME_ORDERS:
        given = time_value(parse_time(value))
    by_value = f"{column} {way}, key {way}"
    if name not in NULLABLE_ORDERS:
        if after is None:
            return [("", [], by_value)]
        if value is None:
            raise ValueError(f"a cursor of the {name} order carries a value")
        return [(f"({column}, key) {op} (?, ?)", [given, after], by_value)]
    filled: tuple[str, list[Any], str] = (f"{column} IS NOT NULL", [], by_value)
    empty: tuple[str, list[Any], str] = (f"{column} IS NULL", [], f"key {way}")
    # Ascending: the empty ones first; descending: last.
    parts = [filled, empty] if desc else [empty, filled]
    if after is None:
        return parts
    if value is None:  # in the empty part
        cont = (f"{column} IS NULL AND key {op} ?", [after], f"key {way}")
        return [cont] if desc else [cont, filled]
    cont = (f"{column} IS NOT NULL AND ({column}, key) {op} (?, ?)", [given, after], by_value)
    return [cont, empty] if desc else [cont]


def sort_key(query: ItemQuery, stored: StoredItem) -> tuple[bool, Any, str]:
    """An item's place in the query's order, for a backend that sorts in memory: the tuple
    sorts ascending as the SQL backends read ascending (reverse it for descending)."""
    name = query.sort[0]
    value: Any
    if name == "key":
        value = None
    elif name == "changed":
        value = stored.last_change
    elif name == "since":
        value = stored.since
    elif name == "application":
        value = stored.item.application_id
    elif name in ("lifecycle", "verdict"):
        value = getattr(stored.item, name).value
    else:
        value = str(getattr(stored.item, name))
    return (value is not None, value if value is not None else "", stored.key)


def cursor_key(query: ItemQuery) -> tuple[bool, Any, str] | None:
    """The sort key of the query's cursor (None on the first page)."""
    if query.after is None:
        return None
    name = query.sort[0]
    value: Any = query.after_value
    if name == "key":
        value = None
    elif value is not None and name in TIME_ORDERS:
        value = parse_time(value)
    elif value is None and name not in NULLABLE_ORDERS:
        raise ValueError(f"a cursor of the {name} order carries a value")
    return (value is not None, value if value is not None else "", query.after)


def value_text(value: Any) -> str | None:
    """A value of an order's column as cursors carry it."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return time_text(value)
    return str(value)


# --- the commit rule ------------------------------------------------------------------------


@define
class Row:
    """What the commit rule reads of an item's current state (a backend fills it from its
    row), and what it changes."""

    key: str
    lifecycle: Lifecycle
    verdict: Verdict
    vendor_status: str
    message: str | None
    observed_at: datetime | None
    #: The id of the item's last transition; None: it has none (a placeholder); `PRUNED`:
    #: pruned, so its next transition keeps the item's stored state as what it followed.
    last_transition: int | None
    #: Set by `plan` when the item's stored state must be rewritten.
    item: Item | None = None
    error: ItemError | None = None
    dirty: bool = False
    #: Set by the backend when it appended a transition for the item.
    changed_at: datetime | None = None


#: An item's `last_transition` once retention pruned it (no transition has id 0): the item's
#: next transition keeps the item's stored state as the one it followed (`kept_before`), as
#: a transition whose previous one was pruned does, so that its event says what the item was.
PRUNED = 0


@frozen
class Step:
    """What one observation does to the store: track a new item (`insert`), append a
    transition (`record`), rewrite the current state or error (`update`), or nothing."""

    outcome: Outcome
    insert: bool = False
    record: bool = False


#: How far the log's order may stray from time order and time windows over the log (`activity`)
#: still be exact. Replicas commit to one log with their own clocks, and a backlog held through
#: a database outage is committed late, so a transition can follow one observed later than
#: itself; a window's first transition is looked for this much before the window's start
#: (the log has no time index: it would cost every commit an index update).
LOG_TIME_SLACK = timedelta(minutes=15)


def stored_row(
    key: str,
    lifecycle: str,
    verdict: str,
    vendor_status: str,
    message: str | None,
    observed_at: datetime | None,
    last_transition: int | None,
) -> Row:
    """A `Row` from the stored text of an item's lifecycle and verdict (read as the stored
    items' are, `read_lifecycle`: a lookup, an enum's call costs several times more; a value
    this version does not know is the enum's own error)."""
    return Row(
        key,
        read_lifecycle(lifecycle),
        read_verdict(verdict),
        vendor_status,
        message,
        observed_at,
        last_transition,
    )


# The few steps there are, made once (`plan` runs for every observation).
_UNTRACKED = Step(Outcome.UNTRACKED)
_TRACKED = Step(Outcome.TRACKED, insert=True)
_FIRST = Step(Outcome.RECORDED, insert=True, record=True)
_STALE = Step(Outcome.STALE)
_UNCHANGED = Step(Outcome.UNCHANGED)
_RECORDED = Step(Outcome.RECORDED, record=True)


def plan(row: Row | None, ob: Observation) -> tuple[Step, Row | None]:
    """The one rule of every backend: what committing `ob` does, given the current `row` (None:
    not tracked). Returns the step and the row as it stands afterwards (changed in place, or
    new for an insert). Pure; the backend applies the step. Times are compared as instants:
    an observation's time in another zone is taken in UTC (two times of one zone compare by
    their wall clocks, so a DST fold's later hour would read as earlier)."""
    item = ob.item
    at = ob.observed_at
    if at.tzinfo is not UTC and at.tzinfo is not None:
        at = at.astimezone(UTC)
    if row is None:
        if ob.origin is None or item is None:
            return _UNTRACKED, None
        new = Row(
            ob.key,
            item.lifecycle,
            item.verdict,
            item.vendor_status,
            item.message,
            at,
            None,
            item,
            ob.error,
            True,
        )
        if is_placeholder(item):
            return _TRACKED, new
        return _FIRST, new
    if row.observed_at is not None and at < row.observed_at:
        return _STALE, row
    row.observed_at = at
    row.dirty = True
    if item is None:
        row.error = ob.error
        return _UNCHANGED, row
    row.error = None
    if not supersedes(row, item):
        return _UNCHANGED, row
    changed = significant(row, item)
    row.lifecycle, row.verdict = item.lifecycle, item.verdict
    row.vendor_status, row.message = item.vendor_status, item.message
    row.item = item
    return _RECORDED if changed else _UNCHANGED, row


# --- how items are kept -----------------------------------------------------------------------


def unstorable(ob: Observation) -> str | None:
    """Why no store can write `ob`, whatever the database's state (None: any can). What every
    backend writes of it is encoded here as they encode it: the item as stored, its vendor
    payload, its search text, its error, its key and origin, as UTF-8. A lone surrogate of a
    Python string (no character; `loads` mends the vendors' ones) fails this, and so does a
    payload JSON cannot write, and a NUL character (valid JSON, `\\u0000`: PostgreSQL's text
    and jsonb take none)."""
    try:
        texts = [ob.key, ob.origin or ""]
        if ob.item is not None:
            texts += [item_json(ob.item), raw_json(ob.item) or "", search_text(ob.item)]
        if ob.error is not None:
            texts.append(compact_json(converter.unstructure(ob.error)).decode())
        for text in texts:
            text.encode()
            if "\x00" in text or "\\u0000" in text:
                return "ValueError: a NUL character, which PostgreSQL does not store"
    except Exception as exc:  # what the encoding raises is the reason, whatever it is
        return f"{type(exc).__name__}: {exc}"
    return None


def mended(ob: Observation) -> Observation | None:
    """`ob` as a store can write it (`unstorable` is None), or None: its strings' lone
    surrogates and NUL characters as U+FFFD; failing that, only why the item could not be
    kept (its last poll's error); failing that (the key itself), nothing."""
    item: Item | None = None
    if ob.item is not None:
        try:
            item = item_from_dict(_mend_text(to_dict(ob.item)))
        except Exception:
            item = None
    if ob.item is None or (item is not None and item.key == ob.key):
        again = evolve(ob, item=item, error=_mended_error(ob.error))
        if unstorable(again) is None:
            return again
    why = _mend_text(unstorable(ob) or "")
    error = ItemError(
        "PayloadError",
        f"scanhub cannot store what was observed ({why})",
        False,
        ob.observed_at,
    )
    sighting = Observation(ob.key, ob.observed_at, None, error)
    return sighting if unstorable(sighting) is None else None


def _mended_error(error: ItemError | None) -> ItemError | None:
    if error is None:
        return None
    return evolve(error, type=_mend_text(error.type), message=_mend_text(error.message))


def _mend_text(value: Any) -> Any:
    """`mend_surrogates`, and NUL characters as U+FFFD too (in one walk)."""
    if isinstance(value, str):
        return mend_surrogates(value).replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_mend_text(v) for v in value]
    if isinstance(value, dict):
        return {_mend_text(k): _mend_text(v) for k, v in value.items()}
    return value


def item_json(item: Item) -> str:
    """An item as a store keeps it: compact JSON without the vendor payload (kept apart) and
    without empty fields."""
    return compact_json(item_to_stored(item)).decode()


def raw_json(item: Item) -> str | None:
    """The vendor payload as JSON (None when there is none), written as the service writes its
    answers (`compact_json`: orjson when installed, 10x the stdlib on a vendor's answer): what
    it reads back is what the API would have shown of it."""
    if item.raw is None:
        return None
    return compact_json(item.raw).decode()


def item_from_json(data: dict[str, Any], raw: Any = None) -> Item:
    """The inverse of `item_json` (given the decoded JSON), with the vendor payload."""
    return item_from_stored(data, raw)


def item_from_text(item: str, raw: str | None = None) -> Item:
    """The inverse of `item_json` and `raw_json`: decoded through orjson when it is installed
    (`scanhub.sansio.loads`, which leaves to the stdlib what orjson would read differently).
    Without a vendor payload the item comes from `_item_of_text`'s memo."""
    if raw is None:
        return _item_of_text(item)
    return item_from_stored(loads(item.encode()), loads(raw.encode()))


@functools.lru_cache(maxsize=4096)
def _item_of_text(text: str) -> Item:
    """The item a stored text holds, remembered by the text itself: the same text is the same
    item (items are frozen, so one object serves every reader), and a changed item is another
    text, so nothing here can be stale. Pages that readers come back to (a dashboard's first
    pages) are decoded once; bounded, least recently used out first."""
    return item_from_stored(loads(text.encode()), None)


def search_text(item: Item, application_name: str | None = None, key: str | None = None) -> str:
    """What text search (`ItemQuery.text`) matches: key, id, application id and name, message,
    a promotion's version and stages, a scan's type, each apart (`SEARCH_SEPARATOR`). Not the
    vendor status: it changes with nearly every transition, and re-indexing the text each time
    would cost every write (filter by `lifecycle` instead). `application_name`: the name when
    the item gives none (a store's row keeps the last name a vendor gave, and so does its
    search text). `key`: the item's key when the caller has it (a new item object computes its
    own once, a few microseconds: a store's commit has it from its row)."""
    parts = [
        key or item.key,
        item.id,
        item.application_id,
        item.application_name or application_name,
        item.message,
    ]
    for attr in _SEARCHED.get(type(item), _SEARCHED_ANY):
        value = getattr(item, attr, None)
        if isinstance(value, str):
            parts.append(value)
    return SEARCH_SEPARATOR.join(filter(None, parts)).casefold()


def stored_search_text(key: str, item: str, name: str | None) -> str | None:
    """Migration 7's text of a stored row: `search_text` of its item (stored JSON) with the
    name its row keeps; None (logged, naming the key) when the item cannot be read, and the
    row keeps its text: a row is never lost to its search text."""
    try:
        return search_text(item_from_text(item), name)
    except Exception:  # whatever a damaged row raises, the migration goes on
        log.warning("scanhub: %s: search text not rewritten (its item cannot be read)", key)
        return None


#: The fields `search_text` reads besides those of every item, in its order: a promotion's
#: version and stages, a scan's type (by class: asking an item for a field its class lacks
#: costs an exception each time, in every commit).
_SEARCHED_ANY = ("version", "target_stage", "source_stage", "scan_type")
_SEARCHED: dict[type, tuple[str, ...]] = {
    Promotion: ("version", "target_stage", "source_stage"),
    Scan: ("scan_type",),
}


def since_of(item: Item, observed_at: datetime) -> datetime:
    """Since when an item is under way (for "oldest unfinished"): the vendor's creation time,
    else when scanhub first saw it."""
    return item.created_at or observed_at


def new_item_columns(ob: Observation) -> tuple[Any, ...]:
    """A newly tracked item's columns, as both SQL stores insert them: origin, kind, vendor,
    source, application id, lifecycle, verdict, vendor status, whether it is under way."""
    item = ob.item
    assert item is not None
    return (
        ob.origin or "track",
        item.kind,
        item.vendor,
        item.source,
        item.application_id,
        item.lifecycle.value,
        item.verdict.value,
        item.vendor_status,
        not item.lifecycle.is_terminal,
    )


class Appended:
    """Wakes every `follow` of a store in this process when a commit appended to the log: an
    Event per follower, made in the follower's own event loop, so that one store object serves
    one loop after another (`asyncio.run` twice; an Event made once binds to the first loop
    that waits on it)."""

    def __init__(self) -> None:
        self._events: set[asyncio.Event] = set()

    def set(self) -> None:
        """A commit appended to the log: wake every follower."""
        for event in self._events:
            event.set()

    @contextlib.contextmanager
    def waiter(self) -> Iterator[asyncio.Event]:
        """An Event of the running loop that `set` sets, while the block runs."""
        event = asyncio.Event()
        self._events.add(event)
        try:
            yield event
        finally:
            self._events.discard(event)


class Store(abc.ABC):
    """Where the engine keeps what it tracks and what happened (see the module docstring).
    Every method is a coroutine; a backend serializes its own writes."""

    retention: Retention
    #: True when several processes share the store (leases decide who polls which source; the
    #: log carries every process's transitions; the tracked set is told of between them).
    shared: bool = False
    #: The webhook sinks' delivery ledger: each sink's cursor in the log, retry state and dead
    #: letters, kept in this store (set by each backend).
    sinks: SinkLedger

    def __init__(self) -> None:
        # Wakes `follow` in this process when a commit appended to the log.
        self._appended = Appended()

    # --- lifecycle ------------------------------------------------------------------------

    @abc.abstractmethod
    async def open(self) -> None:
        """Open (and migrate) the store."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close it."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- writes ---------------------------------------------------------------------------

    @abc.abstractmethod
    async def commit(self, observations: Sequence[Observation]) -> list[Committed]:
        """Apply `plan` to each observation in order, in one transaction; returns what each
        did. A consumer may see the transitions once this returns."""

    async def track(
        self, entries: Sequence[tuple[Item, str]], now: datetime | None = None
    ) -> list[Committed]:
        """Track items (item, origin); a key already tracked keeps its state, unless the item
        moves it forward. A first state that is not a placeholder is recorded (history)."""
        at = now or datetime.now(UTC)
        return await self.commit([Observation(i.key, at, i, None, how) for i, how in entries])

    @abc.abstractmethod
    async def untrack(self, keys: Sequence[str]) -> list[str]:
        """Remove keys from the tracked set (their history stays); returns those removed."""

    @abc.abstractmethod
    async def prune(self, now: datetime) -> int:
        """Apply the retention policy; returns how many transitions were removed."""

    # --- reads ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def get(self, key: str) -> StoredItem | None:
        """One tracked item, with its vendor payload."""

    @abc.abstractmethod
    async def query(self, query: ItemQuery) -> Page:
        """A page of tracked items (without their vendor payloads), ordered by key."""

    @abc.abstractmethod
    async def active(self, sources: Collection[str] | None = None) -> list[StoredItem]:
        """Tracked items not finished yet (of these sources), in the order first tracked: what
        an engine polls. Costs what is under way, not what is history."""

    async def tracked(self) -> list[StoredItem]:
        """Every tracked item with its current state, in the order first tracked (for commands
        that show everything; a service pages with `query`)."""
        return (await self.tracked_at())[0]

    @abc.abstractmethod
    async def tracked_at(self, keys: Collection[str] | None = None) -> tuple[list[StoredItem], int]:
        """Every tracked item (or those of `keys`), with its vendor payload, in the order first
        tracked, and the id of the newest transition at that same moment: a reader that
        starts from both sees each transition exactly once."""

    @abc.abstractmethod
    async def counts(self) -> list[Count]:
        """Tracked items by vendor, source, kind, lifecycle and verdict."""

    @abc.abstractmethod
    async def oldest_active(self) -> list[Oldest]:
        """Per source, its oldest unfinished item."""

    @abc.abstractmethod
    async def stats(
        self, *, since: datetime, until: datetime, group_by: Sequence[str] = ("source", "kind")
    ) -> list[GroupStats]:
        """The items that finished in [since, until), as scanhub saw them finish (an item first
        seen finished is not counted: how long it took is not known), grouped by the labels of
        `group_by` (a subset of `STAT_GROUPS`; none: one group of everything), ordered by
        them. Computed by the store over the finished items of the window (an index on the
        finish time), never by reading the history."""

    @abc.abstractmethod
    async def activity(self, *, since: datetime, until: datetime, bucket: int) -> list[Activity]:
        """Transitions recorded in [since, until), counted per `bucket` seconds (buckets start
        at whole multiples of it since the epoch) and per outcome (`outcome_of`), oldest
        first. Reads the log from the first id of the window on (the log is in time order)."""

    @abc.abstractmethod
    async def overdue(self, cutoffs: Sequence[tuple[str, str, datetime]]) -> list[Overdue]:
        """For each (source, kind, cutoff): how many of its unfinished items have been under way
        since before the cutoff (an index on the active items by source and start), per vendor.
        Each (source, kind) is given once. Only counts above zero are returned."""

    @abc.abstractmethod
    async def transitions(
        self, *, since: int = 0, key: str | None = None, limit: int | None = None
    ) -> list[Transition]:
        """Recorded transitions with id > `since` (of one item if `key`), oldest first, at most
        `limit` (None: all; a negative one is a `ValueError`). A change's `before` is the item's
        state its previous transition left, kept when that transition is pruned (None for a
        first sighting, and for a transition whose previous one a scanhub before schema 9
        pruned)."""

    @abc.abstractmethod
    async def last_id(self) -> int:
        """The id of the newest transition (0 when there is none): the largest ever handed
        out, as pruning keeps the newest (`Retention`)."""

    async def follow(self, since: int) -> AsyncIterator[Change]:
        """Every transition after `since`, in id order, as it is committed. This default wakes
        on this process's commits (and looks every second); a shared store is told of every
        process's commits."""
        with self._appended.waiter() as appended:
            while True:
                appended.clear()
                found = await self.transitions(since=since, limit=1000)
                for t in found:
                    since = t.id
                    yield t.change
                if len(found) < 1000:
                    try:
                        async with asyncio.timeout(1.0):
                            await appended.wait()
                    except TimeoutError:
                        pass

    # --- several processes ----------------------------------------------------------------

    async def lease(self, sources: Sequence[str], ttl: float) -> set[str]:
        """Take or renew the leases of `sources` for `ttl` seconds; returns those held. A store
        one process owns holds them all."""
        return set(sources)

    async def release_leases(self) -> None:
        """Give up this process's leases (nothing to give up for a store one process owns)."""
        return

    async def tracking_changes(self) -> AsyncIterator[frozenset[str]]:
        """The sources whose tracked set another process changed, as it happens (a shared
        store); a store one process owns has nothing to tell and never yields."""
        await asyncio.Event().wait()
        yield frozenset()  # pragma: no cover - never reached


class ReplayPastEnd(ValueError):
    """A sink replay asked to start after the log's newest transition (`newest`), or before
    its first possible id."""

    def __init__(self, name: str, since: int, newest: int) -> None:
        self.name, self.since, self.newest = name, since, newest
        super().__init__(
            f"sink {name!r}: cannot replay after transition {since}: the log's newest"
            f" transition is {newest} (replay after 0 to {newest})"
        )


def check_replay(name: str, since: int, newest: int) -> None:
    """Refuse a replay cursor no transition can follow (every backend's `replay` calls this
    with the log's newest id, read in its own transaction)."""
    if not 0 <= since <= newest:
        raise ReplayPastEnd(name, since, newest)


class SinkLedger(abc.ABC):
    """The webhook sinks' delivery ledger, a part of every store (`Store.sinks`): each sink is
    a reader of the log with its own cursor, retry state and dead letters, kept beside the log
    (in the same database, written through the store's own connection). Every replica reads
    it; the replica holding a sink's lease writes it, fenced by the sink's generation."""

    @abc.abstractmethod
    async def log_id(self) -> str:
        """The identity of the log the sinks read, made with it (16 hex digits): a delivery
        names its transition by it and the transition's id (`webhook-id`), so that a receiver
        fed by two services, or by a state file replaced, never takes one transition for
        another. Every replica of a shared store reads the same."""

    @abc.abstractmethod
    async def open(self, name: str, now: datetime) -> SinkState:
        """The state of sink `name`; a sink seen for the first time starts at the end of the
        log (it delivers what is committed from then on; a replay sends older events)."""

    @abc.abstractmethod
    async def states(self, names: Collection[str] | None = None) -> list[SinkState]:
        """The states of these sinks (every sink the store knows when None), by name."""

    @abc.abstractmethod
    async def save(self, state: SinkState, dead: Sequence[DeadLetter] = ()) -> bool:
        """Write a sink's state and record its dead letters, in one transaction, unless a
        replay changed its generation since it was read, or (a replica of a shared store) the
        sink's lease is no longer this replica's: then nothing is written and this returns
        False. The cursor and the totals never move backwards within a generation, so a
        replica that lost the sink's lease mid-delivery cannot undo its successor's
        progress."""

    @abc.abstractmethod
    async def replay(self, name: str, since: int, now: datetime) -> SinkState:
        """Send again everything after id `since`: the cursor moves to it, the generation is
        bumped (the deliverer reloads), a disabled sink is active again, and the dead letters
        after it are cleared (they are attempted again).

        Raises `ReplayPastEnd` (a ValueError) when `since` is negative or past the log's
        newest transition, read in the same transaction: such a cursor would skip every
        transition until ids reach it, the sink saying it is active with no lag."""

    @abc.abstractmethod
    async def dead_letters(
        self, name: str, *, after: int = 0, limit: int = 100
    ) -> list[DeadLetter]:
        """A sink's dead letters with id > `after`, oldest first."""


def change_of(
    tid: int, observed_at: datetime, after: dict[str, Any], before: dict[str, Any] | None
) -> Change:
    """A logged transition as a `Change` (every backend decodes the log with this)."""
    return Change(
        None if before is None else item_from_json(before),
        item_from_json(after),
        observed_at,
        tid,
    )

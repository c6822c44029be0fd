"""`MemoryStore`: the library default. Everything in this process's memory; gone at exit.

Reads walk what is held (a one-off watch holds little); a service that must not grow with
history keeps its state in SQLite or PostgreSQL, whose reads are indexed queries.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from attrs import define, evolve

from .._changes import Change, ItemError
from .._model import Item, Lifecycle
from ._base import (
    PRUNED,
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
    check_limit,
    check_replay,
    cursor_key,
    phases,
    plan,
    search_text,
    since_of,
    sort_key,
    spread,
    value_text,
)


@define
class _Held:
    item: Item
    origin: str
    seq: int
    since: datetime
    last_observed: datetime | None = None
    last_error: ItemError | None = None
    last_change: datetime | None = None
    last_transition: int | None = None
    running_at: datetime | None = None
    finished_at: datetime | None = None
    #: The last application name a vendor gave (an answer without one keeps it, as the SQL
    #: stores' rows do): the `application` filter and text search read it.
    name: str | None = None

    def stored(self) -> StoredItem:
        return StoredItem(
            self.item,
            self.origin,
            self.last_observed,
            self.last_error,
            self.last_change,
            self.since,
            self.running_at,
            self.finished_at,
        )


class MemoryStore(Store):
    """A `Store` in memory (tests, one-off watches, the library default)."""

    def __init__(self, *, retention: Retention | None = None) -> None:
        super().__init__()
        self.retention = retention or Retention()
        self._items: dict[str, _Held] = {}
        self._log: list[Transition] = []
        self._ids: list[int] = []  # the log's ids, for bisecting
        # The log by observed time (ties in id order), for `activity`'s windows: the log is in
        # id order, and a commit may carry an earlier time than the one before it.
        self._by_time: list[Transition] = []
        self._next = 1
        self._seq = 0
        self.sinks = MemorySinks(self)

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    # --- writes ---------------------------------------------------------------------------

    async def commit(self, observations: Sequence[Observation]) -> list[Committed]:
        out = []
        for ob in observations:
            held = self._items.get(ob.key)
            row = None
            if held is not None:
                row = Row(
                    ob.key,
                    held.item.lifecycle,
                    held.item.verdict,
                    held.item.vendor_status,
                    held.item.message,
                    held.last_observed,
                    held.last_transition,
                )
            step, after = plan(row, ob)
            if after is None or step.outcome is Outcome.STALE:
                out.append(Committed(ob.key, step.outcome))
                continue
            # Under way before this observation (as the SQL backends read `active`).
            first = held.item if held is not None else after.item
            was_active = first is not None and not first.lifecycle.is_terminal
            if step.insert:
                assert after.item is not None
                self._seq += 1
                since = since_of(after.item, ob.observed_at)
                held = self._items[ob.key] = _Held(
                    after.item, ob.origin or "track", self._seq, since
                )
            assert held is not None
            tid = None
            if step.record:
                assert after.item is not None
                tid = self._next
                self._next += 1
                before = (
                    _without_raw(held.item)  # it follows the state held (`PRUNED`)
                    if held.last_transition == PRUNED
                    else self._before(held.last_transition)
                )
                stored = after.item if after.item.raw is None else _without_raw(after.item)
                t = Transition(tid, Change(before, stored, ob.observed_at, tid))
                self._log.append(t)
                self._ids.append(tid)
                if self._by_time and ob.observed_at < self._by_time[-1].change.observed_at:
                    bisect.insort(self._by_time, t, key=_observed)
                else:
                    self._by_time.append(t)
                held.last_transition, held.last_change = tid, ob.observed_at
            if after.item is not None:
                held.item = after.item
                held.name = after.item.application_name or held.name
                lc = after.item.lifecycle
                if was_active and (lc is Lifecycle.RUNNING or lc.is_terminal):
                    held.running_at = held.running_at or ob.observed_at
                if was_active and lc.is_terminal:
                    held.finished_at = held.finished_at or ob.observed_at
            held.last_observed, held.last_error = after.observed_at, after.error
            out.append(Committed(ob.key, step.outcome, tid, held.item.lifecycle))
        if any(c.id is not None for c in out):
            self._appended.set()
        return out

    def _before(self, tid: int | None) -> Item | None:
        if tid is None:
            return None
        i = bisect.bisect_left(self._ids, tid)
        if i < len(self._log) and self._log[i].id == tid:
            return self._log[i].change.after
        return None

    async def untrack(self, keys: Sequence[str]) -> list[str]:
        return [k for k in keys if self._items.pop(k, None) is not None]

    async def prune(self, now: datetime) -> int:
        r = self.retention
        if r.keeps_everything:
            return 0
        keep: list[Transition] = []
        per_item: dict[str, int] = {}
        # Too old: the log's prefix before its first transition young enough (or its newest,
        # always kept), as the SQL stores read it: a transition committed after a younger one
        # (another replica's clock behind) goes with what precedes it, not before.
        young = 0
        if r.max_age is not None and self._log:
            cutoff = now - r.max_age
            young = next(
                (i for i, t in enumerate(self._log) if t.change.observed_at >= cutoff),
                len(self._log) - 1,
            )
        for i in range(len(self._log) - 1, -1, -1):
            t = self._log[i]
            n = per_item.get(t.key, 0)
            too_old = i < young
            too_many = r.max_per_item is not None and n >= r.max_per_item
            if not (too_old or too_many):
                keep.append(t)
                per_item[t.key] = n + 1
        removed = len(self._log) - len(keep)
        keep.reverse()
        # A transition keeps its `before` when its previous one goes (the SQL stores copy it),
        # and an item whose last one goes is `PRUNED`.
        kept = {t.id for t in keep}
        for held in self._items.values():
            if held.last_transition is not None and held.last_transition not in kept:
                held.last_transition = PRUNED
        self._log = keep
        self._ids = [t.id for t in self._log]
        self._by_time = sorted(self._log, key=_observed)
        return removed

    # --- reads ----------------------------------------------------------------------------

    async def get(self, key: str) -> StoredItem | None:
        held = self._items.get(key)
        return None if held is None else held.stored()

    async def query(self, query: ItemQuery) -> Page:
        text = query.text.casefold() if query.text else None

        def wants(held: _Held) -> bool:
            item = held.item
            return (
                (query.vendor is None or item.vendor == query.vendor)
                and (query.source is None or item.source == query.source)
                and (query.kind is None or item.kind == query.kind)
                and (query.lifecycle is None or item.lifecycle.value == query.lifecycle)
                and (query.verdict is None or item.verdict.value == query.verdict)
                and (
                    query.application is None
                    or query.application in (item.application_id, held.name)
                )
                and (text is None or text in search_text(item, held.name))
            )

        chosen = [h.stored() for h in self._items.values() if wants(h)]
        desc = query.sort[1]
        chosen.sort(key=lambda x: sort_key(query, x), reverse=desc)
        total = len(chosen)
        at = cursor_key(query)
        if at is not None:
            chosen = [
                x for x in chosen if (sort_key(query, x) < at if desc else sort_key(query, x) > at)
            ]
        page = chosen[: query.limit]
        more = len(chosen) > query.limit
        value = None
        if more and query.sort[0] != "key":
            filled, found, _ = sort_key(query, page[-1])
            value = value_text(found) if filled else None
        return Page(
            [_without_payload(x) for x in page],
            page[-1].item.key if more else None,
            total,
            value,
        )

    async def active(self, sources: Collection[str] | None = None) -> list[StoredItem]:
        return [
            _without_payload(h.stored())
            for h in sorted(self._items.values(), key=lambda h: h.seq)
            if not h.item.lifecycle.is_terminal and (sources is None or h.item.source in sources)
        ]

    async def tracked_at(self, keys: Collection[str] | None = None) -> tuple[list[StoredItem], int]:
        held = sorted(self._items.values(), key=lambda h: h.seq)
        if keys is not None:
            held = [h for h in held if h.item.key in keys]
        return [h.stored() for h in held], self._next - 1

    async def counts(self) -> list[Count]:
        found: dict[tuple[str, str, str, str, str], int] = {}
        for h in self._items.values():
            i = h.item
            labels = (i.vendor, i.source, i.kind, i.lifecycle.value, i.verdict.value)
            found[labels] = found.get(labels, 0) + 1
        return [Count(*labels, n) for labels, n in sorted(found.items())]

    async def oldest_active(self) -> list[Oldest]:
        oldest: dict[str, Oldest] = {}
        for h in self._items.values():
            if h.item.lifecycle.is_terminal:
                continue
            known = oldest.get(h.item.source)
            if known is None or h.since < known.since:
                oldest[h.item.source] = Oldest(h.item.source, h.item.key, h.since)
        return [oldest[s] for s in sorted(oldest)]

    async def stats(
        self, *, since: datetime, until: datetime, group_by: Sequence[str] = ("source", "kind")
    ) -> list[GroupStats]:
        unknown = [g for g in group_by if g not in STAT_GROUPS]
        if unknown:
            raise ValueError(f"group_by: expected some of {', '.join(STAT_GROUPS)}, got {unknown}")
        groups: dict[tuple[str, ...], list[_Held]] = {}
        for h in self._items.values():
            if h.finished_at is not None and since <= h.finished_at < until:
                labels = tuple(str(getattr(h.item, g)) for g in STAT_GROUPS if g in group_by)
                groups.setdefault(labels, []).append(h)
        out = []
        for labels, held in sorted(groups.items()):
            named = dict(zip([g for g in STAT_GROUPS if g in group_by], labels, strict=True))
            timed = [phases(h.since, h.running_at, h.finished_at) for h in held]
            out.append(
                GroupStats(
                    named.get("vendor"),
                    named.get("source"),
                    named.get("kind"),
                    len(held),
                    sum(h.item.lifecycle is Lifecycle.FAILED for h in held),
                    sum(h.item.lifecycle in (Lifecycle.CANCELLED, Lifecycle.EXPIRED) for h in held),
                    sum(h.item.verdict.blocks for h in held),
                    *(
                        spread([t[i] for t in timed if t[i] is not None])  # type: ignore[misc]
                        for i in range(3)
                    ),
                )
            )
        return out

    async def activity(self, *, since: datetime, until: datetime, bucket: int) -> list[Activity]:
        # The window's transitions by observed time (bisected, never the log around it).
        lo = bisect.bisect_left(self._by_time, since, key=_observed)
        hi = bisect.bisect_left(self._by_time, until, lo=lo, key=_observed)
        rows: dict[tuple[int, str, str], int] = {}
        for t in self._by_time[lo:hi]:
            start = int(t.change.observed_at.timestamp()) // bucket * bucket
            a = t.change.after
            k = (start, a.lifecycle.value, a.verdict.value)
            rows[k] = rows.get(k, 0) + 1
        return assemble_activity([(*k, n) for k, n in rows.items()])

    async def overdue(self, cutoffs: Sequence[tuple[str, str, datetime]]) -> list[Overdue]:
        # One pass over the held items, each looked up by its (source, kind).
        cutoff_of = {(source, kind): cutoff for source, kind, cutoff in cutoffs}
        found: dict[tuple[str, str], dict[str, int]] = {}
        for h in self._items.values():
            i = h.item
            cutoff = cutoff_of.get((i.source, i.kind))
            if cutoff is not None and h.since < cutoff and not i.lifecycle.is_terminal:
                n = found.setdefault((i.source, i.kind), {})
                n[str(i.vendor)] = n.get(str(i.vendor), 0) + 1
        return [
            Overdue(v, source, kind, n)
            for source, kind, _ in cutoffs
            for v, n in sorted(found.get((source, kind), {}).items())
        ]

    async def transitions(
        self, *, since: int = 0, key: str | None = None, limit: int | None = None
    ) -> list[Transition]:
        check_limit(limit)
        start = bisect.bisect_right(self._ids, since) if since else 0
        found = [t for t in self._log[start:] if key is None or t.key == key]
        return found if limit is None else found[:limit]

    async def last_id(self) -> int:
        return self._next - 1


class MemorySinks(SinkLedger):
    """The sinks' delivery ledger of a `MemoryStore`: each sink's state and dead letters in
    this process's memory, its cursor starting at the store's last id."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._sinks: dict[str, SinkState] = {}
        self._dead: dict[str, dict[int, DeadLetter]] = {}
        self._log_id = uuid.uuid4().hex[:16]  # the log lives as long as this store object

    async def log_id(self) -> str:
        return self._log_id

    async def open(self, name: str, now: datetime) -> SinkState:
        if name not in self._sinks:
            position = await self._store.last_id()
            self._sinks.setdefault(name, SinkState(name, position, updated_at=now))
        return self._sinks[name]

    async def states(self, names: Collection[str] | None = None) -> list[SinkState]:
        return [s for n, s in sorted(self._sinks.items()) if names is None or n in names]

    async def save(self, state: SinkState, dead: Sequence[DeadLetter] = ()) -> bool:
        held = self._sinks.get(state.name)
        if held is None or held.generation != state.generation:
            return False
        self._sinks[state.name] = evolve(
            state,
            position=max(held.position, state.position),
            delivered=max(held.delivered, state.delivered),
            failures=max(held.failures, state.failures),
            dead=max(held.dead, state.dead),
        )
        letters = self._dead.setdefault(state.name, {})
        for letter in dead:
            letters[letter.id] = letter
        return True

    async def replay(self, name: str, since: int, now: datetime) -> SinkState:
        check_replay(name, since, await self._store.last_id())
        held = self._sinks.get(name) or SinkState(name, since)
        self._sinks[name] = evolve(
            held,
            position=since,
            generation=held.generation + 1,
            status=SinkStatus.ACTIVE,
            head=None,
            attempts=0,
            first_attempt=None,
            next_attempt=None,
            updated_at=now,
        )
        letters = self._dead.get(name, {})
        for tid in [t for t in letters if t > since]:
            del letters[tid]
        return self._sinks[name]

    async def dead_letters(
        self, name: str, *, after: int = 0, limit: int = 100
    ) -> list[DeadLetter]:
        letters = self._dead.get(name, {})
        return [letters[t] for t in sorted(letters) if t > after][:limit]


def _observed(t: Transition) -> datetime:
    return t.change.observed_at


def _without_raw(item: Item) -> Item:
    return evolve(item, raw=None)


def _without_payload(stored: StoredItem) -> StoredItem:
    if stored.item.raw is None:
        return stored
    return evolve(stored, item=_without_raw(stored.item))

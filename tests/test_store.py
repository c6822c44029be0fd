"""Store conformance: one module, every backend (memory, SQLite; PostgreSQL joins with its
issue). A backend passes when all of this holds."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from attrs import evolve

from scanhub import (
    ConfigError,
    ItemError,
    Lifecycle,
    MemoryStore,
    Promotion,
    Retention,
    Scan,
    SQLiteStore,
    Store,
    StoredItem,
    StoreUnavailable,
    Vendor,
    Verdict,
)
from scanhub._exports import cloudevent_json
from scanhub.store import (
    SCHEMA_VERSION,
    DeadLetter,
    ItemQuery,
    Observation,
    Outcome,
    ReplayPastEnd,
    SinkStatus,
    item_json,
    open_store,
    search_text,
)
from scanhub.store.sqlite import MIGRATIONS, connect, migrate

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

Factory = Callable[..., Store]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def make(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    url = ""
    if request.param == "postgres":
        from scanhub.store.postgres import PostgresStore

        from .pg import fresh_database

        dsn = request.getfixturevalue("pg_cluster")
        url = await fresh_database(dsn, f"conformance_{uuid.uuid4().hex[:12]}")

    def factory(retention: Retention | None = None) -> Store:
        if request.param == "memory":
            return MemoryStore(retention=retention)
        if request.param == "postgres":
            return PostgresStore(url, retention=retention)
        return SQLiteStore(tmp_path / "state.db", retention=retention)

    factory.kind = request.param  # type: ignore[attr-defined]
    return factory


@pytest.fixture
async def store(make: Factory) -> AsyncIterator[Store]:
    async with make() as s:
        yield s


def scan(sid: str, lc: Lifecycle = Lifecycle.RUNNING, **kw: object) -> Scan:
    return Scan(Vendor.APPSECPLUS, "asp", sid, "app-1", lc, lc.value, raw={"id": sid}, **kw)  # type: ignore[arg-type]


def seen(item: Scan, minutes: float = 0, origin: str | None = None) -> Observation:
    """An observation of `item`, `minutes` after T0."""
    return Observation(item.key, T0 + timedelta(minutes=minutes), item, None, origin)


async def test_a_log_has_one_identity_its_own(make: Factory) -> None:
    """What names a transition across stores (a sink's `webhook-id`, with its id): the same
    each time the store is opened (every replica's, on PostgreSQL), another store's differs."""
    first, again = make(), make()
    async with first, again:
        log = await first.sinks.log_id()
        assert re.fullmatch("[0-9a-f]{16}", log)
        assert await first.sinks.log_id() == log
        if make.kind != "memory":  # type: ignore[attr-defined]
            assert await again.sinks.log_id() == log  # the same file, the same database
        else:
            assert await again.sinks.log_id() != log  # a memory store's log is its own
    assert await MemoryStore().sinks.log_id() != await MemoryStore().sinks.log_id()


async def test_tracked_set_keeps_order_origin_and_first_state(store: Store) -> None:
    done = await store.track([(scan("a"), "config"), (scan("b"), "discovery:asp")], T0)
    assert [c.outcome for c in done] == [Outcome.RECORDED, Outcome.RECORDED]  # first sightings
    again = await store.track([(scan("a", Lifecycle.QUEUED), "track")], T0)  # already tracked
    assert again[0].outcome is Outcome.UNCHANGED and again[0].lifecycle is Lifecycle.RUNNING
    got = await store.tracked()
    assert [(s.key, s.origin, s.item.lifecycle) for s in got] == [
        (scan("a").key, "config", Lifecycle.RUNNING),
        (scan("b").key, "discovery:asp", Lifecycle.RUNNING),
    ]
    assert got[0].item.raw == {"id": "a"}  # the current state keeps the vendor payload


async def test_a_placeholder_is_tracked_but_not_history(store: Store) -> None:
    placeholder = Scan(Vendor.APPSECPLUS, "asp", "p", "app-1", Lifecycle.UNKNOWN, "")
    (done,) = await store.track([(placeholder, "config")], T0)
    assert done.outcome is Outcome.TRACKED and done.id is None
    assert await store.transitions() == []
    (first,) = await store.commit([seen(scan("p", Lifecycle.QUEUED), 1)])
    assert first.outcome is Outcome.RECORDED
    (t,) = await store.transitions()
    assert t.change.before is None  # the first real state has no before


async def test_a_limit_past_what_the_database_counts_is_no_limit(store: Store) -> None:
    """`scanhub history --limit 99999999999999999999`: every transition, as `since` past the
    database's integers is clamped (SQLite raised OverflowError: a traceback, exit 1)."""
    await store.commit([seen(scan("a", Lifecycle.QUEUED), 0, "track"), seen(scan("b"), 0, "track")])
    for key in (None, scan("a").key):
        got = await store.transitions(key=key, limit=10**20)
        assert got == await store.transitions(key=key)
        assert got and await store.transitions(since=10**20, key=key, limit=10**20) == []


async def test_transitions_get_increasing_ids_and_update_current_state(store: Store) -> None:
    a0, a1, a2 = scan("a", Lifecycle.QUEUED), scan("a"), scan("a", Lifecycle.SUCCEEDED)
    b0 = scan("b")
    first = await store.commit([seen(a0, 0, "track"), seen(b0, 0, "track"), seen(a1, 1)])
    second = await store.commit([seen(a2, 3)])
    ids = [c.id for c in first + second]
    assert all(i is not None for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 4  # type: ignore[type-var]
    assert await store.last_id() == ids[-1]
    current = {s.key: s for s in await store.tracked()}
    assert current[a0.key].item.lifecycle is Lifecycle.SUCCEEDED
    assert current[a0.key].last_change == T0 + timedelta(minutes=3)
    everything = await store.transitions()
    assert [t.id for t in everything] == ids
    assert [t.change.after.lifecycle for t in await store.transitions(key=a0.key)] == [
        Lifecycle.QUEUED,
        Lifecycle.RUNNING,
        Lifecycle.SUCCEEDED,
    ]
    later = await store.transitions(since=ids[1])  # type: ignore[arg-type]
    assert [t.id for t in later] == ids[2:]
    assert [t.id for t in await store.transitions(since=ids[0], limit=2)] == ids[1:3]  # type: ignore[arg-type]
    t = everything[2]
    assert t.change.before is not None and t.change.before.lifecycle is Lifecycle.QUEUED
    assert t.change.observed_at == T0 + timedelta(minutes=1)
    assert t.change.after == a1  # equal as an item (raw is not part of equality)
    assert t.change.after.raw is None  # the log keeps no vendor payload
    assert t.change.id == t.id


async def test_the_commit_rule_records_only_what_moves_forward(store: Store) -> None:
    q, r, s = scan("a", Lifecycle.QUEUED), scan("a"), scan("a", Lifecycle.SUCCEEDED)
    await store.commit([seen(q, 0, "track")])
    outcomes = await store.commit(
        [
            seen(q, 1),  # the same again: nothing
            seen(r, 2),  # forward: recorded
            seen(q, 3),  # backwards (a stale answer): nothing
            seen(scan("a", Lifecycle.RUNNING, message="merging"), 4),  # same rank, news
            seen(s, 5),
            seen(scan("a", Lifecycle.FAILED), 6),  # a terminal state stands once reached
            seen(r, 0.5),  # older than what is stored: stale
        ]
    )
    assert [o.outcome for o in outcomes] == [
        Outcome.UNCHANGED,
        Outcome.RECORDED,
        Outcome.UNCHANGED,
        Outcome.RECORDED,
        Outcome.RECORDED,
        Outcome.RECORDED,
        Outcome.STALE,
    ]
    lifecycles = [t.change.after.lifecycle for t in await store.transitions(key=q.key)]
    assert lifecycles == [
        Lifecycle.QUEUED,
        Lifecycle.RUNNING,
        Lifecycle.RUNNING,
        Lifecycle.SUCCEEDED,
        Lifecycle.FAILED,
    ]


async def test_an_untracked_item_is_not_recorded_unless_tracked_again(store: Store) -> None:
    a = scan("a")
    (gone,) = await store.commit([seen(a)])
    assert gone.outcome is Outcome.UNTRACKED and await store.tracked() == []
    await store.track([(a, "track")], T0)
    assert await store.untrack([a.key, "nope"]) == [a.key]
    await store.track([(scan(n), "track") for n in "zyx"], T0)
    assert await store.untrack([scan(n).key for n in "xzy"]) == [scan(n).key for n in "xzy"]
    (late,) = await store.commit([seen(scan("a", Lifecycle.SUCCEEDED), 1)])
    assert late.outcome is Outcome.UNTRACKED  # a poll answer after an untrack
    assert len(await store.transitions(key=a.key)) == 1  # its history stays


async def test_errors_and_sightings_update_last_seen_and_error(store: Store) -> None:
    a = scan("a")
    await store.track([(a, "track")], T0)
    err = ItemError("ServerError", "HTTP 503", True, T0, None)
    await store.commit([Observation(a.key, T0 + timedelta(seconds=1), None, err)])
    held = await store.get(a.key)
    assert held is not None
    assert held.last_observed == T0 + timedelta(seconds=1) and held.last_error == err
    await store.commit([seen(a, 1)])  # the same state again: the error is over
    held = await store.get(a.key)
    assert held is not None and held.last_error is None
    assert held.last_observed == T0 + timedelta(minutes=1)
    assert len(await store.transitions()) == 1


async def test_queries_filter_page_by_key_and_count(store: Store) -> None:
    items = [
        Scan(Vendor.APPSECPLUS, "asp", f"s{i:03d}", f"app-{i % 3}", lc, lc.value, message=m)
        for i, (lc, m) in enumerate(
            [(Lifecycle.RUNNING, None), (Lifecycle.FAILED, "Timeout in DAST step")] * 25
        )
    ]
    await store.track([(i, "track") for i in items], T0)
    page = await store.query(ItemQuery(limit=20))
    assert page.total == 50 and len(page.items) == 20 and page.next_after == page.items[-1].key
    keys = [s.key for s in page.items]
    while page.next_after is not None:
        page = await store.query(ItemQuery(limit=20, after=page.next_after))
        keys += [s.key for s in page.items]
    assert keys == sorted(i.key for i in items)  # every item once, in key order
    failed = await store.query(ItemQuery(lifecycle="failed", limit=100))
    assert failed.total == 25 and all(s.item.lifecycle is Lifecycle.FAILED for s in failed.items)
    assert all(s.item.raw is None for s in failed.items)  # pages leave the payload out
    app = await store.query(ItemQuery(application="app-1", lifecycle="running"))
    assert app.total == len(
        [i for i in items if i.application_id == "app-1" and i.lifecycle is Lifecycle.RUNNING]
    )
    text = await store.query(ItemQuery(text="dast STEP"))  # case-insensitive substring
    assert text.total == 25
    short = await store.query(ItemQuery(text="s01"))
    assert {s.item.id for s in short.items} == {f"s01{d}" for d in range(10)}
    counts = await store.counts()
    assert sum(c.n for c in counts) == 50
    assert {(c.lifecycle, c.n) for c in counts} == {("running", 25), ("failed", 25)}


async def test_limits_below_one_are_refused_alike_by_every_backend(store: Store) -> None:
    # ItemQuery(limit=0) ended in an IndexError inside every backend's query, limit=-1 in one
    # of them while memory dropped the last item; transitions(limit=-1) gave all but the last
    # (memory), everything (SQLite) or a database error (PostgreSQL).
    await store.track([(scan(f"s{i}"), "track") for i in range(3)], T0)
    for limit in (0, -1):
        with pytest.raises(ValueError, match="limit"):
            ItemQuery(limit=limit)
    with pytest.raises(ValueError, match="limit"):
        await store.transitions(limit=-1)
    with pytest.raises(ValueError, match="limit"):
        await store.transitions(key=scan("s0").key, limit=-1)
    assert await store.transitions(limit=0) == []
    assert len(await store.transitions(limit=2)) == 2


async def test_every_read_follows_what_each_commit_changed(store: Store) -> None:
    """A commit rewrites only what changed of an item (a new vendor status, a lifecycle, a
    verdict, an application name, a message): every filter, order, count and search reads the
    item as it stands, whichever of them changed, in one batch or over several."""
    a, b = scan("a"), scan("b")
    await store.track([(a, "track"), (b, "track")], T0)
    # A new vendor status only: the time of the change moves, nothing else.
    a1 = evolve(a, vendor_status="step 1")
    await store.commit([seen(a1, 1), seen(evolve(b), 1)])
    # Then, in one batch: a name given, a message; a finishes with a verdict after another
    # status; b only seen again.
    a2 = evolve(a1, vendor_status="step 2", application_name="Web Shop", message="Scanning")
    a3 = evolve(a2, lifecycle=Lifecycle.SUCCEEDED, vendor_status="done", verdict=Verdict.FAIL)
    await store.commit([seen(a2, 2), seen(b, 3), seen(a3, 4)])
    # A verdict that changes alone.
    a4 = evolve(a3, verdict=Verdict.WARN)
    await store.commit([seen(a4, 5)])
    got = await store.get(a.key)
    assert got is not None and got.item == a4
    assert (got.last_change, got.last_observed) == (T0 + timedelta(minutes=5),) * 2
    assert (got.running_at, got.finished_at) == (T0, T0 + timedelta(minutes=4))
    other = await store.get(b.key)
    assert (
        other is not None
        and other.last_change == T0
        and other.last_observed == T0 + timedelta(minutes=3)
    )
    counts = {(c.lifecycle, c.verdict): c.n for c in await store.counts()}
    assert counts == {("succeeded", "warn"): 1, ("running", "none"): 1}
    for q, keys in [
        (ItemQuery(lifecycle="succeeded"), [a.key]),
        (ItemQuery(lifecycle="running"), [b.key]),
        (ItemQuery(verdict="warn"), [a.key]),
        (ItemQuery(verdict="fail"), []),
        (ItemQuery(application="Web Shop"), [a.key]),
        (ItemQuery(text="scanning"), [a.key]),
        (ItemQuery(order="-changed"), [a.key, b.key]),
    ]:
        page = await store.query(q)
        assert ([s.key for s in page.items], page.total) == (keys, len(keys)), q
    assert [s.key for s in await store.active()] == [b.key]
    finished = await store.stats(since=T0, until=T0 + timedelta(hours=1), group_by=())
    assert [g.finished for g in finished] == [1]


async def test_active_items_and_the_oldest_unfinished(store: Store) -> None:
    old = scan("old", created_at=T0 - timedelta(hours=2))
    new = scan("new", created_at=T0 - timedelta(minutes=5))
    done = scan("done", Lifecycle.SUCCEEDED)
    other = Scan(Vendor.APPSECPLUS, "other", "x", "app", Lifecycle.QUEUED, "queued")
    await store.track([(i, "track") for i in (old, new, done, other)], T0)
    assert [s.key for s in await store.active()] == [old.key, new.key, other.key]
    assert [s.key for s in await store.active(["asp"])] == [old.key, new.key]
    assert all(s.item.raw is None for s in await store.active())
    oldest = {o.source: o for o in await store.oldest_active()}
    assert oldest["asp"].key == old.key and oldest["asp"].since == T0 - timedelta(hours=2)
    assert oldest["other"].since == T0  # no creation time: when first seen


async def test_tracked_at_gives_the_log_position_of_the_same_moment(store: Store) -> None:
    await store.track([(scan("a"), "track"), (scan("b"), "track")], T0)
    items, position = await store.tracked_at()
    assert len(items) == 2 and position == await store.last_id()
    only, _ = await store.tracked_at([scan("b").key])
    assert [s.key for s in only] == [scan("b").key]
    # Any number of keys, each once, in the order they were tracked; unknown keys are none.
    many = [scan(f"m{i:04d}") for i in range(1200)]
    await store.track([(i, "track") for i in many], T0)
    asked = [i.key for i in many[::-1]] + [scan("a").key, many[3].key, "nosuch"]
    found, _ = await store.tracked_at(asked)
    assert [s.key for s in found] == [scan("a").key] + [i.key for i in many]


async def test_retention_by_age_and_count(make: Factory) -> None:
    async with make(Retention(max_age=timedelta(days=1), max_per_item=2)) as store:
        a = scan("a", Lifecycle.QUEUED)
        await store.commit([Observation(a.key, T0 - timedelta(days=3), a, None, "track")])
        for n in range(4):
            state = scan("a", Lifecycle.RUNNING, message=f"step {n}")
            await store.commit([seen(state, n)])
        removed = await store.prune(T0 + timedelta(hours=1))
        kept = await store.transitions(key=a.key)
        assert removed == 3 and len(kept) == 2
        # The first one left keeps the state before it, though its previous transition went.
        assert [t.change.before and t.change.before.message for t in kept] == ["step 1", "step 2"]
        assert [t.change.observed_at for t in kept] == [
            T0 + timedelta(minutes=2),
            T0 + timedelta(minutes=3),
        ]
    async with make() as store:
        assert await store.prune(T0) == 0  # by default, never


async def events_of(store: Store) -> dict[int, str]:
    """Every transition's CloudEvent as the log gives it, whole and by item, by id."""
    log = await store.sinks.log_id()
    out = {t.id: cloudevent_json(t.change, log) for t in await store.transitions()}
    for key in {t.change.after.key for t in await store.transitions()}:
        for t in await store.transitions(key=key):
            assert cloudevent_json(t.change, log) == out[t.id]
    return out


@pytest.fixture(params=["walked", "walk cut short", "read whole"])
def pruning_reads(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How a pruning finds the transitions left that follow what goes: by walking the pruned
    items' chains, or by reading the log once (the SQL stores choose by how much goes); on
    SQLite also a walk that stops once longer than the read it saves, and reads the log."""
    share = 0.0 if request.param == "read whole" else 2.0
    import scanhub.store.postgres
    import scanhub.store.sqlite

    monkeypatch.setattr(scanhub.store.sqlite, "_READ_WHOLE", share)
    monkeypatch.setattr(scanhub.store.postgres, "_READ_WHOLE", share)
    steps = 0.1 if request.param == "walk cut short" else 1e9  # a step or two of these logs
    monkeypatch.setattr(scanhub.store.sqlite, "_WALK_STEPS", steps)
    return str(request.param)


@pytest.mark.parametrize(
    "retention", [Retention(max_age=timedelta(days=1)), Retention(max_per_item=1)]
)
@pytest.mark.usefixtures("pruning_reads")
async def test_pruning_never_changes_the_event_of_a_transition_it_keeps(
    make: Factory, retention: Retention
) -> None:
    """An event id names one body for good: a transition whose previous one was pruned still
    says what the item was before it (`previous_lifecycle`, `previous_verdict`), through a
    second pruning too; and the next transition of an item whose last one was pruned says
    what the item was (not "new")."""
    q, r, s = Lifecycle.QUEUED, Lifecycle.RUNNING, Lifecycle.SUCCEEDED
    day = 60 * 24
    async with make(retention) as store:
        # a: queued, running (3 days ago), succeeded now; b: queued 3 days ago, then nothing;
        # c: two transitions, untracked; d: two transitions, untracked, tracked again.
        await store.commit([seen(scan(n, q), -3 * day, "track") for n in "abcd"])
        await store.commit([seen(scan(n, r), -3 * day + 1) for n in "acd"])
        await store.untrack([scan("c").key, scan("d").key])
        await store.commit([seen(scan("d", q), -2 * day, "track")])
        await store.commit([seen(scan("d", r), -2 * day + 1), seen(scan("a", s), 0)])
        events = await events_of(store)
        assert await store.prune(T0 + timedelta(minutes=1)) > 0
        kept = await events_of(store)
        assert kept and all(events[tid] == body for tid, body in kept.items())
        histories = await histories_of(store, "abd")
        assert [t[1] for t in histories["a"]] == [s] and histories["a"][0][2]
        assert histories["b"] == ([] if retention.max_age else [(2, q, False)])
        await store.commit([seen(scan("b", r), 2), seen(scan("a", Lifecycle.FAILED), 2)])
        (moved,) = await store.transitions(key=scan("b").key, since=max(kept))
        assert moved.change.before is not None and moved.change.before.lifecycle is q
        events = await events_of(store)
        # Pruning again, after a's and b's moves: what stays keeps its body once more.
        later = T0 + timedelta(days=2)
        await store.commit([seen(scan("a", Lifecycle.CANCELLED), 2 * day)])
        events = await events_of(store)
        await store.prune(later)
        again = await events_of(store)
        assert again and all(events[tid] == body for tid, body in again.items())


@pytest.mark.usefixtures("pruning_reads")
async def test_pruning_by_count_again_numbers_the_items_that_moved_since(make: Factory) -> None:
    """The first pruning by count numbers every item's transitions; the next ones only those
    of the items with transitions since (others cannot have more than before): each prunes
    the same as numbering everything would, chains of an item untracked and tracked again
    counted together, and what stays reads as before."""

    def step(name: str, n: int) -> Observation:
        return seen(scan(name, message=f"step {n}"), n, "track")

    async with make(Retention(max_per_item=2)) as store:
        await store.commit([step(name, n) for n in range(4) for name in "ab"])
        assert await store.prune(T0) == 4
        await store.commit([step("a", n) for n in range(4, 7)])
        await store.untrack([scan("b").key])
        await store.commit([step("b", 9)])  # b again: a new chain, counted with its old one
        events = await events_of(store)
        assert await store.prune(T0) == 4
        kept = await events_of(store)
        assert all(events[tid] == body for tid, body in kept.items())
        messages = {
            name: [t.change.after.message for t in await store.transitions(key=scan(name).key)]
            for name in "ab"
        }
        assert messages == {"a": ["step 5", "step 6"], "b": ["step 3", "step 9"]}
        assert await store.prune(T0) == 0


async def test_pruning_by_age_keeps_the_end_of_the_log(make: Factory) -> None:
    """However old, the newest transition stays: the log's end, from which ids go on and which
    `last_id` names, so that a reader of id 3 resuming after everything aged out is not taken
    for one past the end (the live stream's `reset`, a replay's 409)."""
    async with make(Retention(max_age=timedelta(days=1))) as store:
        for n, lc in enumerate((Lifecycle.QUEUED, Lifecycle.RUNNING, Lifecycle.SUCCEEDED)):
            await store.commit([seen(scan("a", lc), n, "track")])
        assert await store.prune(T0 + timedelta(days=30)) == 2
        assert [t.id for t in await store.transitions()] == [3] and await store.last_id() == 3
        assert await store.prune(T0 + timedelta(days=31)) == 0
        await store.commit([seen(scan("b", Lifecycle.QUEUED), 60 * 24 * 31, "track")])
        assert [t.id for t in await store.transitions()] == [3, 4]


async def test_pruning_by_age_removes_a_prefix_of_the_log_on_every_store(make: Factory) -> None:
    """The log is in commit order; what is too old is its prefix before the first transition
    young enough. A transition observed long ago but committed after a younger one (a replica
    whose clock is behind) goes with what precedes it, not before, on every store alike (the
    memory store pruned it at once, the SQL stores later)."""
    async with make(Retention(max_age=timedelta(hours=5))) as store:
        await store.commit([seen(scan("a"), 600, "track")])
        await store.commit([seen(scan("b"), 120, "track")])  # committed after a, observed before
        await store.commit([seen(scan("c"), 660, "track")])
        assert await store.prune(T0 + timedelta(minutes=600)) == 0  # a is young: b stays
        assert [t.id for t in await store.transitions()] == [1, 2, 3]
        assert await store.prune(T0 + timedelta(minutes=950)) == 2  # a aged: a and b go
        assert [t.id for t in await store.transitions()] == [3]


async def test_state_survives_reopening(make: Factory) -> None:
    if make.kind == "memory":  # type: ignore[attr-defined]
        pytest.skip("memory is gone when the process ends, by design")
    a0, a1 = scan("a", Lifecycle.QUEUED), scan("a", Lifecycle.SUCCEEDED, verdict=Verdict.PASS)
    async with make() as store:
        await store.commit([seen(a0, 0, "config"), seen(a1, 1)])
    async with make() as store:
        (held,) = await store.tracked()
        assert held.item == a1 and held.origin == "config"
        assert await store.last_id() == 2
        more = await store.commit([seen(scan("a", Lifecycle.FAILED), 2)])
        assert more[0].id == 3  # ids keep increasing across restarts


async def test_many_changes_in_one_commit(store: Store) -> None:
    items = [scan(f"s{i}") for i in range(500)]
    recorded = await store.commit([seen(i, 0, "track") for i in items])
    first = recorded[0].id or 0
    assert [c.id for c in recorded] == list(range(first, first + 500))


async def test_follow_sees_every_commit_in_order(store: Store) -> None:
    got: list[int] = []

    async def follow() -> None:
        async for change in store.follow(0):
            got.append(change.id or 0)
            if len(got) == 30:
                return

    task = asyncio.create_task(follow())
    for k in range(10):
        await store.commit([seen(scan(f"s{k}-{n}"), 0, "track") for n in range(3)])
    await asyncio.wait_for(task, 10)
    assert got == list(range(1, 31))


# --- SQLite specifics -----------------------------------------------------------------------


async def test_sqlite_says_unavailable_for_a_busy_file_and_not_for_a_wrong_statement(
    tmp_path: Path,
) -> None:
    """Only "not now" is `StoreUnavailable` (retried, held, a 503 with Retry-After): a file
    another process holds locked is; a statement SQLite refuses (here a table gone from under
    the store) is its own error, as on PostgreSQL, not an outage that never ends."""
    path = tmp_path / "state.db"
    async with SQLiteStore(path) as store:
        await store.track([(scan("a"), "track")], T0)
        await store._run(lambda db: db.execute("PRAGMA busy_timeout = 0"))
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable, match="cannot be written now"):
            await store.commit([seen(scan("a", Lifecycle.SUCCEEDED), 1)])
        other.execute("DROP TABLE item_counts")
        other.execute("COMMIT")
        other.close()
        with pytest.raises(sqlite3.OperationalError, match="no such table") as err:
            await store.counts()
        assert not isinstance(err.value, StoreUnavailable)


async def test_a_sink_starts_at_the_end_of_the_log_and_its_cursor_persists(
    make: Factory,
) -> None:
    async with make() as store:
        await store.track([(scan("a"), "config"), (scan("b"), "config")], T0)
        first = await store.sinks.open("ops", T0)
        assert (first.position, first.status, first.generation) == (2, SinkStatus.ACTIVE, 0)
        assert (await store.sinks.open("ops", T0)).position == 2  # opening again keeps it
        await store.commit([seen(scan("a", Lifecycle.SUCCEEDED), 1)])
        moved = evolve(first, position=3, delivered=1, last_success=T0, updated_at=T0)
        assert await store.sinks.save(moved)
        # A replica that lost the lease cannot move the cursor or the totals backwards.
        assert await store.sinks.save(evolve(moved, position=1, delivered=0))
    async with make() as store:
        if getattr(make, "kind", "") == "memory":
            return  # nothing survives a memory store
        (state,) = await store.sinks.states(["ops"])
        assert (state.position, state.delivered, state.last_success) == (3, 1, T0)
        assert await store.sinks.states(["other"]) == []


async def test_dead_letters_are_listed_and_a_replay_rewinds_the_cursor(store: Store) -> None:
    await store.track([(scan(str(i)), "config") for i in range(5)], T0)
    state = await store.sinks.open("ops", T0)
    assert state.position == 5
    state = await store.sinks.replay("ops", 0, T0)  # everything again
    assert (state.position, state.generation) == (0, 1)
    letters = [
        DeadLetter("ops", tid, f"k{tid}", 3, T0, T0 + timedelta(minutes=1), "HTTP 400", 400)
        for tid in (2, 4)
    ]
    gone = evolve(
        state,
        position=5,
        status=SinkStatus.DISABLED,
        head=5,
        dead=2,
        last_error="HTTP 410",
        last_error_at=T0,
        last_status=410,
    )
    assert await store.sinks.save(gone, letters)
    assert [d.id for d in await store.sinks.dead_letters("ops")] == [2, 4]
    assert [d.id for d in await store.sinks.dead_letters("ops", after=2)] == [4]
    assert (await store.sinks.dead_letters("ops"))[0] == letters[0]
    # Replaying from 3: the cursor moves there, the sink is active again, the dead letters
    # after 3 are attempted again (no longer listed), and a deliverer of the old generation
    # can no longer write.
    again = await store.sinks.replay("ops", 3, T0)
    assert (again.position, again.status, again.generation, again.head) == (
        3,
        SinkStatus.ACTIVE,
        2,
        None,
    )
    assert again.dead == 2 and again.last_error == "HTTP 410"  # totals and history stay
    assert [d.id for d in await store.sinks.dead_letters("ops")] == [2]
    assert not await store.sinks.save(evolve(gone, position=9))
    assert (await store.sinks.states(["ops"]))[0].position == 3
    # A replay of a sink never run before creates it there.
    assert (await store.sinks.replay("new", 1, T0)).position == 1


async def test_a_replay_past_the_end_of_the_log_is_refused(store: Store) -> None:
    """A cursor after the newest transition would skip everything until ids reach it, the sink
    saying it is active with no lag: refused, whoever calls (not only the API), and nothing
    changes."""
    await store.track([(scan(str(i)), "config") for i in range(3)], T0)
    before = await store.sinks.open("ops", T0)
    assert await store.last_id() == 3
    for since in (4, 10**6, -1):
        with pytest.raises(ReplayPastEnd) as caught:
            await store.sinks.replay("ops", since, T0)
        assert (caught.value.since, caught.value.newest) == (since, 3)
        assert str(caught.value) == (
            f"sink 'ops': cannot replay after transition {since}: the log's newest"
            " transition is 3 (replay after 0 to 3)"
        )
    with pytest.raises(ReplayPastEnd):
        await store.sinks.replay("never-run", 4, T0)
    assert await store.sinks.states() == [before]  # not moved, not created
    assert (await store.sinks.replay("ops", 3, T0)).position == 3  # the end itself is fine


def test_a_version_2_state_file_gains_sinks_and_keeps_its_log(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    db = connect(path)
    for step in MIGRATIONS[:2]:
        for statement in step.split(";;"):
            db.execute(statement)
    db.execute("PRAGMA user_version = 2")
    db.execute(
        "INSERT INTO transitions (id, key, observed_at, prev, after) VALUES "
        "(7, 'k', '2026-11-01T12:00:00.000000Z', NULL, '{}')"
    )
    db.close()

    async def go() -> int:
        async with SQLiteStore(path) as store:
            return (await store.sinks.open("ops", T0)).position

    assert asyncio.run(go()) == 7
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def untrack_and_track_again(store: Store) -> None:
    """After a and b's commits (ids 1-3): c untracked and tracked again, d untracked."""
    await store.commit([seen(scan("c"), 6, "track"), seen(scan("d"), 6, "track")])
    await store.commit([seen(scan("c", Lifecycle.FAILED), 7)])
    await store.untrack([scan("c").key, scan("d").key])
    await store.commit([seen(scan("c", Lifecycle.QUEUED), 8, "track")])


async def histories_of(store: Store, names: str) -> dict[str, list[tuple[object, ...]]]:
    """Each item's history as (id, lifecycle after, whether it has a before)."""
    return {
        name: [
            (t.id, t.change.after.lifecycle, t.change.before is not None)
            for t in await store.transitions(key=scan(name).key)
        ]
        for name in names
    }


#: The histories of a, b, c and d written by the migration tests, after migrating.
MIGRATED_HISTORIES = {
    "a": [(1, Lifecycle.RUNNING, False), (3, Lifecycle.SUCCEEDED, True)],
    "b": [(2, Lifecycle.RUNNING, False)],
    "c": [(4, Lifecycle.RUNNING, False), (6, Lifecycle.FAILED, True), (7, Lifecycle.QUEUED, False)],
    "d": [(5, Lifecycle.RUNNING, False)],
}


def _schema(db: sqlite3.Connection) -> set[tuple[str, str]]:
    return {(t, n) for t, n in db.execute("SELECT type, name FROM sqlite_master")}


@pytest.mark.parametrize("version", [2, 3, 4, 5, 6, 7, 8])
def test_an_older_state_file_migrates_to_9_and_keeps_its_data(tmp_path: Path, version: int) -> None:
    """A file of schema 2 (before sinks), 3 (before the time-in-state indexes), 4 (5 changes
    nothing in SQLite), 5 (before histories were read through their chains), 6 (search text
    with its fields joined by spaces), 7 (before the log had an identity) or 8 (before a
    transition kept what it followed when pruned), holding items, transitions, an item
    untracked and one tracked again, and (from 3) a sink's cursor and dead letter, opens at
    the current schema with all of it: the page's newest-change-first order reads through its
    index, every item's history is whole, untracked ones too, text search keeps each field
    apart, and the log has an identity of its own."""
    assert SCHEMA_VERSION == 9
    path = tmp_path / f"v{version}.db"
    letter = DeadLetter("ops", 2, scan("b").key, 3, T0, T0, "HTTP 400", 400)

    async def write() -> None:
        async with SQLiteStore(path) as store:
            await store.commit([seen(scan("a"), 0, "track"), seen(scan("b"), 1, "track")])
            await store.commit([seen(scan("a", Lifecycle.SUCCEEDED), 5)])
            state = await store.sinks.open("ops", T0)
            await store.sinks.save(evolve(state, position=3, dead=1), [letter])
            await untrack_and_track_again(store)

    asyncio.run(write())
    # Take the file back to `version`: drop what the later migrations added, and check that
    # what is left is the schema those migrations start from.
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE transitions DROP COLUMN kept_before")
    db.execute("DROP TABLE pruned_by_count")
    if version < 8:
        db.execute("DROP TABLE log_identity")
    # The search text of schema 6 and before: the same fields joined by spaces (the text
    # index follows through its trigger).
    if version < 7:
        db.execute("UPDATE items SET search = replace(search, char(31), ' ')")
        assert db.execute("SELECT COUNT(*) FROM items WHERE search LIKE '% app-1%'").fetchone()[0]
    if version < 6:
        db.execute("DROP TABLE retired")
        db.execute("CREATE INDEX transitions_key ON transitions (key, id)")
    if version < 4:
        db.execute("DROP INDEX items_changed")
        db.execute("DROP INDEX items_since")
    if version == 2:
        db.execute("DROP TABLE sinks")
        db.execute("DROP TABLE sink_dead")
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    fresh = connect(tmp_path / "fresh.db")
    fresh.create_function("scanhub_search", 4, lambda *row: row[3])  # as `migrate` does
    for step in MIGRATIONS[:version]:
        for statement in step.split(";;"):
            if statement.strip():
                fresh.execute(statement)
    assert _schema(db) == _schema(fresh)
    db.close()
    fresh.close()

    async def read() -> tuple[object, ...]:
        async with SQLiteStore(path) as store:
            page = await store.query(ItemQuery(order="-changed"))
            histories = await histories_of(store, "abcd")
            searches = [
                (await store.query(ItemQuery(text=text))).total
                for text in ("app-1", "1:a", "a app-1")
            ]
            return (
                [s.key for s in page.items],
                (await store.get(scan("a").key)),
                [t.id for t in await store.transitions()],
                await store.sinks.states(["ops"]),
                await store.sinks.dead_letters("ops"),
                histories,
                searches,
                await store.sinks.log_id(),
            )

    b = scan("b").key
    keys, a, ids, sinks, dead, histories, searches, log = asyncio.run(read())
    assert re.fullmatch("[0-9a-f]{16}", log)  # made by the migration, once (or kept)
    assert searches == [3, 1, 0]  # both ran from a's id into its application id
    db = sqlite3.connect(path)
    texts = dict(db.execute("SELECT key, search FROM items"))
    assert texts == {k: search_text(scan(k.rsplit(":", 1)[1])) for k in texts}
    db.execute("INSERT INTO items_search (items_search) VALUES ('integrity-check')")
    # A text written the old way afterwards (by a scanhub not yet upgraded) is made again by
    # the item's next commit.
    db.execute("UPDATE items SET search = replace(search, char(31), ' ') WHERE key = ?", (b,))
    db.commit()
    db.close()

    async def commit_b() -> int:
        async with SQLiteStore(path) as store:
            await store.commit([seen(scan("b", Lifecycle.SUCCEEDED), 20)])
            return (await store.query(ItemQuery(text="b app-1"))).total

    assert asyncio.run(commit_b()) == 0
    db = sqlite3.connect(path)
    assert db.execute("SELECT search FROM items WHERE key = ?", (b,)).fetchone()[0] == texts[b]
    db.close()
    assert keys == [scan("c").key, scan("a").key, scan("b").key]  # newest change first
    assert isinstance(a, StoredItem) and a.item.lifecycle is Lifecycle.SUCCEEDED
    assert a.since == T0 and a.finished_at == T0 + timedelta(minutes=5)  # kept times kept
    assert ids == [1, 2, 3, 4, 5, 6, 7]
    assert histories == MIGRATED_HISTORIES
    if version >= 3:
        assert [(s.position, s.dead) for s in sinks] == [(3, 1)] and dead == [letter]
    else:
        assert sinks == [] and dead == []  # sinks begin at 3
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    indexes = {n for t, n in _schema(db) if t == "index"}
    assert {"items_changed", "items_since"} <= indexes
    assert "transitions_key" not in indexes
    assert {("table", "sinks"), ("table", "sink_dead"), ("table", "retired")} <= _schema(db)


def test_migration_9_marks_an_item_whose_last_transition_an_older_scanhub_pruned(
    tmp_path: Path,
) -> None:
    """Its next transition says what the item was (not a first sighting, as it did)."""
    path = tmp_path / "v8.db"
    a0, a1 = scan("a", Lifecycle.QUEUED), scan("a", Lifecycle.RUNNING)

    async def write() -> None:
        async with SQLiteStore(path) as store:
            await store.commit([seen(a0, 0, "track"), seen(a1, 1), seen(scan("b"), 2, "track")])

    asyncio.run(write())
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("ALTER TABLE transitions DROP COLUMN kept_before")
        db.execute("DROP TABLE pruned_by_count")
        db.execute("DELETE FROM transitions WHERE id < 3")  # as schema 8 pruned by age
        db.execute("PRAGMA user_version = 8")
        db.commit()

    async def move() -> list[tuple[object, object]]:
        async with SQLiteStore(path) as store:
            await store.commit([seen(scan("a", Lifecycle.FAILED), 3)])
            return [
                (t.change.before and t.change.before.lifecycle, t.change.after.lifecycle)
                for t in await store.transitions(key=a0.key)
            ]

    assert asyncio.run(move()) == [(Lifecycle.RUNNING, Lifecycle.FAILED)]


def test_migration_7_makes_search_text_with_the_kept_name_and_spares_a_damaged_row() -> None:
    from scanhub.store.sqlite import _stored_search

    k = scan("a").key
    assert _stored_search(k, "{", None, "old text") == "old text"
    assert _stored_search(k, '{"vendor": 3}', None, "old text") == "old text"
    assert _stored_search(k, item_json(scan("a")), None, "old text") == search_text(scan("a"))
    assert _stored_search(k, item_json(scan("a")), "Shop", "old") == search_text(scan("a"), "Shop")


def test_migrations_run_once_even_twice_and_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "m.db"

    def open_and_migrate() -> int:
        db = connect(path)
        try:
            return migrate(db)
        finally:
            db.close()

    async def together() -> list[int]:
        return list(await asyncio.gather(*(asyncio.to_thread(open_and_migrate) for _ in range(6))))

    found = asyncio.run(together())
    assert sorted(found)[0] == 0 and all(0 <= v <= SCHEMA_VERSION for v in found)
    assert open_and_migrate() == SCHEMA_VERSION  # a second run finds the schema current
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"items", "transitions", "sinks", "sink_dead"} <= tables


def test_a_state_file_locked_by_another_process_is_said_to_be_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process migrating (or writing) the file past the busy timeout: the store says
    the file is busy, not that it is no scanhub state file."""
    import scanhub.store.sqlite as sqlite_module

    path = tmp_path / "busy.db"
    migrate(connect(path))
    real = sqlite_module.connect

    def impatient(p: str | Path) -> sqlite3.Connection:
        db = real(p)
        db.execute("PRAGMA busy_timeout = 50")
        return db

    monkeypatch.setattr(sqlite_module, "connect", impatient)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def go() -> None:
        async with SQLiteStore(path):
            pass

    with pytest.raises(ConfigError) as caught:
        asyncio.run(go())
    other.execute("ROLLBACK")
    assert "busy" in str(caught.value) and "not a scanhub state file" not in str(caught.value)
    asyncio.run(go())  # once the other process is done


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()

    async def go() -> None:
        async with SQLiteStore(path):
            pass

    with pytest.raises(ConfigError, match="newer than this scanhub"):
        asyncio.run(go())


def test_open_store_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_store("memory"), MemoryStore)
    assert isinstance(open_store(str(tmp_path / "x.db")), SQLiteStore)
    s = open_store(f"sqlite:///{tmp_path}/y.db")
    assert isinstance(s, SQLiteStore) and s.path == f"{tmp_path}/y.db"


def test_open_store_reads_schemes_in_any_case_and_refuses_other_schemes(tmp_path: Path) -> None:
    """A location is a file path only when it has no `scheme://`: a PostgreSQL URL spelled
    `PostgreSQL://` or with white space around it is PostgreSQL, and any other scheme (a
    driver suffix, another database) is refused without showing the location, never taken
    for a file path (which would put a password in a directory's name)."""
    from scanhub.store.postgres import PostgresStore

    for url in ("PostgreSQL://u@h/d", " postgres://u@h/d\n", "POSTGRESQL://u@h/d"):
        store = open_store(url, holder="x")
        assert isinstance(store, PostgresStore), url
    assert repr(open_store("PostgreSQL://u@h/d")) == "PostgresStore('postgresql://u@h/d')"
    s = open_store(f"SQLite:///{tmp_path}/y.db")
    assert isinstance(s, SQLiteStore) and s.path == f"{tmp_path}/y.db"
    assert isinstance(open_store("Memory://"), MemoryStore)
    for url in (
        "PostgreSQL://u:hunter2secret@127.0.0.1:1/db",
        " postgresql://u:hunter2secret@127.0.0.1:1/db",
    ):
        with pytest.raises(ConfigError, match="must not carry a password") as refused:
            open_store(url)
        assert "hunter2secret" not in str(refused.value)
    for url in (
        "postgresql+asyncpg://u:hunter2secret@127.0.0.1:1/db",
        "mysql://u:hunter2secret@h/db",
        "file:///tmp/u:hunter2secret@x",
    ):
        with pytest.raises(ConfigError, match="is not one scanhub opens") as refused:
            open_store(url)
        assert "hunter2secret" not in str(refused.value)
    assert list(tmp_path.iterdir()) == []  # nothing was created for any of them


def test_a_url_as_the_state_path_in_a_file_is_refused_without_showing_it() -> None:
    """`[state] path` is joined to the file's directory: a URL there would become a path
    holding its password (and, for `watch`, directories named after it)."""
    from scanhub._config import parse_config

    source = {"vendor": "appsecplus", "base_url": "http://h", "token_env": "K"}
    for path in ("postgresql://u:hunter2secret@h/db", "PostgreSQL://u:hunter2secret@h/db"):
        with pytest.raises(ConfigError) as refused:
            parse_config({"state": {"path": path}, "source": [source]}, "c.toml")
        assert refused.value.problems == [
            ("state.path", "expected a file path, got a URL (a PostgreSQL URL is url)")
        ]
        assert "hunter2secret" not in str(refused.value)


# --- PostgreSQL specifics -------------------------------------------------------------------


async def _pg_schema(con: object) -> tuple[set[tuple[object, ...]], set[tuple[object, ...]]]:
    """The columns and indexes of a PostgreSQL database's tables (text search's index aside:
    it is made when a store opens, not by a migration), and the tables' storage options."""
    columns = {
        tuple(r)
        for r in await con.fetch(  # type: ignore[attr-defined]
            "SELECT table_name, column_name, data_type, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_schema = 'public'"
        )
    }
    indexes = {
        tuple(r)
        for r in await con.fetch(  # type: ignore[attr-defined]
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            " AND indexname <> 'items_search'"
        )
    } | {
        tuple(r)
        for r in await con.fetch(  # type: ignore[attr-defined]
            "SELECT relname, reloptions::text FROM pg_class WHERE relname = 'items'"
        )
    }
    return columns, indexes


@pytest.mark.parametrize("version", [4, 5, 6, 7, 8])
async def test_a_postgres_database_of_schema_4_to_8_migrates_to_9_and_keeps_its_data(
    pg_cluster: str, version: int
) -> None:
    """5 moves the time of each item's last change out of the items' rows (so that a
    transition updates its row in place); 6 reads an item's history through its chain of
    transitions instead of an index of the log by item; 7 keeps the fields of an item's
    search text apart; 8 gives the log an identity; 9 lets a transition keep what it followed
    when pruned. A database of schema 4 to 8, holding items (one never changed), transitions,
    an item untracked and one tracked again, and a sink, opens at 9 with all of it: every item
    with its time of last change, read in the newest-change-first order, every item's history
    whole, untracked ones too, its search text made again, and the log's identity made."""
    import asyncpg

    from scanhub.store.postgres import MIGRATIONS as PG_MIGRATIONS
    from scanhub.store.postgres import PostgresStore

    from .pg import fresh_database

    assert SCHEMA_VERSION == 9
    url = await fresh_database(pg_cluster, f"schema{version}")
    placeholder = Scan(Vendor.APPSECPLUS, "asp", "p", "app-1", Lifecycle.UNKNOWN, "")
    async with PostgresStore(url) as store:
        await store.commit([seen(scan("a"), 0, "track"), seen(scan("b"), 1, "track")])
        await store.commit(
            [seen(scan("a", Lifecycle.SUCCEEDED), 5), seen(placeholder, 6, "config")]
        )
        state = await store.sinks.open("ops", T0)
        await store.sinks.save(evolve(state, position=3))
        await untrack_and_track_again(store)
    # Take the database back to `version`.
    con = await asyncpg.connect(url)
    try:
        await con.execute(
            "ALTER TABLE transitions DROP COLUMN kept_before; DROP TABLE pruned_by_count;"
            " DROP TABLE pruning;"
            f" UPDATE scanhub_meta SET version = {version}"
        )
        if version < 8:
            await con.execute("DROP TABLE log_identity")
        if version < 7:
            await con.execute("UPDATE items SET search = replace(search, chr(31), ' ')")
        if version < 6:
            await con.execute(
                "DROP TABLE retired; CREATE INDEX transitions_key ON transitions (key, id)"
            )
        if version == 4:  # the time of the last change in the items' rows, indexed
            await con.execute(
                "ALTER TABLE items ADD COLUMN changed_at TIMESTAMPTZ;"
                " UPDATE items i SET changed_at = c.changed_at FROM item_changes c"
                " WHERE c.key = i.key;"
                " DROP TABLE item_changes;"
                " CREATE INDEX items_changed ON items (changed_at, key);"
                " ALTER TABLE items RESET (fillfactor);"
            )
        fresh_url = await fresh_database(pg_cluster, f"schema{version}_fresh")
        fresh = await asyncpg.connect(fresh_url)
        try:
            for step in PG_MIGRATIONS[:version]:
                if step:
                    await fresh.execute(step)
            await fresh.execute("CREATE TABLE scanhub_meta (version INTEGER NOT NULL)")
            assert await _pg_schema(con) == await _pg_schema(fresh)
        finally:
            await fresh.close()
    finally:
        await con.close()
    async with PostgresStore(url) as store:
        page = await store.query(ItemQuery(order="-changed"))
        a = await store.get(scan("a").key)
        p = await store.get(placeholder.key)
        ids = [t.id for t in await store.transitions()]
        sinks = await store.sinks.states(["ops"])
        histories = await histories_of(store, "abcd")
        searches = [
            (await store.query(ItemQuery(text=text))).total for text in ("app-1", "1:a", "a app-1")
        ]
        log = await store.sinks.log_id()
        # Writes go on from there.
        await store.commit([seen(evolve(scan("b"), vendor_status="later"), 9)])
        later = await store.query(ItemQuery(order="-changed", limit=1))
        b_history = [t.id for t in await store.transitions(key=scan("b").key)]
    assert [s.key for s in page.items] == [
        scan("c").key,
        scan("a").key,
        scan("b").key,
        placeholder.key,
    ]
    assert a is not None and a.last_change == T0 + timedelta(minutes=5)
    assert a.item.lifecycle is Lifecycle.SUCCEEDED and a.finished_at == T0 + timedelta(minutes=5)
    assert p is not None and p.last_change is None
    assert ids == [1, 2, 3, 4, 5, 6, 7] and [s.position for s in sinks] == [3]
    assert histories == MIGRATED_HISTORIES
    assert [s.key for s in later.items] == [scan("b").key] and b_history == [2, 8]
    assert searches == [4, 1, 0]  # both ran from a's id into its application id
    assert re.fullmatch("[0-9a-f]{16}", log)  # made by the migration, once
    con = await asyncpg.connect(url)
    try:
        assert await con.fetchval("SELECT version FROM scanhub_meta") == SCHEMA_VERSION
        texts = dict(await con.fetch("SELECT key, search FROM items"))
        assert texts == {k: search_text(scan(k.rsplit(":", 1)[1])) for k in texts}
        # The rewrite goes through the items a batch at a time, and a row whose item cannot
        # be read keeps its text (and does not stop the others').
        from scanhub.store.postgres import _rewrite_search

        await con.execute("UPDATE items SET search = 'old ' || key")
        await con.execute("UPDATE items SET item = '{' WHERE key = $1", scan("b").key)
        async with con.transaction():
            await _rewrite_search(con, batch=2)
        again = dict(await con.fetch("SELECT key, search FROM items"))
        assert again == {**texts, scan("b").key: "old " + scan("b").key}
        indexes = {r[0] for r in await con.fetch("SELECT indexname FROM pg_indexes")}
        assert "transitions_key" not in indexes
    finally:
        await con.close()


async def test_postgres_migration_9_marks_an_item_whose_last_transition_was_pruned(
    pg_cluster: str,
) -> None:
    """As SQLite's: the item's next transition says what the item was."""
    import asyncpg

    from scanhub.store.postgres import PostgresStore

    from .pg import fresh_database

    url = await fresh_database(pg_cluster, "schema8_pruned")
    a0, a1 = scan("a", Lifecycle.QUEUED), scan("a", Lifecycle.RUNNING)
    async with PostgresStore(url) as store:
        await store.commit([seen(a0, 0, "track"), seen(a1, 1), seen(scan("b"), 2, "track")])
    con = await asyncpg.connect(url)
    try:
        await con.execute(
            "ALTER TABLE transitions DROP COLUMN kept_before; DROP TABLE pruned_by_count;"
            " DROP TABLE pruning;"
            " DELETE FROM transitions WHERE id < 3; UPDATE scanhub_meta SET version = 8"
        )
    finally:
        await con.close()
    async with PostgresStore(url) as store:
        await store.commit([seen(scan("a", Lifecycle.FAILED), 3)])
        history = await store.transitions(key=a0.key)
    assert [(t.change.before and t.change.before.lifecycle) for t in history] == [Lifecycle.RUNNING]


async def test_postgres_migration_9_waits_for_a_commit_holding_the_append_lock(
    pg_cluster: str,
) -> None:
    """Migration 9 rewrites rows an older replica's commit writes (its items' last
    transitions, the ends in `retired`) in several statements: an older scanhub still running
    during the upgrade must commit before it or after it, never between them. It ran without
    the append lock every commit takes (migration 7 took it); it now waits for a commit holding
    it and goes on once the commit ends."""
    import asyncpg

    from scanhub.store.postgres import _APPEND_LOCK, PostgresStore

    from .pg import fresh_database

    url = await fresh_database(pg_cluster, "schema8_append_lock")
    async with PostgresStore(url) as store:
        await store.commit([seen(scan("a", Lifecycle.QUEUED), 0, "track")])
    older, watch = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        await older.execute(
            "ALTER TABLE transitions DROP COLUMN kept_before; DROP TABLE pruned_by_count;"
            " DROP TABLE pruning; UPDATE scanhub_meta SET version = 8"
        )
        await older.execute("SELECT pg_advisory_lock($1)", _APPEND_LOCK)  # a commit under way
        upgraded = PostgresStore(url)
        opening = asyncio.ensure_future(upgraded.open())
        try:
            waiting = (
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND (classid::bigint << 32) + objid::bigint = $1"
            )
            async with asyncio.timeout(10):
                while not await watch.fetchval(waiting, _APPEND_LOCK):
                    assert not opening.done(), "migrated while a commit held the append lock"
                    await asyncio.sleep(0.01)
            assert await watch.fetchval("SELECT version FROM scanhub_meta") == 8
            await older.execute("SELECT pg_advisory_unlock($1)", _APPEND_LOCK)
            await asyncio.wait_for(opening, 10)
        finally:
            if not opening.done():
                await older.execute("SELECT pg_advisory_unlock_all()")
            with contextlib.suppress(BaseException):
                await opening
            await upgraded.close()
        assert await watch.fetchval("SELECT version FROM scanhub_meta") == SCHEMA_VERSION
    finally:
        await older.close()
        await watch.close()


async def test_postgres_migrations_are_safe_twice_and_concurrently(pg_cluster: str) -> None:
    import asyncpg

    from scanhub.store.postgres import migrate

    from .pg import fresh_database

    url = await fresh_database(pg_cluster, "migrations")

    async def once() -> int:
        con = await asyncpg.connect(url)
        try:
            return await migrate(con)
        finally:
            await con.close()

    found = await asyncio.gather(*(once() for _ in range(6)))
    assert sorted(found) == [0] + [SCHEMA_VERSION] * 5  # exactly one process migrated
    assert await once() == SCHEMA_VERSION
    con = await asyncpg.connect(url)
    try:
        tables = {r["tablename"] for r in await con.fetch("SELECT tablename FROM pg_tables")}
    finally:
        await con.close()
    assert {"items", "transitions", "leases", "scanhub_meta"} <= tables


async def test_postgres_pages_newest_change_first_through_the_index_of_item_changes(
    pg_cluster: str,
) -> None:
    """Since schema 5 the time of an item's last change is in `item_changes`: every part of
    the "changed" order (newest first, from a cursor; never changed ones, filtered) is read by
    walking indexes in the page's order, never by scanning or sorting the items, and the pages
    are those of the order."""
    import contextlib

    import asyncpg

    from scanhub.store.postgres import PostgresStore

    from .pg import fresh_database

    url = await fresh_database(pg_cluster, "changed_plans")
    items = [scan(f"s{i:04d}") for i in range(1500)]
    # Tracked before anything is known of them: never changed.
    waiting = [
        Scan(Vendor.APPSECPLUS, "asp", f"w{i:04d}", "a", Lifecycle.UNKNOWN, "") for i in range(500)
    ]
    async with PostgresStore(url) as store:
        await store.track([(i, "track") for i in items + waiting], T0)
        await store.commit(
            [
                seen(evolve(i, vendor_status="later"), 1 + n / 1000)
                for n, i in enumerate(items[:1500])
            ]
        )
        con = await asyncpg.connect(url)
        await con.execute("ANALYZE")
        statements: list[tuple[str, tuple[object, ...]]] = []
        acquire = store._queries._acquire

        class Spy:
            def __init__(self, con: object) -> None:
                self.con = con

            async def fetch(self, sql: str, *args: object) -> object:
                statements.append((sql, args))
                return await self.con.fetch(sql, *args)  # type: ignore[attr-defined]

            async def fetchval(self, sql: str, *args: object) -> object:
                return await self.con.fetchval(sql, *args)  # type: ignore[attr-defined]

        @contextlib.asynccontextmanager
        async def spied() -> AsyncIterator[Spy]:
            async with acquire() as c:
                yield Spy(c)

        store._queries._acquire = spied  # type: ignore[method-assign]
        first = await store.query(ItemQuery(order="-changed", limit=50))
        second = await store.query(
            ItemQuery(
                order="-changed", limit=50, after=first.next_after, after_value=first.next_value
            )
        )
        never = await store.query(ItemQuery(order="changed", limit=10, lifecycle="unknown"))
        plans = []
        try:
            for sql, args in statements:
                rows = await con.fetch("EXPLAIN " + sql, *args)
                plans.append("\n".join(r[0] for r in rows))
        finally:
            await con.close()
    newest = [i.key for i in reversed(items[:1500])]
    assert [s.key for s in first.items + second.items] == newest[:100]
    assert [s.key for s in never.items] == [i.key for i in waiting[:10]]  # by key
    assert len(plans) == 3
    for plan in plans:  # indexes walked in the page's order: no scan, no sort
        assert "Index" in plan and "Seq Scan" not in plan and "Sort" not in plan, plan
    # A cursor in the changed part starts the walk of the order's index where it stands.
    walk = plans[1].split("item_changes_changed")[1]
    assert "Index Cond" in walk and "ROW(changed_at, key) <" in walk, plans[1]


async def test_postgres_leases_expire_and_replicas_never_record_twice(pg_cluster: str) -> None:
    from scanhub.store.postgres import PostgresStore

    from .pg import fresh_database

    url = await fresh_database(pg_cluster, "leases")
    a, b = PostgresStore(url, holder="a"), PostgresStore(url, holder="b")
    async with a, b:
        assert await a.lease(["asp", "jf"], 0.5) == {"asp", "jf"}
        assert await b.lease(["asp", "jf"], 0.5) == set()  # held by a
        item = scan("s1")
        (tracked,) = await b.track([(item, "api")], T0)  # any replica may track
        assert tracked.outcome is Outcome.RECORDED
        # Both saw the same state: the second records nothing (no fence needed).
        assert (await a.commit([seen(item, 1)]))[0].outcome is Outcome.UNCHANGED
        # A replica that lost the lease and answers late with an older state: nothing.
        await asyncio.sleep(0.7)  # a stops renewing: its leases expire
        assert await b.lease(["asp", "jf"], 5) == {"asp", "jf"}
        assert await a.lease(["asp"], 5) == set()
        assert (await b.commit([seen(scan("s1", Lifecycle.SUCCEEDED), 3)]))[0].id is not None
        late = await a.commit([seen(scan("s1", Lifecycle.RUNNING, message="old"), 2)])
        assert late[0].outcome is Outcome.STALE
        assert len(await a.transitions(key=item.key)) == 2
        await b.release_leases()
        assert await a.lease(["asp"], 5) == {"asp"}  # released at once on a clean stop


async def test_postgres_a_replica_saves_a_sinks_state_only_while_it_holds_its_lease(
    pg_cluster: str,
) -> None:
    """A replica stopped (SIGSTOP, a long pause) and let go on after its sink's lease ended
    wrote its stale details of the sink (status, attempts, errors) and its dead letters over
    its successor's: only the cursor and the totals could not move back."""
    from scanhub.store.postgres import PostgresStore

    from .pg import fresh_database

    url = await fresh_database(pg_cluster, "sink_leases")
    a, b = PostgresStore(url, holder="a"), PostgresStore(url, holder="b")
    async with a, b:
        assert await a.lease(["sink:ops"], 0.5) == {"sink:ops"}
        state = await a.sinks.open("ops", T0)
        assert await a.sinks.save(evolve(state, attempts=1, last_error="HTTP 500"))
        await asyncio.sleep(0.7)  # a is stopped: its lease ends
        assert await b.lease(["sink:ops"], 5) == {"sink:ops"}
        taken = await b.sinks.open("ops", T0)
        assert await b.sinks.save(evolve(taken, attempts=0, last_error=None))
        letter = DeadLetter("ops", 1, scan("a").key, 3, T0, T0, "HTTP 500", 500)
        assert not await a.sinks.save(
            evolve(state, attempts=3, status=SinkStatus.DISABLED), [letter]
        )
        (now,) = await b.sinks.states(["ops"])
        assert (now.attempts, now.last_error, now.status) == (0, None, SinkStatus.ACTIVE)
        assert await b.sinks.dead_letters("ops") == []
    async with PostgresStore(url) as single:  # one process, no holder: no lease needed
        assert await single.sinks.save(evolve(taken, attempts=2))


async def test_postgres_prunes_as_a_role_that_may_not_make_temporary_tables(
    pg_cluster: str,
) -> None:
    """A hardened database: a role that may read and write scanhub's tables, neither create
    in the schema (PostgreSQL 15's default for PUBLIC) nor make temporary tables (`REVOKE
    TEMPORARY ... FROM PUBLIC`), on a database its owner migrated. Opening it made a table if
    it was missing (a right to create is checked first), and pruning, which runs when the
    service starts, made a temporary table: the service could not start there."""
    import asyncpg

    from scanhub.store.postgres import PostgresStore

    from .pg import fresh_database

    url = await fresh_database(pg_cluster, "hardened")
    name = url.rsplit("/", 1)[1]
    async with PostgresStore(url) as store:  # migrated by its owner
        await store.commit([seen(scan("a", Lifecycle.QUEUED), 0, "track")])
        await store.commit([seen(scan("a", Lifecycle.SUCCEEDED), 1)])
    con = await asyncpg.connect(url)
    try:
        await con.execute(
            "DROP ROLE IF EXISTS hardened; CREATE ROLE hardened LOGIN;"
            f' REVOKE TEMPORARY ON DATABASE "{name}" FROM PUBLIC;'
            " GRANT ALL ON ALL TABLES IN SCHEMA public TO hardened;"
            " GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO hardened"
        )
    finally:
        await con.close()
    role = url.replace("://scanhub@", "://hardened@", 1)  # the cluster trusts local roles
    assert role != url
    con = await asyncpg.connect(role)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await con.execute("CREATE TEMP TABLE t (x int)")
    finally:
        await con.close()
    async with PostgresStore(role, retention=Retention(max_per_item=1)) as store:
        assert store._queries.trigram  # the owner's index, used
        assert await store.prune(T0) == 1
        (kept,) = await store.transitions(key=scan("a").key)
        assert kept.change.before is not None  # what it followed, kept


async def test_postgres_pruning_and_commits_go_on_while_a_pg_dump_holds_its_locks(
    pg_cluster: str,
) -> None:
    """A `pg_dump` under way holds ACCESS SHARE on every table until it ends. Pruning emptied
    its table `pruning` with a TRUNCATE, which waits for every lock on the table, and it waited
    while holding the append lock: it did not end before the dump did, and every replica's
    commits waited behind it. A DELETE waits for no reader: the pruning and a commit end while
    the dump's locks are held."""
    import asyncpg

    from scanhub.store.postgres import PostgresStore

    from .pg import fresh_database

    url = await fresh_database(pg_cluster, "pruning_under_dump")
    async with PostgresStore(url, retention=Retention(max_per_item=1)) as store:
        await store.commit([seen(scan("a", Lifecycle.QUEUED), 0, "track")])
        await store.commit([seen(scan("a", Lifecycle.RUNNING), 1)])
        dump = await asyncpg.connect(url)
        try:
            tables = [
                r["tablename"]
                for r in await dump.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            ]
            assert "pruning" in tables
            tx = dump.transaction(isolation="repeatable_read", readonly=True)  # as pg_dump's
            await tx.start()
            listed = ", ".join(f'"{t}"' for t in tables)
            await dump.execute(f"LOCK TABLE {listed} IN ACCESS SHARE MODE")
            pruning = asyncio.ensure_future(store.prune(T0))
            try:
                # Bounded waits: with a TRUNCATE the pruning waited until the dump ended.
                removed = await asyncio.wait_for(asyncio.shield(pruning), 10)
                (done,) = await asyncio.wait_for(
                    store.commit([seen(scan("a", Lifecycle.SUCCEEDED), 2)]), 10
                )
                await store.commit([seen(scan("a", Lifecycle.FAILED), 3)])
                again = await asyncio.wait_for(store.prune(T0), 10)
            finally:
                await tx.rollback()
                with contextlib.suppress(BaseException):
                    await pruning
        finally:
            await dump.close()
        history = await store.transitions(key=scan("a").key)
    assert removed == 1 and again == 2 and done.outcome is Outcome.RECORDED
    assert [t.change.after.lifecycle for t in history] == [Lifecycle.FAILED]


async def test_postgres_replicas_pruning_at_once_with_clocks_apart_both_succeed(
    pg_cluster: str,
) -> None:
    """Every replica prunes (when it starts, then hourly) by its own clock, and two may prune
    at the same moment. Both fill the one `pruning` table: the one ahead by age, in the order
    of the log, the one behind by count, item by item; each then waited for a row the other
    had put in, and PostgreSQL broke the deadlock by failing one of them
    (`DeadlockDetectedError`). A pruning holds the append lock from its start: the two run one
    after the other, both succeed, and each transition goes once.

    A row of `pruning` held by a third transaction for a moment stops the prunings within
    their statements, so that they are under way together whatever the timing."""
    import asyncpg

    from scanhub.store.postgres import PostgresStore

    from .pg import fresh_database

    url = await fresh_database(pg_cluster, "pruning_replicas")
    retention = Retention(max_age=timedelta(hours=1), max_per_item=3)
    ahead = PostgresStore(url, retention=retention, holder="a")
    behind = PostgresStore(url, retention=retention, holder="b")
    names = [f"s{n}" for n in range(5)]
    async with ahead, behind:
        for minute in range(0, 60, 10):  # six transitions an item, ids 1-30
            await ahead.commit(
                [seen(scan(n, message=f"at {minute}"), minute, "track") for n in names]
            )
        events = await events_of(ahead)
        # By age (minute 35 and older), ahead prunes the first four transitions of every item,
        # ids 1-20 in id order; behind (its minute 50: nothing by age) the first three of each
        # item by count, item by item.
        hold, watch = await asyncpg.connect(url), await asyncpg.connect(url)
        try:
            held = hold.transaction()
            await held.start()
            second = (await ahead.transitions(key=scan("s0").key))[1]
            await hold.execute("INSERT INTO pruning VALUES ($1, $2)", second.id, scan("s0").key)
            prunings = asyncio.gather(
                ahead.prune(T0 + timedelta(minutes=95)), behind.prune(T0 + timedelta(minutes=50))
            )
            try:
                async with asyncio.timeout(10):
                    while (
                        await watch.fetchval(
                            "SELECT count(*) FROM pg_stat_activity"
                            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                        )
                        < 2
                    ):
                        await asyncio.sleep(0.01)
            finally:
                await held.rollback()
            removed = await asyncio.wait_for(prunings, 30)
        finally:
            await hold.close()
            await watch.close()
        kept = await events_of(behind)
        again = [await ahead.prune(T0 + timedelta(minutes=95)), await behind.prune(T0)]
    assert sum(removed) == 20 and sorted(kept) == list(range(21, 31)) and again == [0, 0]
    assert all(events[tid] == body for tid, body in kept.items())


async def test_postgres_tells_other_replicas_what_was_tracked(pg_cluster: str) -> None:
    from scanhub.store.postgres import PostgresStore

    from .pg import fresh_database

    url = await fresh_database(pg_cluster, "tracking")
    async with PostgresStore(url, holder="a") as a, PostgresStore(url, holder="b") as b:
        heard: asyncio.Queue[frozenset[str]] = asyncio.Queue()

        async def listen() -> None:
            async for sources in a.tracking_changes():
                await heard.put(sources)

        task = asyncio.create_task(listen())
        await asyncio.sleep(0.3)
        await b.track([(scan("n1"), "api")], T0)
        assert await asyncio.wait_for(heard.get(), 5) == frozenset({"asp"})
        await b.untrack([scan("n1").key])
        assert await asyncio.wait_for(heard.get(), 5) == frozenset({"asp"})
        task.cancel()


async def test_postgres_follow_sees_every_commit_of_every_replica_in_order(
    pg_cluster: str,
) -> None:
    from scanhub.store.postgres import PostgresStore

    from .pg import fresh_database

    url = await fresh_database(pg_cluster, "follow")
    async with PostgresStore(url) as writer, PostgresStore(url) as reader:
        got: list[int] = []

        async def follow() -> None:
            async for c in reader.follow(0):
                got.append(c.id or 0)
                if len(got) == 50:
                    return

        task = asyncio.create_task(follow())
        placeholders = [
            Scan(Vendor.APPSECPLUS, "asp", f"s{i}", "app-1", Lifecycle.UNKNOWN, "")
            for i in range(50)
        ]
        await writer.track([(i, "track") for i in placeholders], T0)

        async def write(chunk: list[Scan]) -> None:
            await writer.commit([seen(i, 1) for i in chunk])

        items = [scan(f"s{i}") for i in range(50)]
        await asyncio.gather(*(write(items[k : k + 5]) for k in range(0, 50, 5)))
        await asyncio.wait_for(task, 10)
    assert got == sorted(got) and len(set(got)) == 50


def test_a_password_in_a_state_url_is_refused() -> None:
    from scanhub import ConfigError
    from scanhub.store.postgres import database_url, redact_url

    with pytest.raises(ConfigError, match="must not carry a password"):
        database_url("postgresql://u:hunter2@db/x", {})
    assert (
        database_url("postgresql://", {"SCANHUB_DATABASE_URL": "postgresql://u:p@h/d"})
        == "postgresql://u:p@h/d"
    )
    assert redact_url("postgresql://u:p4ss@h:5432/d") == "postgresql://u:***@h:5432/d"
    store = open_store("postgresql://u@h/d", holder="x")
    assert "postgresql://u@h/d" in repr(store)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@127.0.0.1:1/db?password=S3cretPW",  # libpq reads it as the password
        "postgresql://u@h/db?sslmode=require&sslpassword=S3cretPW",  # the client key's
        "postgres://:S3cretPW@h/db",
        # unencoded: Python's parser sees no password (and quotes a piece of it as a "port")
        "postgresql://scanhub:S3cretPW#1@db.invalid/scanhub",
        "postgresql://scanhub:S3cretPW?1@db.invalid/scanhub",
    ],
)
def test_a_password_in_a_state_urls_query_is_refused_and_never_shown(url: str) -> None:
    """libpq takes a password from `?password=` as from `user:password@`: refused alike on
    the command line and in a file (where `scanhub config check` says so), and never shown
    by the store's repr (the URL from SCANHUB_DATABASE_URL may carry one)."""
    from scanhub import ConfigError
    from scanhub._config import parse_config
    from scanhub.store.postgres import PostgresStore, database_url

    with pytest.raises(ConfigError, match="must not carry a password") as refused:
        database_url(url, {})
    assert "S3cretPW" not in str(refused.value)
    config = {
        "state": {"url": url},
        "source": [{"vendor": "appsecplus", "base_url": "http://h", "token_env": "K"}],
    }
    with pytest.raises(ConfigError) as checked:
        parse_config(config, "c.toml")
    assert checked.value.problems == [
        (
            "state.url",
            "a PostgreSQL URL must not carry a password; put it in SCANHUB_DATABASE_URL or "
            "PGPASSWORD",
        )
    ]
    assert "S3cretPW" not in repr(PostgresStore(url)) and "***" in repr(PostgresStore(url))


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bob:pg/S3cretPw@127.0.0.1/db",  # a parser reads bob:pg as host:port
        "postgresql://bob:S3cret/Pw@127.0.0.1:5432/db",
        "postgresql://bob:S3cretPw@127.0.0.1:99999/db",
        "postgresql://bob:S3c#retPw@127.0.0.1/db",
    ],
)
async def test_a_password_the_driver_would_misread_is_never_shown(url: str) -> None:
    """A password with an unencoded `/` ended the user info nowhere (the URL was shown
    whole, by repr and by `history --state postgresql://`), and a port past 65535 crashed
    with an OverflowError: each is a ConfigError (exit 2) showing the URL masked."""
    from scanhub.store.postgres import PostgresStore, database_url, redact_url

    assert "S3cret" not in redact_url(url) and "***@127.0.0.1" in redact_url(url)
    assert "S3cret" not in repr(PostgresStore(url))
    with pytest.raises(ConfigError) as refused:
        database_url("postgresql://", {"SCANHUB_DATABASE_URL": url})
    assert "S3cret" not in str(refused.value) and "SCANHUB_DATABASE_URL" in str(refused.value)
    with pytest.raises(ConfigError) as refused:
        await PostgresStore(url).open()  # given directly: refused before the driver is called
    assert "S3cret" not in str(refused.value) and "***@127.0.0.1" in str(refused.value)
    with pytest.raises(ConfigError) as refused:
        database_url(url, {})  # on the command line: refused as carrying a password
    assert "S3cret" not in str(refused.value)


@pytest.mark.parametrize(
    "value",
    [
        "host=127.0.0.1 port=1 user=u password=S3cretPW dbname=x",  # libpq's key=value form
        "u:S3cretPW@127.0.0.1/db",  # a URL without its scheme
        "S3cretPW",  # the password alone, in the wrong variable
    ],
)
async def test_a_database_variable_that_holds_no_url_is_never_shown(value: str) -> None:
    """SCANHUB_DATABASE_URL holding what is not a postgresql:// URL was quoted whole in the
    one line `history --state postgresql://` printed (`host=... password=...: cannot connect
    with these settings: invalid DSN ...`), password and all. It is refused naming the
    variable, showing nothing of its value; the store's repr and errors show none of it."""
    from scanhub.store.postgres import PostgresStore, database_url, redact_url

    with pytest.raises(ConfigError) as refused:
        database_url("postgresql://", {"SCANHUB_DATABASE_URL": value})
    assert str(refused.value) == (
        "load config: SCANHUB_DATABASE_URL does not hold a postgresql:// URL (its value is"
        " not shown)"
    )
    assert redact_url(value) == "a PostgreSQL URL"
    assert "S3cret" not in repr(PostgresStore(value))
    with pytest.raises(ConfigError) as refused:
        await PostgresStore(value).open()
    assert "S3cret" not in str(refused.value)


async def test_a_port_past_65535_from_the_environment_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """libpq's PGPORT reaches the socket, which raised OverflowError (a traceback)."""
    from scanhub.store.postgres import PostgresStore

    monkeypatch.setenv("PGPORT", "99999")
    with pytest.raises(ConfigError, match="cannot connect with these settings: connect"):
        await PostgresStore("postgresql://u@127.0.0.1/db").open()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("postgresql://u@[::1/db", "is not a URL libpq can read (Invalid IPv6 URL)"),
        ("postgresql://u@h:99999/db", "is not a URL libpq can read (Port out of range 0-65535)"),
        ("mysql://u@h/db", "must start with postgresql://"),
    ],
)
def test_a_state_url_libpq_cannot_read_is_a_config_error(url: str, why: str) -> None:
    from scanhub import ConfigError
    from scanhub.store.postgres import database_url, url_problem

    assert url_problem(url) == why
    with pytest.raises(ConfigError, match="in --state or \\[state\\] url " + re.escape(why)):
        database_url(url, {})


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://db1:5432,db2:5433/x",  # libpq's (and asyncpg's) list of hosts to try
        "postgresql://db1:5432,db2/x",
        "postgresql://[::1]:5432,[::2]:5433/x",
        "postgresql://u@h/d?options=-c%20a%3Db&sslmode=require",
    ],
)
def test_a_state_url_of_several_hosts_or_options_is_taken_as_given(url: str) -> None:
    from scanhub.store.postgres import database_url, redact_url, url_problem

    assert url_problem(url) is None and database_url(url, {}) == url and redact_url(url) == url


async def test_a_state_url_asyncpg_refuses_is_a_config_error_naming_it() -> None:
    """A setting asyncpg refuses before it connects (`?sslmode=bogus`): a ConfigError that
    says which URL and why, not the driver's exception."""
    from scanhub import ConfigError
    from scanhub.store.postgres import PostgresStore

    with pytest.raises(ConfigError, match="sslmode=bogus: cannot connect with these settings"):
        await PostgresStore("postgresql://u@127.0.0.1:1/db?sslmode=bogus").open()


# --- time in state: kept times, stats, activity, overdue items, orders (issue 22) -------------


def promo(pid: str, lc: Lifecycle, **kw: object) -> Promotion:
    return Promotion(Vendor.APPTRUST, "at", pid, "webshop", lc, lc.value, **kw)  # type: ignore[arg-type]


Q, R, OK, FAIL = Lifecycle.QUEUED, Lifecycle.RUNNING, Lifecycle.SUCCEEDED, Lifecycle.FAILED

#: A known history: (minute, item). Scans of "asp": a ran 8 min after 2 queued; b failed; c
#: finished straight from queued with a blocking verdict; d was first seen finished; e still
#: runs; f was cancelled while queued. Promotion p of "at" ran 30 min.
HISTORY: list[tuple[float, Scan | Promotion]] = [
    (0, scan("a", Q)),
    (0, scan("b", Q)),
    (0, scan("c", Q)),
    (0, scan("e", Q)),
    (0, scan("f", Q)),
    (0, promo("p", Q)),
    (1, scan("b", R)),
    (1, promo("p", R)),
    (2, scan("a", R)),
    (2, scan("f", Lifecycle.CANCELLED)),
    (3, scan("c", OK, verdict=Verdict.FAIL)),
    (4, scan("b", FAIL)),
    (5, scan("d", OK, verdict=Verdict.PASS)),
    (6, scan("e", R)),
    (10, scan("a", OK, verdict=Verdict.PASS)),
    (31, promo("p", OK, verdict=Verdict.PASS)),
]


async def record_history(store: Store) -> None:
    """Commit HISTORY, one commit per minute (each key once per commit), plus a placeholder
    g tracked at minute 40 that never changes."""
    for minute in sorted({m for m, _ in HISTORY}):
        await store.commit(
            [
                Observation(i.key, T0 + timedelta(minutes=m), i, None, "track")
                for m, i in HISTORY
                if m == minute
            ]
        )
    placeholder = Scan(Vendor.APPSECPLUS, "asp", "g", "app-1", Lifecycle.UNKNOWN, "")
    await store.track([(placeholder, "config")], T0 + timedelta(minutes=40))


async def test_kept_times_say_when_an_item_was_seen_running_and_finished(store: Store) -> None:
    await record_history(store)
    got = {s.item.id: s for s in await store.tracked()}
    at = {k: T0 + timedelta(minutes=m) for k, m in (("0", 0), ("2", 2), ("3", 3), ("10", 10))}
    a, c, d, e = got["a"], got["c"], got["d"], got["e"]
    assert (a.since, a.running_at, a.finished_at) == (at["0"], at["2"], at["10"])
    # Never seen running: it was seen finished at once after queued.
    assert (c.running_at, c.finished_at) == (at["3"], at["3"])
    # First seen finished: how long it took is not known.
    assert d.since == T0 + timedelta(minutes=5) and (d.running_at, d.finished_at) == (None, None)
    assert e.finished_at is None and e.running_at == T0 + timedelta(minutes=6)
    # A page of items and one item carry the same times.
    page = await store.query(ItemQuery(source="asp"))
    assert {s.item.id: s.finished_at for s in page.items}["a"] == at["10"]
    one = await store.get(a.key)
    assert one is not None and one.running_at == at["2"]
    from scanhub.store import phases

    assert phases(a.since, a.running_at, a.finished_at) == (120.0, 480.0, 600.0)
    assert phases(c.since, c.running_at, c.finished_at) == (180.0, None, 180.0)
    later = T0 + timedelta(minutes=16)
    assert phases(e.since, e.running_at, None, later) == (360.0, 600.0, 960.0)


async def test_stats_are_the_same_numbers_from_every_backend(store: Store) -> None:
    from scanhub.store import GroupStats, Spread

    await record_history(store)
    hour = T0 + timedelta(hours=1)
    got = await store.stats(since=T0, until=hour, group_by=("source", "kind"))
    assert got == [
        GroupStats(
            None, "asp", "scan", 4, 1, 1, 1,
            queued=Spread(4, 120.0, 162.0, 180.0),
            running=Spread(2, 330.0, 450.0, 480.0),
            total=Spread(4, 210.0, 492.0, 600.0),
        ),
        GroupStats(
            None, "at", "promotion", 1, 0, 0, 0,
            queued=Spread(1, 60.0, 60.0, 60.0),
            running=Spread(1, 1800.0, 1800.0, 1800.0),
            total=Spread(1, 1860.0, 1860.0, 1860.0),
        ),
    ]  # fmt: skip
    assert got[0].failure_rate == 0.25 and got[0].blocked_rate == 0.25
    # The window is on the finish time: only a and p finished from minute 5 on.
    later = await store.stats(since=T0 + timedelta(minutes=5), until=hour, group_by=())
    assert [(g.vendor, g.source, g.kind, g.finished) for g in later] == [(None, None, None, 2)]
    assert later[0].running == Spread(2, 1140.0, 1668.0, 1800.0)
    by_vendor = await store.stats(since=T0, until=hour, group_by=["vendor"])
    assert [(g.vendor, g.finished) for g in by_vendor] == [("appsecplus", 4), ("apptrust", 1)]
    assert await store.stats(since=hour, until=hour + timedelta(hours=1)) == []
    with pytest.raises(ValueError, match="group_by"):
        await store.stats(since=T0, until=hour, group_by=("application",))


async def test_activity_counts_transitions_by_bucket_and_outcome(store: Store) -> None:
    from scanhub.store import Activity

    await record_history(store)
    got = await store.activity(since=T0, until=T0 + timedelta(hours=1), bucket=600)
    ten = T0 + timedelta(minutes=10)
    assert got == [
        Activity(T0, "queued", 6),
        Activity(T0, "running", 4),
        Activity(T0, "succeeded", 1),
        Activity(T0, "blocked", 1),
        Activity(T0, "failed", 1),
        Activity(T0, "cancelled", 1),
        Activity(ten, "succeeded", 1),
        Activity(T0 + timedelta(minutes=30), "succeeded", 1),
    ]
    # The window starts within the log (found by id, not by reading the log before it).
    assert await store.activity(since=ten, until=T0 + timedelta(minutes=11), bucket=3600) == [
        Activity(T0, "succeeded", 1)
    ]
    empty = T0 + timedelta(hours=2)
    assert await store.activity(since=empty, until=empty + timedelta(hours=1), bucket=60) == []


async def test_activity_puts_a_transition_in_the_bucket_of_its_second_not_the_next(
    store: Store,
) -> None:
    """A bucket ends at its last microsecond: a transition half a millisecond before the hour
    is the hour before's (SQLite's `strftime('%s')` rounded it to the millisecond, so to the
    next hour)."""
    from scanhub.store import Activity

    late = T0 + timedelta(hours=1) - timedelta(microseconds=500)
    item = Scan(Vendor.APPSECPLUS, "asp", "x", "app-1", Lifecycle.QUEUED, "queued")
    await store.commit([Observation(item.key, late, item, None, "track")])
    got = await store.activity(since=T0, until=T0 + timedelta(hours=2), bucket=3600)
    assert got == [Activity(T0, "queued", 1)]


async def test_activity_counts_a_commit_whose_clock_is_behind_the_log(store: Store) -> None:
    """Replicas commit to one log with their own clocks (and a backlog held through an outage
    is committed late): the log's order is not quite time order. A transition observed in the
    window is counted wherever the log put it, within `LOG_TIME_SLACK` of disorder."""
    from scanhub.store import LOG_TIME_SLACK, Activity

    def ob(name: str, minute: float, lc: Lifecycle) -> Observation:
        item = Scan(Vendor.APPSECPLUS, "asp", name, "app-1", lc, lc.value)
        return Observation(item.key, T0 + timedelta(minutes=minute), item, None, "track")

    behind = LOG_TIME_SLACK.total_seconds() / 60 - 1  # minutes a clock is behind
    await store.commit([ob("x", 100, Lifecycle.QUEUED)])  # id 1, minute 100
    await store.commit([ob("y", 100 - behind, Lifecycle.QUEUED)])  # id 2, earlier
    await store.commit([ob("z", 101, Lifecycle.QUEUED)])  # id 3
    since = T0 + timedelta(minutes=100 - behind / 2)  # after y, before x
    got = await store.activity(since=since, until=since + timedelta(hours=1), bucket=7200)
    assert got == [Activity(T0, "queued", 2)]  # x and z, not y


async def test_overdue_counts_unfinished_items_under_way_since_before_a_cutoff(
    store: Store,
) -> None:
    from scanhub.store import Overdue

    await record_history(store)
    cutoff = T0 + timedelta(seconds=1)
    got = await store.overdue([("asp", "scan", cutoff), ("at", "promotion", cutoff)])
    assert got == [Overdue("appsecplus", "asp", "scan", 1)]  # e; g was tracked at minute 40
    later = T0 + timedelta(minutes=41)
    both = await store.overdue([("asp", "scan", later)])
    assert both == [Overdue("appsecplus", "asp", "scan", 2)]
    assert await store.overdue([("asp", "promotion", later)]) == []


def _ids(page_items: list[StoredItem]) -> list[str]:
    return [s.item.id for s in page_items]


async def read_all(store: Store, order: str, limit: int = 3, **filters: str) -> list[str]:
    """Every page of a query in `order`, following the cursors."""
    seen: list[str] = []
    after = value = None
    while True:
        page = await store.query(
            ItemQuery(order=order, after=after, after_value=value, limit=limit, **filters)  # type: ignore[arg-type]
        )
        seen += _ids(page.items)
        assert page.total == 8 if not filters else True
        if page.next_after is None:
            return seen
        after, value = page.next_after, page.next_value


async def test_pages_in_every_order_follow_their_cursors(store: Store) -> None:
    await record_history(store)
    newest_first = ["p", "a", "e", "d", "b", "c", "f", "g"]  # g never changed: last
    assert await read_all(store, "-changed") == newest_first
    assert await read_all(store, "-changed", limit=7) == newest_first
    assert await read_all(store, "changed") == newest_first[::-1]
    assert await read_all(store, "changed", limit=1) == newest_first[::-1]
    # By start: ties by key; d was first seen at minute 5, g tracked at 40.
    assert await read_all(store, "since") == ["a", "b", "c", "e", "f", "p", "d", "g"]
    assert await read_all(store, "-since", limit=2) == ["g", "d", "p", "f", "e", "c", "b", "a"]
    assert await read_all(store, "-vendor", limit=2) == ["p", "g", "f", "e", "d", "c", "b", "a"]
    assert await read_all(store, "lifecycle") == ["f", "b", "e", "a", "c", "d", "p", "g"]
    by_key = sorted(newest_first, key=lambda i: promo(i, Q).key if i == "p" else scan(i).key)
    assert await read_all(store, "key") == by_key
    assert await read_all(store, "-changed", source="asp") == ["a", "e", "d", "b", "c", "f", "g"]
    with pytest.raises(ValueError, match="order"):
        ItemQuery(order="nope")
    with pytest.raises(ValueError, match="isoformat"):
        ItemQuery(order="-changed", after="k", after_value="not a time")


async def test_sqlite_reads_time_in_state_through_indexes(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "s.db") as s:
        await record_history(s)
    db = sqlite3.connect(tmp_path / "s.db")

    def plan_of(sql: str, *args: object) -> str:
        return " | ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql, args))

    stats = plan_of(
        "SELECT lifecycle FROM items WHERE finished_at >= ? AND finished_at < ?", "a", "b"
    )
    assert "USING INDEX items_finished" in stats, stats
    newest = plan_of(
        "SELECT key FROM items WHERE changed_at IS NOT NULL AND (changed_at, key) < (?, ?)"
        " ORDER BY changed_at DESC, key DESC LIMIT 3",
        "a",
        "b",
    )
    assert "INDEX items_changed" in newest and "TEMP B-TREE" not in newest, newest
    overdue = plan_of(
        "SELECT vendor, COUNT(*) FROM items WHERE active AND source = ? AND since > ''"
        " AND since < ? AND kind = ? GROUP BY vendor",
        "asp",
        "x",
        "scan",
    )
    assert "items_active_since (source=? AND since>? AND since<?)" in overdue, overdue


async def test_text_search_pages_and_counts_alike_for_common_and_rare_words(store: Store) -> None:
    # "ledger" is in 20% of the messages (SQLite reads those in the page's order), "audit"
    # in 1.5% (SQLite sorts its matches): either way, the pages and totals of a plain filter.
    items = [
        scan(
            f"t{i:03d}",
            message="Ledger sync" if i % 5 == 0 else ("audit trail" if i in (7, 99, 151) else None),
            created_at=T0 - timedelta(minutes=i % 17),
        )
        for i in range(200)
    ]
    await store.track([(i, "track") for i in items], T0)
    for word, share in (("LEDGER", 40), ("audit", 3), ("t19", 10)):
        expected = [i for i in items if word.casefold() in (i.message or "").casefold() + i.id]
        assert len(expected) == share
        for order, key in (("key", lambda i: i.key), ("-since", None)):
            keys: list[str] = []
            after = value = None
            while True:
                page = await store.query(
                    ItemQuery(text=word, order=order, after=after, after_value=value, limit=7)
                )
                assert page.total == share, (word, order)
                keys += [s.key for s in page.items]
                if page.next_after is None:
                    break
                after, value = page.next_after, page.next_value
            assert sorted(keys) == sorted(i.key for i in expected), (word, order)
            if key is not None:
                assert keys == sorted(keys)
            else:  # newest start first, ties by key descending
                since = {i.key: i.created_at for i in items}
                assert keys == sorted(keys, key=lambda k: (since[k], k), reverse=True)
        # With another filter, the same words count through the items they match.
        running = await store.query(ItemQuery(text=word, lifecycle="running", limit=1))
        assert running.total == share


async def test_text_search_never_matches_across_two_fields(store: Store) -> None:
    # The searched fields are kept apart: a phrase made of one field's end and the next
    # field's start (here the application id and the message) is not in the item.
    item = scan("s1", message="checkout failed")
    await store.track([(item, "track")], T0)
    for word in ("app-1 checkout", "s1 app", "app-1", "checkout failed", "APP-1"):
        page = await store.query(ItemQuery(text=word))
        expected = [] if " " in word and word != "checkout failed" else [item.key]
        assert [s.key for s in page.items] == expected, word
        assert page.total == len(expected), word
    with pytest.raises(ValueError, match="text"):
        ItemQuery(text="app-1\x1fcheckout")


async def test_text_search_follows_what_a_vendor_tells_after_tracking(store: Store) -> None:
    # A placeholder knows its ids only; the vendor's answers name the application and the
    # scan's type later, with the message unchanged. The item is found by each from then on,
    # and by the name it was given even once a later answer gives none (as the row keeps it).
    item = scan("s1", Lifecycle.QUEUED)
    await store.track([(item, "track")], T0)

    async def found(text: str) -> int:
        page = await store.query(ItemQuery(text=text))
        assert page.total == len(page.items)
        return page.total

    assert (await found("web shop"), await found("checkmarx")) == (0, 0)
    named = evolve(item, lifecycle=Lifecycle.RUNNING, application_name="Web Shop")
    await store.commit([seen(named, 1)])
    assert (await found("web shop"), await found("checkmarx")) == (1, 0)
    typed = evolve(named, vendor_status="analysing", scan_type="Checkmarx")
    await store.commit([seen(typed, 2)])
    assert (await found("web shop"), await found("checkmarx")) == (1, 1)
    unnamed = evolve(typed, lifecycle=Lifecycle.FAILED, application_name=None, message="gone")
    await store.commit([seen(unnamed, 3)])
    assert (await found("web shop"), await found("gone"), await found("checkmarx")) == (1, 1, 1)
    assert (await store.query(ItemQuery(application="Web Shop"))).total == 1
    # An empty name is no name: the kept one stays, for the filter and the search alike.
    blank = evolve(unnamed, vendor_status="done", application_name="")
    await store.commit([seen(blank, 4)])
    stored = await store.get(item.key)
    assert stored is not None and stored.item.vendor_status == "done"  # it was committed
    assert (await store.query(ItemQuery(application="Web Shop"))).total == 1
    assert await found("web shop") == 1


def test_sqlite_text_search_keeps_to_the_page_order_for_a_common_word(tmp_path: Path) -> None:
    from scanhub.store.sqlite import _where

    db = connect(tmp_path / "s.db")
    migrate(db)
    for walk, expected, unexpected in (
        (True, "sqlite_autoindex_items", "TEMP B-TREE"),
        (False, "TEMP B-TREE", None),
    ):
        where, args = _where(ItemQuery(text="ledger"), walk=walk)
        plan = " | ".join(
            r[3]
            for r in db.execute(
                "EXPLAIN QUERY PLAN SELECT key FROM items WHERE "
                + " AND ".join(where)
                + " ORDER BY key LIMIT 101",
                args,
            )
        )
        assert expected in plan and (unexpected is None or unexpected not in plan), plan


async def test_a_page_read_again_shows_what_changed_since(store: Store) -> None:
    # Stores may remember what they decoded; a page read again after a change (a new state,
    # a failed poll, a sighting) shows the change, and one read without a change is equal.
    await store.commit([seen(scan("a", Lifecycle.QUEUED), 0, "track")])
    first = (await store.query(ItemQuery(limit=10))).items
    assert (await store.query(ItemQuery(limit=10))).items == first
    await store.commit([seen(scan("a", Lifecycle.RUNNING), 1)])
    second = (await store.query(ItemQuery(limit=10))).items
    assert [s.item.lifecycle for s in second] == [Lifecycle.RUNNING]
    assert second[0].running_at == T0 + timedelta(minutes=1)
    error = ItemError("ServerError", "HTTP 503", True, T0 + timedelta(minutes=2), None)
    await store.commit([Observation(scan("a").key, T0 + timedelta(minutes=2), None, error)])
    third = (await store.query(ItemQuery(limit=10))).items
    assert third[0].last_error == error and third[0].item == second[0].item
    assert third[0].last_observed == T0 + timedelta(minutes=2)


async def test_an_items_history_is_every_transition_of_its_key_through_untracks_and_pruning(
    make: Factory,
) -> None:
    """An item's history (`transitions(key=...)`, from any position, any length) is exactly the
    log's transitions of that key, whatever happened to it: untracked, tracked again (a new
    chain of transitions), transitions pruned by age and by count, untracked again. A seeded
    walk of such operations on every backend, checked against the whole log after each."""
    import random

    rng = random.Random(19)
    names = "abcde"
    recorded = 0
    async with make(Retention(max_age=timedelta(minutes=25), max_per_item=5)) as store:
        for minute in range(1, 121):
            name = rng.choice(names)
            op = rng.random()
            if op < 0.12:
                await store.untrack([scan(name).key])
            elif op < 0.17:
                await store.prune(T0 + timedelta(minutes=minute))
            else:
                lc = rng.choice([Lifecycle.QUEUED, Lifecycle.RUNNING])
                origin = "track" if op < 0.35 else None
                done = await store.commit(
                    [seen(scan(name, lc, message=f"m{minute}"), minute, origin)]
                )
                recorded += sum(1 for c in done if c.id is not None)
            if minute % 20:
                continue
            log = await store.transitions()
            for n in names:
                key = scan(n).key
                mine = [(t.id, t.change) for t in log if t.change.after.key == key]
                got = [(t.id, t.change) for t in await store.transitions(key=key)]
                assert got == mine, (minute, n)
                for since in [0, *(i for i, _ in mine)]:
                    later = [x for x in mine if x[0] > since][:2]
                    page = await store.transitions(key=key, since=since, limit=2)
                    assert [(t.id, t.change) for t in page] == later
        assert recorded > 40 and await store.transitions()  # the walk did write and prune
    # No end of a history is kept that the log no longer holds.
    counts = (
        "SELECT COUNT(*) FROM retired WHERE last NOT IN (SELECT id FROM transitions)",
        "SELECT COUNT(*) FROM retired",
    )
    if make.kind == "sqlite":  # type: ignore[attr-defined]
        with contextlib.closing(sqlite3.connect(store.path)) as db:  # type: ignore[attr-defined]
            dangling, retired = (db.execute(sql).fetchone()[0] for sql in counts)
        assert dangling == 0 and retired > 0
    elif make.kind == "postgres":  # type: ignore[attr-defined]
        import asyncpg

        con = await asyncpg.connect(store._url)  # type: ignore[attr-defined]
        try:
            dangling, retired = [await con.fetchval(sql) for sql in counts]
        finally:
            await con.close()
        assert dangling == 0 and retired > 0


def test_sqlite_reads_an_items_history_by_id_not_through_the_log(tmp_path: Path) -> None:
    """An item's history is read by walking its chain of transitions, each step a lookup by
    id; the log is never scanned, and it has no index by item (a write at random for each
    transition of a commit)."""

    async def write() -> None:
        async with SQLiteStore(tmp_path / "s.db") as s:
            await record_history(s)
            await s.untrack([scan("a").key])

    asyncio.run(write())
    from scanhub.store.sqlite import _HISTORY

    db = sqlite3.connect(tmp_path / "s.db")
    plan = " | ".join(
        r[3] for r in db.execute("EXPLAIN QUERY PLAN " + _HISTORY + " LIMIT ?3", (0, "k", 5))
    )
    assert "SCAN t" not in plan and "SCAN p" not in plan and "SCAN transitions" not in plan, plan
    assert "USING INTEGER PRIMARY KEY" in plan, plan
    indexes = {
        r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'transitions'")
    }
    assert indexes == {"transitions"}, indexes


@pytest.mark.parametrize("how", ["analyzed", "migrated"])
def test_sqlite_reads_an_items_history_by_id_once_the_planner_has_statistics(
    tmp_path: Path, how: str
) -> None:
    """With statistics SQLite plans differently: an ANALYZE (by hand, or a `PRAGMA optimize`)
    of a log of a few hundred transitions, or a schema-5 file whose log index `PRAGMA
    optimize` had analyzed (its statistics stay loaded in the connection that migrates it,
    which serves the whole process), must still not make an item's history read the log: no
    scan of it, no Bloom filter (built by scanning the whole log, every read), only lookups
    by id. The history is still the log's transitions of the key."""
    path = tmp_path / "s.db"
    items = [scan(f"h{i:03d}") for i in range(200)]

    async def write() -> None:
        async with SQLiteStore(path) as s:
            await s.track([(i, "track") for i in items], T0)
            await s.commit([seen(evolve(i, vendor_status="next"), 1) for i in items])
            await s.untrack([items[7].key])

    asyncio.run(write())
    with contextlib.closing(sqlite3.connect(path)) as db:
        if how == "analyzed":
            db.execute("ANALYZE")
        else:  # back to 5, its history read through the index, then closed as 5 closed it
            db.execute("DROP TABLE retired")
            db.execute("DROP TABLE log_identity")
            db.execute("ALTER TABLE transitions DROP COLUMN kept_before")
            db.execute("DROP TABLE pruned_by_count")
            db.execute("CREATE INDEX transitions_key ON transitions (key, id)")
            db.execute("PRAGMA user_version = 5")
            db.execute("SELECT id FROM transitions WHERE key = ? ORDER BY id", (items[7].key,))
            db.execute("PRAGMA optimize")
            assert db.execute("SELECT 1 FROM sqlite_stat1 WHERE tbl = 'transitions'").fetchone()
        db.commit()
    from scanhub.store.sqlite import _HISTORY

    async def read() -> tuple[str, list[int], list[int]]:
        async with SQLiteStore(path) as s:
            steps = await s._run(  # the store's own connection: the statistics it has loaded
                lambda db: db.execute(
                    "EXPLAIN QUERY PLAN " + _HISTORY + " LIMIT ?3", (0, items[7].key, 5)
                ).fetchall()
            )
            history = [t.id for t in await s.transitions(key=items[7].key)]
            log = [t.id for t in await s.transitions() if t.change.after.key == items[7].key]
        return " | ".join(r[3] for r in steps), history, log

    plan, history, log = asyncio.run(read())
    assert history == log and len(log) == 2
    assert "SCAN t" not in plan and "SCAN p" not in plan and "SCAN transitions" not in plan, plan
    assert "BLOOM" not in plan, plan


async def test_postgres_reads_an_items_history_by_id_not_through_the_log(pg_cluster: str) -> None:
    """On PostgreSQL too an item's history walks its chain of transitions by id (no scan of
    the log, which has no index by item), and is the log's transitions of that key."""
    import asyncpg

    from scanhub.store.postgres import _HISTORY, PostgresStore

    from .pg import fresh_database

    url = await fresh_database(pg_cluster, "history_plans")
    items = [scan(f"h{i:03d}") for i in range(200)]
    async with PostgresStore(url) as store:
        await store.track([(i, "track") for i in items], T0)
        for step in range(15):
            await store.commit([seen(evolve(i, vendor_status=f"s{step}"), step + 1) for i in items])
        await store.untrack([items[7].key])
        history = await store.transitions(key=items[7].key, since=5, limit=4)
        log = [t for t in await store.transitions() if t.change.after.key == items[7].key]
    con = await asyncpg.connect(url)
    try:
        await con.execute("ANALYZE")
        plan = "\n".join(
            r[0] for r in await con.fetch("EXPLAIN " + _HISTORY + " LIMIT $3", 5, items[7].key, 4)
        )
        indexes = {
            r[0]
            for r in await con.fetch(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'transitions'"
            )
        }
    finally:
        await con.close()
    assert [t.id for t in history] == [t.id for t in log if t.id > 5][:4]
    assert "Seq Scan on transitions" not in plan and "transitions_pkey" in plan, plan
    assert indexes == {"transitions_pkey"}, indexes


async def test_postgres_an_untrack_waiting_on_a_commit_keeps_the_commits_transition(
    pg_cluster: str,
) -> None:
    """Two replicas: one commits a transition of an item (its row locked until the commit
    ends) while the other untracks it (READ COMMITTED: the DELETE waits, then deletes the row
    as the commit left it). The end of history kept for the untracked item is the commit's
    transition, so the item's history is every transition the log holds of it; and an item
    tracked again afterwards starts a new chain read beside the old one."""
    import asyncpg

    from scanhub.store.postgres import PostgresStore, _commit

    from .pg import fresh_database

    url = await fresh_database(pg_cluster, "untrack_race")
    key = scan("a").key
    async with PostgresStore(url) as one, PostgresStore(url) as other:
        await one.commit([seen(scan("a", Lifecycle.QUEUED), 0, "track")])
        con, watch = await asyncpg.connect(url), await asyncpg.connect(url)
        try:
            tx = con.transaction()
            await tx.start()
            (done,), _ = await _commit(con, [seen(scan("a"), 1)])
            untrack = asyncio.create_task(other.untrack([key]))
            while not await watch.fetchval(  # the untrack waits on the item's row
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ):
                assert not untrack.done(), untrack
                await asyncio.sleep(0.01)
            await tx.commit()
            assert await untrack == [key]
        finally:
            await con.close()
            await watch.close()
        await one.commit([seen(scan("a", Lifecycle.SUCCEEDED), 2, "track")])
        history = [t.id for t in await other.transitions(key=key)]
        log = [t.id for t in await one.transitions() if t.change.after.key == key]
    assert done.id is not None and history == log and len(log) == 3


# --- SQLite: the rows a commit reads, kept between commits ---------------------------------


def test_sqlite_time_text_is_isoformat_with_z() -> None:
    """`_ts` writes a time as `isoformat(timespec="microseconds")` does, in UTC, with `Z`."""
    from hypothesis import given
    from hypothesis import strategies as st

    from scanhub.store.sqlite import _ts

    zones = st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    )

    @given(
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=zones)
    )
    def check(value: datetime) -> None:
        expected = value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"
        assert _ts(value) == expected

    check()


async def test_sqlite_commits_judge_against_what_another_connection_committed(
    tmp_path: Path,
) -> None:
    """A store keeps the rows its commits read (`RowCache`), but what another store or process
    commits to the same file in between is what its next commit is judged against."""
    path = tmp_path / "shared.db"
    x = scan("x")
    async with SQLiteStore(path) as a, SQLiteStore(path) as b:
        await a.commit([seen(x, 0, "track")])
        await a.commit([seen(evolve(x, vendor_status="step 1"), 1)])  # a holds x as at minute 1
        (done,) = await b.commit([seen(scan("x", Lifecycle.SUCCEEDED), 10)])
        assert done.outcome is Outcome.RECORDED
        # Seen by `a` before b's answer: older than what is stored now.
        (late,) = await a.commit([seen(evolve(x, vendor_status="step 2"), 5)])
        assert late.outcome is Outcome.STALE
        await b.untrack([x.key])
        (gone,) = await a.commit([seen(evolve(x, vendor_status="step 3"), 11)])
        assert gone.outcome is Outcome.UNTRACKED
        history = [t.change.after.vendor_status for t in await a.transitions(key=x.key)]
    assert history == ["running", "step 1", "succeeded"]


async def test_sqlite_a_failed_commit_leaves_nothing_of_its_plan_behind(tmp_path: Path) -> None:
    """A commit that fails part way is rolled back, and the next one is judged against what
    the file holds, not against what the failed one planned."""
    from scanhub.store import sqlite as backend

    x, y = scan("x"), scan("y")
    async with SQLiteStore(tmp_path / "s.db") as store:
        await store.commit([seen(x, 0, "track"), seen(y, 0, "track")])
        real = backend._update_states

        def broken(*args: object) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        backend._update_states = broken  # type: ignore[assignment]
        try:
            with pytest.raises(Exception, match="disk I/O error"):
                await store.commit([seen(scan("x", Lifecycle.SUCCEEDED), 1)])
        finally:
            backend._update_states = real
        (again,) = await store.commit([seen(scan("x", Lifecycle.SUCCEEDED), 1)])
        assert again.outcome is Outcome.RECORDED
        stored = await store.get(x.key)
    assert stored is not None and stored.item.lifecycle is Lifecycle.SUCCEEDED


async def test_sqlite_commits_with_a_small_row_cache_answer_as_the_memory_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the rows held between commits (a cache of 3 rows here, over 6 items), every
    commit's outcome, every item's state and the log are those of the memory store given the
    same calls: tracks, observations in and out of order, errors, untracks, a second store
    writing to the same file now and then (the memory store is given its writes too)."""
    import random

    from scanhub.store.sqlite import RowCache

    monkeypatch.setattr(RowCache, "LIMIT", 3)
    rng = random.Random(5)
    path = tmp_path / "s.db"
    names = "abcdef"
    async with MemoryStore() as oracle, SQLiteStore(path) as ours, SQLiteStore(path) as other:
        for step in range(300):
            op = rng.random()
            batch = []
            for _ in range(rng.randint(1, 4)):
                name = rng.choice(names)
                minute = step + rng.choice([0, 0, 0, -3, 0.5])
                lc = rng.choice([Lifecycle.QUEUED, Lifecycle.RUNNING, Lifecycle.SUCCEEDED])
                item = scan(
                    name,
                    lc,
                    message=rng.choice([None, "m", f"m{step}"]),
                    application_name=rng.choice([None, "Payments", "Ledger"]),
                )
                at = T0 + timedelta(minutes=minute)
                if rng.random() < 0.15:
                    batch.append(
                        Observation(
                            item.key,
                            at,
                            None,
                            ItemError("ServerError", "HTTP 503", True, at, None),
                            None,
                        )
                    )
                else:
                    batch.append(
                        Observation(item.key, at, item, None, rng.choice([None, None, "t"]))
                    )
            if op < 0.1:
                keys = [scan(rng.choice(names)).key]
                assert await ours.untrack(keys) == await oracle.untrack(keys)
                continue
            writer = other if op < 0.25 else ours
            got = await writer.commit(batch)
            want = await oracle.commit(batch)
            assert [(c.key, c.outcome, c.lifecycle) for c in got] == [
                (c.key, c.outcome, c.lifecycle) for c in want
            ], step
        mine = [(s.key, s.item, s.last_error, s.last_observed) for s in await ours.tracked()]
        theirs = [(s.key, s.item, s.last_error, s.last_observed) for s in await oracle.tracked()]
        log = [t.change.after for t in await ours.transitions()]
        expected = [t.change.after for t in await oracle.transitions()]
    assert sorted(mine, key=str) == sorted(theirs, key=str)
    assert [(i.key, i.lifecycle, i.vendor_status) for i in log] == [
        (i.key, i.lifecycle, i.vendor_status) for i in expected
    ]


async def test_sqlite_row_cache_writes_the_file_a_store_without_it_writes(
    tmp_path: Path,
) -> None:
    """The same calls on two files, one store keeping 2 rows between commits and one keeping
    none (`RowCache.LIMIT` 0): every outcome, and every column of `items` and the log, are the
    same. The calls: tracks and placeholders, observations in and out of order in UTC and
    in other zones (a wall clock across a DST fold among them), several of one key in a
    batch, errors and bare sightings, untracks, prunes, another connection writing."""
    import random
    from zoneinfo import ZoneInfo

    rng = random.Random(11)
    names = "abcde"
    new_york = ZoneInfo("America/New_York")
    # 2026-11-01 01:00-02:00 in New York happens twice (EDT, then EST).
    fold0 = datetime(2026, 11, 1, 1, 0, tzinfo=new_york)
    zones = [UTC, timezone(timedelta(hours=5, minutes=30)), new_york]
    stores = []
    for name, limit in (("cached", 2), ("plain", 0)):
        path = tmp_path / f"{name}.db"
        ours = SQLiteStore(path, retention=Retention(max_per_item=3))
        other = SQLiteStore(path)
        await ours.open()
        await other.open()
        ours._rows.LIMIT = limit  # type: ignore[misc]
        stores.append((ours, other))
    try:
        for step in range(400):
            op = rng.random()
            batch = []
            for _ in range(rng.randint(1, 4)):
                sid = rng.choice(names)
                lc = rng.choice([Lifecycle.QUEUED, Lifecycle.RUNNING, Lifecycle.SUCCEEDED])
                item = scan(
                    sid,
                    lc,
                    message=rng.choice([None, "m", f"m{step % 7}"]),
                    application_name=rng.choice([None, "Payments", "Ledger"]),
                )
                if rng.random() < 0.1:
                    item = Scan(Vendor.APPSECPLUS, "asp", sid, "app-1", Lifecycle.UNKNOWN, "")
                if rng.random() < 0.2:  # the wall clock in New York across its fold
                    minutes = rng.randint(0, 59)
                    at = (fold0 + timedelta(minutes=minutes)).replace(fold=rng.randint(0, 1))
                else:
                    minute = step + rng.choice([0, 0, 0, -3, 0.5, 0.000001])
                    at = (T0 + timedelta(minutes=minute)).astimezone(rng.choice(zones))
                roll = rng.random()
                if roll < 0.1:
                    error = ItemError("ServerError", "HTTP 503", True, at, None)
                    batch.append(Observation(item.key, at, None, error, None))
                elif roll < 0.15:
                    batch.append(Observation(item.key, at, None, None, None))
                else:
                    origin = rng.choice([None, None, "track", "discovery:asp"])
                    batch.append(Observation(item.key, at, item, None, origin))
            if op < 0.08:
                keys = [scan(rng.choice(names)).key for _ in range(rng.randint(1, 2))]
                answers = [await ours.untrack(keys) for ours, _ in stores]
                assert answers[0] == answers[1], step
                continue
            if op < 0.12:
                answers = [await ours.prune(T0) for ours, _ in stores]
                assert answers[0] == answers[1], step
                continue
            answers = []
            for ours, other in stores:
                writer = other if op < 0.25 else ours
                got = await writer.commit(batch)
                answers.append([(c.key, c.outcome, c.id, c.lifecycle) for c in got])
            assert answers[0] == answers[1], step
        tables = []
        for ours, _ in stores:
            tables.append(
                await ours._run(
                    lambda db: (
                        db.execute("SELECT * FROM items ORDER BY key").fetchall(),
                        db.execute("SELECT * FROM transitions ORDER BY id").fetchall(),
                    )
                )
            )
    finally:
        for ours, other in stores:
            await ours.close()
            await other.close()
    assert tables[0][0] == tables[1][0]
    assert tables[0][1] == tables[1][1]


async def test_sqlite_a_cached_row_judges_a_wall_clock_time_by_its_instant(
    tmp_path: Path,
) -> None:
    """Times given in a zone with a DST fold: 01:10 EST (fold=1) is 40 minutes after 01:30
    EDT, though its wall clock is earlier. The file keeps UTC, and a row this store's last
    commit left is compared as the file's row is: the result is recorded, not dropped as
    stale."""
    from zoneinfo import ZoneInfo

    new_york = ZoneInfo("America/New_York")
    first = datetime(2026, 11, 1, 1, 30, tzinfo=new_york)  # 05:30Z
    later = datetime(2026, 11, 1, 1, 10, tzinfo=new_york, fold=1)  # 06:10Z
    x = scan("x")
    async with SQLiteStore(tmp_path / "s.db") as store:
        await store.commit([Observation(x.key, first, x, None, "track")])
        done = scan("x", Lifecycle.SUCCEEDED)
        (got,) = await store.commit([Observation(x.key, later, done, None, None)])
        stored = await store.get(x.key)
    assert got.outcome is Outcome.RECORDED
    assert stored is not None and stored.item.lifecycle is Lifecycle.SUCCEEDED


async def test_sqlite_a_commit_refused_at_commit_is_rolled_back(tmp_path: Path) -> None:
    """COMMIT itself can fail and leave the transaction open (SQLite does not always roll
    back: I/O errors, a full disk; an authorizer's refusal here). The store rolls it back:
    nothing of it is read, and the next commit is not refused."""
    x = scan("x")
    async with SQLiteStore(tmp_path / "s.db") as store:
        await store.commit([seen(x, 0, "track")])
        refuse = [True]

        def authorize(action: int, arg: str | None, *_: object) -> int:
            if action == sqlite3.SQLITE_TRANSACTION and arg == "COMMIT" and refuse[0]:
                refuse[0] = False
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK

        await store._run(lambda db: db.set_authorizer(authorize))
        with pytest.raises(sqlite3.DatabaseError):
            await store.commit([seen(scan("x", Lifecycle.SUCCEEDED), 1)])
        stored = await store.get(x.key)
        assert stored is not None and stored.item.lifecycle is Lifecycle.RUNNING
        (again,) = await store.commit([seen(scan("x", Lifecycle.FAILED), 2)])
    assert again.outcome is Outcome.RECORDED


@pytest.mark.parametrize("together", [False, True], ids=["two commits", "one batch"])
async def test_times_in_a_zone_are_judged_by_their_instant_on_every_backend(
    store: Store, together: bool
) -> None:
    """01:10 EST (fold=1) is 40 minutes after 01:30 EDT though its wall clock is earlier: on
    every backend, in two commits or in one batch, the later answer is recorded, not dropped
    as stale, and the item's last observation is that instant."""
    from zoneinfo import ZoneInfo

    new_york = ZoneInfo("America/New_York")
    first = datetime(2026, 11, 1, 1, 30, tzinfo=new_york)  # 05:30Z
    later = datetime(2026, 11, 1, 1, 10, tzinfo=new_york, fold=1)  # 06:10Z
    x = scan("x")
    obs = [
        Observation(x.key, first, x, None, "track"),
        Observation(x.key, later, scan("x", Lifecycle.SUCCEEDED), None, None),
    ]
    if together:
        got = await store.commit(obs)
    else:
        got = [*(await store.commit(obs[:1])), *(await store.commit(obs[1:]))]
    stored = await store.get(x.key)
    assert [c.outcome for c in got] == [Outcome.RECORDED, Outcome.RECORDED]
    assert stored is not None and stored.item.lifecycle is Lifecycle.SUCCEEDED
    assert stored.last_observed is not None
    assert stored.last_observed.timestamp() == later.timestamp()  # the same instant


async def test_sqlite_a_stored_lifecycle_this_version_does_not_know_is_a_value_error(
    tmp_path: Path,
) -> None:
    """A row written by a newer scanhub (a lifecycle this one does not know) is refused with
    the enum's own error naming the value (a KeyError, as before, is not a ValueError)."""
    x = scan("x")
    path = tmp_path / "s.db"
    async with SQLiteStore(path) as store:
        await store.commit([seen(x, 0, "track")])
    db = connect(path)
    db.execute("UPDATE items SET lifecycle = 'paused' WHERE key = ?", (x.key,))
    db.close()
    async with SQLiteStore(path) as store:
        with pytest.raises(ValueError, match="paused"):
            await store.commit([seen(scan("x", Lifecycle.SUCCEEDED), 1)])


async def test_a_nul_character_is_stored_or_mended_never_stopping_the_recorder(
    store: Store,
) -> None:
    """`\\u0000` is valid JSON and a character, which PostgreSQL's text and jsonb refuse: the
    recorder's commit fails there, and the observation is mended (U+FFFD) instead of being
    retried as an outage; the other stores keep it as sent."""
    from scanhub.engine import Recorder

    rec = Recorder(store, backoff=(0.01, 0.01))
    task = asyncio.create_task(rec.run())
    try:
        odd = scan("nul", Lifecycle.RUNNING)
        odd = evolve(odd, message="a\x00b", raw={"message": "a\x00b"})
        other = scan("after", Lifecycle.QUEUED)
        futs = [rec.submit(seen(odd, 0, "track")), rec.submit(seen(other, 0, "track"))]
        async with asyncio.timeout(15):
            done = await asyncio.gather(*futs)
        assert [d.outcome for d in done] == [Outcome.RECORDED, Outcome.RECORDED]
        kept = await store.get(odd.key)
        assert kept is not None and kept.item.message in ("a\x00b", "a\ufffdb")
        assert rec.health().ok
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_store_object_follows_its_log_in_a_second_event_loop(kind: str, tmp_path: Path) -> None:
    # One store object used by `asyncio.run` twice (a module-level store, a test per loop):
    # `follow` waited on an Event bound to the first loop, so in the second the broadcaster
    # failed ("bound to a different event loop") and restarted again and again.
    store: Store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "s.db")

    async def once(sid: str) -> None:
        async with store:
            since = await store.last_id()
            follower = store.follow(since)
            first = asyncio.ensure_future(anext(follower))
            await asyncio.sleep(0.05)  # the follower waits for a commit
            await store.track([(scan(sid), "track")], T0)
            change = await asyncio.wait_for(first, 5)
            assert change.after.id == sid
            await follower.aclose()

    asyncio.run(once("s1"))
    asyncio.run(once("s2"))

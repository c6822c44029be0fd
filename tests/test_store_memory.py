"""The memory store's time-in-state reads (`activity`, `overdue`): the same answers as walking
everything it holds (and as SQLite), read from the window or the active items only."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scanhub import (
    Lifecycle,
    MemoryStore,
    Promotion,
    Retention,
    Scan,
    SQLiteStore,
    Vendor,
    Verdict,
)
from scanhub.store import Activity, Observation, Transition
from scanhub.store._base import assemble_activity

from .test_store import T0

LIFECYCLES = list(Lifecycle)


def naive_activity(log: list[Transition], since: Any, until: Any, bucket: int) -> list[Activity]:
    """`Store.activity` as its docstring says, by walking every transition."""
    rows: dict[tuple[int, str, str], int] = {}
    for t in log:
        at = t.change.observed_at
        if since <= at < until:
            a = t.change.after
            k = (int(at.timestamp()) // bucket * bucket, a.lifecycle.value, a.verdict.value)
            rows[k] = rows.get(k, 0) + 1
    return assemble_activity([(*k, n) for k, n in rows.items()])


#: A commit: (item number, second after T0, lifecycle, blocking verdict). Seconds are drawn
#: freely, so the log is not in time order (a later commit may carry an earlier time, as two
#: polls answered in one order and committed in the other); an observation older than its
#: item's last is stale and not recorded, as always.
steps = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 300), st.sampled_from(LIFECYCLES), st.booleans()),
    max_size=60,
)
#: Window edges on the seconds the history uses (and just outside it).
edge = st.integers(-2, 302)


@settings(max_examples=150, deadline=None)
@given(
    history=steps,
    later=steps,
    windows=st.lists(st.tuples(edge, edge), min_size=1, max_size=4),
    bucket=st.sampled_from([1, 7, 60, 3600]),
    prune=st.none() | st.integers(0, 300),
)
async def test_memory_activity_is_the_walk_over_its_log(
    history: list[tuple[int, int, Lifecycle, bool]],
    later: list[tuple[int, int, Lifecycle, bool]],
    windows: list[tuple[int, int]],
    bucket: int,
    prune: int | None,
) -> None:
    """On a random history (committed out of time order, pruned by age half way or not), each
    window [since, until) counts what walking the whole log counts, its edges included."""
    store = MemoryStore(retention=Retention(max_age=timedelta(seconds=100)))

    async def commit(part: list[tuple[int, int, Lifecycle, bool]]) -> None:
        for n, second, lc, blocks in part:
            verdict = Verdict.FAIL if blocks else Verdict.NONE
            item = Scan(Vendor.APPSECPLUS, "asp", f"s{n}", "app", lc, lc.value, verdict=verdict)
            await store.commit(
                [Observation(item.key, T0 + timedelta(seconds=second), item, None, "track")]
            )

    await commit(history)
    if prune is not None:
        await store.prune(T0 + timedelta(seconds=prune))
    await commit(later)
    log = await store.transitions()
    for a, b in windows:
        since, until = T0 + timedelta(seconds=a), T0 + timedelta(seconds=b)
        assert await store.activity(since=since, until=until, bucket=bucket) == naive_activity(
            log, since, until, bucket
        ), (a, b)


class Counted(list[Any]):
    """A list that counts the elements read from it (iterated, indexed, sliced, bisected)."""

    read = 0

    def __iter__(self) -> Any:
        for x in super().__iter__():
            Counted.read += 1
            yield x

    def __getitem__(self, i: Any) -> Any:
        found = super().__getitem__(i)
        Counted.read += len(found) if isinstance(i, slice) else 1
        return found


async def test_memory_activity_reads_the_window_not_the_whole_log() -> None:
    """A window of 10 transitions at the end of a log of 3000 reads about those 10 (and a
    bisection's few), not the 3000."""
    store = MemoryStore()
    for s in range(3000):
        item = Scan(Vendor.APPSECPLUS, "asp", f"s{s}", "app", Lifecycle.QUEUED, "q")
        await store.commit([Observation(item.key, T0 + timedelta(seconds=s), item, None, "track")])
    for name, value in list(vars(store).items()):
        if isinstance(value, list):
            setattr(store, name, Counted(value))
    Counted.read = 0
    since = T0 + timedelta(seconds=2990)
    got = await store.activity(since=since, until=since + timedelta(hours=1), bucket=3600)
    assert sum(a.n for a in got) == 10
    assert Counted.read < 60, Counted.read


#: Items: (vendor, source, kind, lifecycle, seconds since T0 it started, with a creation time).
items = st.lists(
    st.tuples(
        st.sampled_from([Vendor.APPSECPLUS, Vendor.IQ]),
        st.sampled_from(["a", "b"]),
        st.sampled_from(["scan", "promotion"]),
        st.sampled_from(LIFECYCLES),
        st.integers(0, 6),
        st.booleans(),
    ),
    max_size=30,
)


async def hold(store: Any, found: list[tuple[Vendor, str, str, Lifecycle, int, bool]]) -> None:
    for n, (vendor, source, kind, lc, second, created) in enumerate(found):
        at = T0 + timedelta(seconds=second)
        cls = Scan if kind == "scan" else Promotion
        kw = {"created_at": at} if created else {}
        item = cls(vendor, source, f"i{n}", "app", lc, lc.value, **kw)  # type: ignore[arg-type]
        seen = T0 + timedelta(seconds=200) if created else at
        await store.commit([Observation(item.key, seen, item, None, "track")])


@settings(max_examples=60, deadline=None)
@given(
    found=items,
    cutoffs=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["scan", "promotion"]),
            st.integers(-1, 7),
        ),
        unique_by=lambda c: (c[0], c[1]),
    ),
)
async def test_memory_overdue_answers_as_sqlite(
    found: list[tuple[Vendor, str, str, Lifecycle, int, bool]],
    cutoffs: list[tuple[str, str, int]],
) -> None:
    """The same items in memory and in SQLite: the same overdue counts, in the same order
    (each (source, kind) asked in turn, its vendors in order), cutoffs on the start times
    included."""
    asked = [(s, k, T0 + timedelta(seconds=c)) for s, k, c in cutoffs]
    with tempfile.TemporaryDirectory() as tmp:
        async with SQLiteStore(Path(tmp) / "state.db") as sql:
            await hold(sql, found)
            expected = await sql.overdue(asked)
    memory = MemoryStore()
    await hold(memory, found)
    assert await memory.overdue(asked) == expected


class CountedItems(dict[str, Any]):
    """A dict whose values are counted as they are read."""

    read = 0

    def values(self) -> Any:
        for v in super().values():
            CountedItems.read += 1
            yield v


async def test_memory_overdue_reads_each_item_once_whatever_the_cutoffs() -> None:
    """Stuck counts for 20 sources and kinds over 100 items read the 100 once, not 20 times."""
    store = MemoryStore()
    await hold(
        store,
        [
            (Vendor.APPSECPLUS, f"s{n % 10}", "scan", Lifecycle.RUNNING, n, False)
            for n in range(100)
        ],
    )
    store._items = CountedItems(store._items)
    cutoff = T0 + timedelta(seconds=50)
    asked = [(f"s{s}", k, cutoff) for s in range(10) for k in ("scan", "promotion")]
    got = await store.overdue(asked)
    assert sum(o.n for o in got) == 50
    assert CountedItems.read <= 100, CountedItems.read

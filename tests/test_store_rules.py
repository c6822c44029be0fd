"""The rules every store shares (`scanhub.store._base`), on their own and fast enough for mutation
testing to run per mutant: pages read in every order through the memory and SQLite stores (the
in-memory sort and the SQL parts must agree, none skipped or repeated across pages), what a
cursor refuses, time-in-state phases and their percentiles, the activity outcome of a transition,
what text search matches, and how an item is kept and read back. (tests/test_store.py checks the
same stores end to end, through every backend; tests/test_plan.py the commit rule.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import scanhub.store._base as base_module
from scanhub import Lifecycle, MemoryStore, Promotion, Scan, SQLiteStore, Vendor, Verdict
from scanhub._changes import Change, ItemError
from scanhub.store import Observation, Store
from scanhub.store._base import (
    ORDERS,
    Activity,
    GroupStats,
    ItemQuery,
    Retention,
    Spread,
    StoredItem,
    Transition,
    assemble_activity,
    assemble_stats,
    change_of,
    item_from_json,
    item_from_text,
    item_json,
    outcome_of,
    parse_time,
    percentile,
    phases,
    raw_json,
    search_text,
    since_of,
    spread,
    stored_search_text,
    time_text,
    value_text,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
L = Lifecycle


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


# --- pages in every order -------------------------------------------------------------------------
# Five items whose orders all differ from one another somewhere:
#   A2  scan  asp  app-a  queued             none  created 1'  committed 11'  (named "zz")
#   A4  scan  asp  app-a  (placeholder)       none  tracked 2' (never changed)
#   A5  scan  asp  app-a  succeeded          fail  created 1'  committed 10'
#   B1  scan  asp  app-b  running            none  created 3'  committed 10'
#   P   promotion zz app-0 (placeholder)     none  tracked 5' (never changed)
# Keys sort A2 < A4 < A5 < B1 < P ("appsecplus:asp:scan:..." < "appsecplus:zz:...").

V = Vendor.APPSECPLUS
ITEMS = {
    "A2": (
        Scan(V, "asp", "2", "app-a", L.QUEUED, "queued", created_at=at(1), application_name="zz"),
        11,
    ),
    "A4": (Scan(V, "asp", "4", "app-a", L.UNKNOWN, ""), 2),
    "A5": (
        Scan(V, "asp", "5", "app-a", L.SUCCEEDED, "done", verdict=Verdict.FAIL, created_at=at(1)),
        10,
    ),
    "B1": (Scan(V, "asp", "1", "app-b", L.RUNNING, "running", created_at=at(3)), 10),
    "P": (Promotion(V, "zz", "3", "app-0", L.UNKNOWN, ""), 5),
}
LABEL = {item.key: label for label, (item, _) in ITEMS.items()}

ASCENDING = {
    "key": ["A2", "A4", "A5", "B1", "P"],
    "changed": ["A4", "P", "A5", "B1", "A2"],  # never changed first; 10' tie by key
    "since": ["A2", "A5", "A4", "B1", "P"],  # 1' tie by key; a placeholder: since tracked
    "vendor": ["A2", "A4", "A5", "B1", "P"],
    "source": ["A2", "A4", "A5", "B1", "P"],
    "kind": ["P", "A2", "A4", "A5", "B1"],
    "lifecycle": ["A2", "B1", "A5", "A4", "P"],
    "verdict": ["A5", "A2", "A4", "B1", "P"],
    "application": ["P", "A2", "A4", "A5", "B1"],  # by id, not by name
}
assert set(ASCENDING) == set(ORDERS)


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "s.db")
    async with s:
        for item, minute in ITEMS.values():
            await s.commit([Observation(item.key, at(minute), item, None, "track")])
        yield s


async def read_all(store: Store, order: str, limit: int) -> list[str]:
    labels: list[str] = []
    after = value = None
    for _ in range(10):
        page = await store.query(
            ItemQuery(order=order, limit=limit, after=after, after_value=value)
        )
        assert page.total == 5
        labels += [LABEL[s.key] for s in page.items]
        if page.next_after is None:
            return labels
        after, value = page.next_after, page.next_value
    raise AssertionError("more pages than items")


@pytest.mark.parametrize("limit", [1, 2, 5])
@pytest.mark.parametrize("order", sorted(ORDERS))
async def test_pages_follow_each_order_both_ways(store: Store, order: str, limit: int) -> None:
    assert await read_all(store, order, limit) == ASCENDING[order]
    assert await read_all(store, "-" + order, limit) == ASCENDING[order][::-1]


@pytest.mark.parametrize(
    ("order", "cursor"),
    [
        ("changed", "A4"),  # inside the empty part (first when ascending)
        ("changed", "P"),  # the end of the empty part
        ("changed", "A5"),  # inside the filled part
        ("-changed", "A5"),
        ("-changed", "B1"),
        ("-changed", "P"),  # inside the empty part (last when descending)
        ("since", "A5"),
        ("-since", "A4"),
        ("lifecycle", "B1"),
        ("-verdict", "A4"),
        ("key", "A4"),
        ("-key", "A4"),
    ],
)
async def test_a_page_continues_right_after_its_cursor(
    store: Store, order: str, cursor: str
) -> None:
    """The cursor a page gives (key and value), taken from any place in the order."""
    name = order.lstrip("-")
    expected = ASCENDING[name] if order == name else ASCENDING[name][::-1]
    label = cursor
    stop = expected.index(label)
    # The page that ends with `label`: read the first stop+1 items, then the rest.
    first = await store.query(ItemQuery(order=order, limit=stop + 1))
    assert [LABEL[s.key] for s in first.items] == expected[: stop + 1]
    assert first.next_after is not None and LABEL[first.next_after] == label
    rest = await store.query(
        ItemQuery(order=order, after=first.next_after, after_value=first.next_value, limit=10)
    )
    assert [LABEL[s.key] for s in rest.items] == expected[stop + 1 :]
    assert rest.next_after is None and rest.next_value is None


async def test_a_page_cursor_carries_the_order_value_as_text(store: Store) -> None:
    page = await store.query(ItemQuery(order="since", limit=1))
    assert page.next_value == "2026-11-01T12:01:00.000000Z"
    page = await store.query(ItemQuery(order="lifecycle", limit=1))
    assert page.next_value == "queued"
    page = await store.query(ItemQuery(order="changed", limit=1))  # A4: never changed
    assert page.next_value is None
    page = await store.query(ItemQuery(order="key", limit=1))
    assert page.next_value is None and page.next_after is not None


@pytest.mark.parametrize("order", ["lifecycle", "since", "-application"])
async def test_a_cursor_without_the_value_its_order_needs_is_refused(
    store: Store, order: str
) -> None:
    with pytest.raises(ValueError, match=f"a cursor of the {order.lstrip('-')} order carries a"):
        await store.query(ItemQuery(order=order, after=ITEMS["A2"][0].key))


def test_a_query_names_a_known_order_and_a_time_cursor_is_a_time() -> None:
    with pytest.raises(ValueError, match="order: expected") as info:
        ItemQuery(order="-size")
    assert str(info.value) == (
        "order: expected one of key, changed, since, vendor, source, kind, lifecycle, verdict, "
        "application, got '-size'"
    )
    with pytest.raises(ValueError, match="order: expected"):
        ItemQuery(order="X-key")
    with pytest.raises(ValueError, match="Invalid isoformat"):
        ItemQuery(order="-changed", after="k", after_value="yesterday")
    ItemQuery(order="lifecycle", after="k", after_value="yesterday")  # not a time order
    assert ItemQuery(order="-since").sort == ("since", True)
    assert ItemQuery(order="since").sort == ("since", False)
    assert ItemQuery().counted and ItemQuery(vendor="iq", lifecycle="queued").counted
    assert not ItemQuery(application="a").counted and not ItemQuery(text="abc").counted


# --- times as cursors carry them ------------------------------------------------------------------


def test_times_are_written_in_utc_with_microseconds_and_read_only_with_a_zone() -> None:
    plus2 = datetime(2026, 11, 1, 14, 0, 0, 5, tzinfo=UTC).astimezone(
        datetime.fromisoformat("2026-01-01T00:00:00+02:00").tzinfo
    )
    assert time_text(plus2) == "2026-11-01T14:00:00.000005Z"
    assert value_text(plus2) == "2026-11-01T14:00:00.000005Z"
    assert value_text("queued") == "queued" and value_text(3) == "3" and value_text(None) is None
    assert parse_time("2026-11-01T14:00:00.000005Z") == datetime(2026, 11, 1, 14, 0, 0, 5, UTC)
    assert parse_time("2026-11-01T16:00:00+02:00") == datetime(2026, 11, 1, 14, tzinfo=UTC)
    assert parse_time("2026-11-01T16:00:00+02:00").tzinfo is UTC
    with pytest.raises(ValueError, match="without a zone") as info:
        parse_time("2026-11-01T14:00:00")
    assert str(info.value) == "'2026-11-01T14:00:00': a time without a zone"


def test_cursor_times_are_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        assert time_text(at(0)) == "2026-11-01T12:00:00.000000Z"
    finally:
        monkeypatch.undo()
        time.tzset()


# --- time in state ----------------------------------------------------------------------------


def test_phases_of_an_item_seen_queued_running_and_finished() -> None:
    assert phases(at(0), at(2), at(10)) == (120.0, 480.0, 600.0)


def test_phases_of_an_item_never_seen_running_are_queued_until_finished() -> None:
    assert phases(at(0), None, at(3)) == (180.0, None, 180.0)
    # First seen past queued already finished (running_at == finished_at): not seen running.
    assert phases(at(0), at(3), at(3)) == (180.0, None, 180.0)


def test_phases_of_an_unfinished_item_run_until_now_only_when_asked() -> None:
    assert phases(at(0), at(6), None) == (360.0, None, None)
    assert phases(at(0), at(6), None, at(16)) == (360.0, 600.0, 960.0)
    assert phases(at(0), None, None, at(16)) == (960.0, None, 960.0)
    assert phases(at(0), None, None) == (None, None, None)
    assert phases(None, at(1), at(2), at(3)) == (None, None, None)


def test_phases_never_go_negative() -> None:
    # A vendor creation time after scanhub saw it finish (clocks apart).
    assert phases(at(5), None, at(3)) == (0.0, None, 0.0)


def test_percentiles_are_interpolated_linearly() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.9) == pytest.approx(3.7)
    assert percentile([0.0, 10.0, 20.0, 30.0, 40.0, 50.0], 0.9) == pytest.approx(45.0)
    assert percentile([1.0, 2.0, 3.0], 1.0) == 3.0
    assert percentile([1.0, 2.0, 3.0], 0.0) == 1.0


def test_a_spread_sorts_and_rounds_to_the_millisecond() -> None:
    assert spread([]) == Spread(0, None, None, None)
    assert spread([4.0, 1.0, 3.0, 2.0]) == Spread(4, 2.5, 3.7, 4.0)
    assert spread([0.12345, 0.0001]) == Spread(2, 0.062, 0.111, 0.123)


def test_stats_from_sql_rows() -> None:
    totals = [("iq", "scan", 4, 1, None, 2), ("iq", "promotion", 0, 0, 0, 0)]
    spreads = [
        ("queued", "iq", "scan", 4, 1.23456, "2.5", 3),
        ("total", "iq", "scan", 3, None, None, 10),
        ("running", "other", "scan", 9, 1, 1, 1),
    ]
    got = assemble_stats(["source", "kind"], totals, spreads)
    assert got == [
        GroupStats(
            None, "iq", "scan", 4, 1, 0, 2,
            Spread(4, 1.235, 2.5, 3.0), Spread(), Spread(3, None, None, 10.0),
        ),
        GroupStats(None, "iq", "promotion", 0, 0, 0, 0, Spread(), Spread(), Spread()),
    ]  # fmt: skip
    assert got[0].failure_rate == 0.25 and got[0].blocked_rate == 0.5
    assert got[1].failure_rate == 0.0 and got[1].blocked_rate == 0.0
    by_vendor = assemble_stats(["vendor"], [("sonarqube", 1, 0, 1, 0)], [])
    assert by_vendor == [
        GroupStats("sonarqube", None, None, 1, 0, 1, 0, Spread(), Spread(), Spread())
    ]


@pytest.mark.parametrize(
    ("lifecycle", "verdict", "outcome"),
    [
        ("succeeded", "fail", "blocked"),
        ("succeeded", "error", "blocked"),
        ("succeeded", "warn", "succeeded"),
        ("succeeded", "none", "succeeded"),
        ("failed", "fail", "failed"),
        ("expired", "none", "cancelled"),
        ("cancelled", "none", "cancelled"),
        ("queued", "none", "queued"),
        ("running", "none", "running"),
        ("unknown", "none", "unknown"),
        ("paused", "none", "unknown"),
    ],
)
def test_the_outcome_a_transition_counts_as(lifecycle: str, verdict: str, outcome: str) -> None:
    assert outcome_of(lifecycle, verdict) == outcome


def test_activity_from_sql_rows_adds_up_per_bucket_and_outcome_in_order() -> None:
    rows = [
        (120, "succeeded", "fail", 1),
        (60, "expired", "none", 2),
        ("60", "cancelled", "none", "3"),
        (60, "queued", "none", 1),
        (60, "succeeded", "error", 4),
        (120, "running", "none", 5),
    ]
    start = datetime.fromtimestamp(60, UTC)
    later = datetime.fromtimestamp(120, UTC)
    assert assemble_activity(rows) == [
        Activity(start, "queued", 1),
        Activity(start, "blocked", 4),
        Activity(start, "cancelled", 5),
        Activity(later, "running", 5),
        Activity(later, "blocked", 1),
    ]


# --- how items are kept -----------------------------------------------------------------------


def test_text_search_covers_ids_names_message_and_a_promotion_version_and_stages() -> None:
    promotion = Promotion(
        V, "ZZ", "P-1", "App-0", L.RUNNING, "Busy",
        message="Waiting On Gate", application_name="Web Shop", version="1.2.0",
        source_stage="DEV", target_stage="QA",
    )  # fmt: skip
    # The fields are kept apart by U+001F, which no search may hold.
    assert search_text(promotion).split("\x1f") == [
        "appsecplus:zz:promotion:app-0:1.2.0:p-1", "p-1", "app-0", "web shop", "waiting on gate",
        "1.2.0", "qa", "dev",
    ]  # fmt: skip
    scan = Scan(V, "asp", "S", "a", L.QUEUED, "Queued", scan_type="SAST")
    assert search_text(scan) == "appsecplus:asp:scan:a:s\x1fs\x1fa\x1fsast"


def test_search_text_takes_the_kept_application_name_when_the_item_gives_none() -> None:
    named = Scan(V, "asp", "s", "a", L.RUNNING, "Busy", application_name="Shop")
    unnamed = Scan(V, "asp", "s", "a", L.RUNNING, "Busy")
    assert search_text(unnamed, "Old Shop").split("\x1f") == [
        "appsecplus:asp:scan:a:s",
        "s",
        "a",
        "old shop",
    ]
    assert search_text(named, "Old Shop") == search_text(named) != search_text(unnamed)


def test_search_text_reads_a_subclass_of_an_item_as_its_base() -> None:
    """An adapter's own item class (a subclass) is searched by every field its bases are."""
    import attrs

    @attrs.frozen(slots=False)
    class MyPromotion(Promotion):
        ring: str = "canary"

    mine = MyPromotion(V, "zz", "P-1", "App-0", L.RUNNING, "Busy", version="1.2", target_stage="QA")
    plain = Promotion(V, "zz", "P-1", "App-0", L.RUNNING, "Busy", version="1.2", target_stage="QA")
    assert search_text(mine) == search_text(plain)
    assert search_text(mine).split("\x1f")[-2:] == ["1.2", "qa"]


def test_migration_7_reads_a_stored_row_or_leaves_it(caplog: pytest.LogCaptureFixture) -> None:
    item = Scan(V, "asp", "s", "a", L.RUNNING, "Busy", message="m")
    assert stored_search_text("k", item_json(item), "Shop") == search_text(item, "Shop")
    assert stored_search_text("k", item_json(item), None) == search_text(item)
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        assert stored_search_text("the-key", "{", "Shop") is None
        assert stored_search_text("k2", '{"vendor": 3}', None) is None
    assert [r.getMessage() for r in caplog.records] == [
        "scanhub: the-key: search text not rewritten (its item cannot be read)",
        "scanhub: k2: search text not rewritten (its item cannot be read)",
    ]


def test_a_search_may_not_hold_the_field_separator() -> None:
    with pytest.raises(ValueError, match=r"^text: must not contain U\+001F \(it separates"):
        ItemQuery(text="a\x1fb")
    assert ItemQuery(text="a b").text == "a b"


@pytest.mark.parametrize("text", ["a", "ab", "\U0001f600x"])
def test_a_search_holds_three_characters_at_least(text: str) -> None:
    """Every store finds a substring through an index of its 3-character pieces: a shorter
    search would read every item (characters are code points: an emoji is one)."""
    with pytest.raises(ValueError, match=r"^text: at least 3 characters \(a search is read"):
        ItemQuery(text=text)
    assert ItemQuery(text="abc").text == "abc"
    assert ItemQuery(text="").text is None  # no search
    assert ItemQuery(text="\U0001f600xy").text == "\U0001f600xy"


def test_an_item_is_kept_as_compact_json_and_its_payload_apart() -> None:
    item = Scan(
        V, "asp", "s1", "a", L.FAILED, "Failé", message="no",
        finished_at=at(1), raw={"état": "failed", "n": [1, 2]},
    )  # fmt: skip
    text = item_json(item)
    assert " " not in text and "raw" not in text and "état" not in text
    assert raw_json(item) == '{"état":"failed","n":[1,2]}'
    assert raw_json(Scan(V, "asp", "s1", "a", L.FAILED, "")) is None
    back = item_from_text(text, raw_json(item))
    assert back == item and back.raw == {"état": "failed", "n": [1, 2]}
    assert item_from_text(text).raw is None


def test_an_item_read_from_json_keeps_the_payload_given() -> None:
    item = Scan(V, "asp", "s1", "a", L.FAILED, "failed", message="no")
    read = item_from_json(json.loads(item_json(item)), {"état": "failed"})
    assert read == item and read.raw == {"état": "failed"}
    assert item_from_json(json.loads(item_json(item))).raw is None


def test_a_logged_transition_reads_back_as_a_change() -> None:
    before = Scan(V, "asp", "s1", "a", L.QUEUED, "queued")
    after = Scan(V, "asp", "s1", "a", L.RUNNING, "running")
    first = change_of(1, at(1), json.loads(item_json(before)), None)
    assert first == Change(None, before, at(1), 1)
    second = change_of(2, at(2), json.loads(item_json(after)), json.loads(item_json(before)))
    assert second == Change(before, after, at(2), 2)
    assert Transition(2, second).key == after.key


def test_small_facts_of_the_store_model() -> None:
    item = Scan(V, "asp", "s1", "a", L.QUEUED, "queued", created_at=at(-5))
    assert since_of(item, at(1)) == at(-5)
    assert since_of(Scan(V, "asp", "s1", "a", L.QUEUED, "q"), at(1)) == at(1)
    ob = Observation.of(item, "api", at(3))
    assert ob == Observation(item.key, at(3), item, None, "api")
    before = datetime.now(UTC)
    now = Observation.of(item)
    assert now.origin is None and now.item is item and now.error is None
    assert before <= now.observed_at <= datetime.now(UTC)
    stored = StoredItem(item, "config", last_error=ItemError("E", "m", True, at(0)))
    assert stored.key == item.key and stored.how == "config"
    assert Retention().keeps_everything
    assert not Retention(max_age=timedelta(days=1)).keeps_everything
    assert not Retention(max_per_item=3).keeps_everything


# --- following the log ----------------------------------------------------------------------------


class LogStore(MemoryStore):
    """A memory store whose log is `log` (another process may append to it), recording what
    each read of the log asked for."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.log = [self.logged(i) for i in range(1, n + 1)]
        self.reads: list[tuple[int, int | None]] = []

    @staticmethod
    def logged(i: int) -> Transition:
        after = Scan(V, "asp", str(i), "a", L.RUNNING, "running")
        return Transition(i, Change(None, after, T0, i))

    async def transitions(
        self, *, since: int = 0, key: str | None = None, limit: int | None = None
    ) -> list[Transition]:
        self.reads.append((since, limit))
        found = [t for t in self.log if t.id > since]
        return found if limit is None else found[:limit]


async def test_following_reads_a_backlog_in_pages_of_a_thousand_without_pausing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float | None] = []
    real_timeout = asyncio.timeout

    def timeout(delay: float | None) -> asyncio.Timeout:
        waits.append(delay)
        return real_timeout(0.01)  # the test does not wait a second

    monkeypatch.setattr(base_module.asyncio, "timeout", timeout)
    store = LogStore(2500)
    follow = store.follow(1)
    ids = []
    async with real_timeout(5):
        for _ in range(2499):
            ids.append((await anext(follow)).id)
        assert ids == list(range(2, 2501))
        assert store.reads == [(1, 1000), (1001, 1000), (2001, 1000)]
        assert waits == []  # a full page is followed by the next at once
        # Caught up: it looks again every second, and sees what another process appended.
        store.log.append(LogStore.logged(2501))
        assert (await anext(follow)).id == 2501
    await follow.aclose()
    assert waits[0] == 1.0 and store.reads[3] == (2500, 1000)


async def test_following_wakes_at_once_on_a_commit_of_this_process() -> None:
    store = MemoryStore()
    item = Scan(V, "asp", "s1", "a", L.QUEUED, "queued")
    await store.commit([Observation(item.key, at(0), item, None, "track")])
    follow = store.follow(0)
    async with asyncio.timeout(0.5):  # well under the second it would look again
        assert (await anext(follow)).after == item
        waiting = asyncio.ensure_future(anext(follow))
        await asyncio.sleep(0)
        running = Scan(V, "asp", "s1", "a", L.RUNNING, "running")
        await store.commit([Observation(item.key, at(1), running)])
        change = await waiting
    assert change.before == item and change.after == running and change.id == 2
    await follow.aclose()


# --- tracking and leases --------------------------------------------------------------------------


async def test_tracking_commits_each_item_with_its_origin_now_or_at_the_time_given() -> None:
    store = MemoryStore()
    queued = Scan(V, "asp", "s1", "a", L.QUEUED, "queued")
    placeholder = Scan(V, "asp", "s2", "a", L.UNKNOWN, "")
    done = await store.track([(queued, "config"), (placeholder, "api")], now=at(3))
    assert [(c.key, c.outcome.value) for c in done] == [
        (queued.key, "recorded"),
        (placeholder.key, "tracked"),
    ]
    first, second = await store.get(queued.key), await store.get(placeholder.key)
    assert first is not None and (first.origin, first.last_observed) == ("config", at(3))
    assert second is not None and (second.origin, second.last_observed) == ("api", at(3))
    before = datetime.now(UTC)
    other = Scan(V, "asp", "s3", "a", L.RUNNING, "running")
    await store.track([(other, "discovery:asp")])
    third = await store.get(other.key)
    assert third is not None and third.origin == "discovery:asp"
    assert third.last_observed is not None
    assert before <= third.last_observed <= datetime.now(UTC)


async def test_a_store_one_process_owns_holds_every_lease() -> None:
    assert await MemoryStore().lease(["asp", "iq"], 30.0) == {"asp", "iq"}
    assert await MemoryStore().lease([], 30.0) == set()


async def test_limits_are_refused_naming_the_rule() -> None:
    """(test_store.py holds every backend to it; here, in mutmut's selection, the messages.)"""
    with pytest.raises(ValueError, match=r"^limit: expected at least 1, got 0$"):
        ItemQuery(limit=0)
    store = MemoryStore()
    with pytest.raises(ValueError, match=r"^limit: expected None or at least 0, got -1$"):
        await store.transitions(limit=-1)
    assert await store.transitions(limit=0) == []


# --- pruning keeps what it keeps as it was ---------------------------------------------------

#: A step of a history: (item number, lifecycle, untrack it first), a minute after the last.
prune_steps = st.lists(
    st.tuples(
        st.integers(0, 3), st.sampled_from(list(Lifecycle)), st.integers(0, 5).map(lambda n: n == 0)
    ),
    max_size=25,
)
#: An item (0) whose last transition ages out while another moves, then moves itself.
_AGED = [(0, Lifecycle.QUEUED, False)] + [
    (1, Lifecycle.RUNNING, False),
    (1, Lifecycle.QUEUED, False),
] * 3


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=prune_steps,
    after=prune_steps,
    again=prune_steps,
    age=st.none() | st.integers(1, 12),
    per_item=st.none() | st.integers(1, 4),
    backend=st.sampled_from(["memory", "sqlite", "sqlite walked", "sqlite walk cut short"]),
)
@example(_AGED, [(0, Lifecycle.RUNNING, False)], [], 2, None, "memory")
@example(_AGED, [(0, Lifecycle.RUNNING, False)], [], 2, None, "sqlite")
def test_a_pruned_log_says_of_each_transition_what_the_whole_log_says(
    tmp_path_factory: pytest.TempPathFactory,
    before: list[tuple[int, Lifecycle, bool]],
    after: list[tuple[int, Lifecycle, bool]],
    again: list[tuple[int, Lifecycle, bool]],
    age: int | None,
    per_item: int | None,
    backend: str,
) -> None:
    """The same random history (items untracked and tracked again among it) on a store that
    never prunes and on one pruned twice by age and count on the way: every transition the
    pruned one keeps, and every one committed after a pruning, reads as in the whole log, its
    event's bytes included (what it followed, too)."""
    from scanhub._exports import cloudevent_json

    folder = tmp_path_factory.mktemp("pruned")
    retention = Retention(
        max_age=None if age is None else timedelta(minutes=age), max_per_item=per_item
    )

    def open_(name: str, kept: Retention | None) -> Store:
        if backend == "memory":
            return MemoryStore(retention=kept)
        return SQLiteStore(folder / f"{name}.db", retention=kept)

    # "sqlite walked": the pruned items' chains are always walked (a small pruning's way);
    # "sqlite walk cut short": walked until a step or two, then the log read (a walk longer
    # than the read it saves); "sqlite": a pruning of 2% of the log or more (most here) reads
    # the log once.
    import scanhub.store.sqlite

    walked = 2.0 if backend.startswith("sqlite walk") else scanhub.store.sqlite._READ_WHOLE
    steps = 0.1 if backend == "sqlite walk cut short" else 1e9

    async def run() -> None:
        minute = [0]
        async with open_("whole", None) as whole, open_("pruned", retention) as pruned:

            async def play(part: list[tuple[int, Lifecycle, bool]]) -> None:
                for n, lc, untrack in part:
                    item = Scan(Vendor.APPSECPLUS, "asp", f"s{n}", "app", lc, lc.value)
                    minute[0] += 1
                    for store in (whole, pruned):
                        if untrack:
                            await store.untrack([item.key])
                        ob = Observation(
                            item.key, T0 + timedelta(minutes=minute[0]), item, None, "track"
                        )
                        await store.commit([ob])

            async def check() -> None:
                full = {t.id: t for t in await whole.transitions()}
                kept = await pruned.transitions()
                for t in kept:
                    assert cloudevent_json(t.change) == cloudevent_json(full[t.id].change)
                for key in {t.change.after.key for t in kept}:
                    for t in await pruned.transitions(key=key):
                        assert cloudevent_json(t.change) == cloudevent_json(full[t.id].change)

            await play(before)
            await pruned.prune(T0 + timedelta(minutes=minute[0]))
            await check()
            await play(after)
            await check()
            await pruned.prune(T0 + timedelta(minutes=minute[0]))
            await play(again)
            await check()

    with (
        mock.patch.object(scanhub.store.sqlite, "_READ_WHOLE", walked),
        mock.patch.object(scanhub.store.sqlite, "_WALK_STEPS", steps),
    ):
        asyncio.run(run())


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"max_per_item": 0}, "max_per_item >= 1"),
        ({"max_per_item": -3}, "max_per_item >= 1"),
        ({"max_per_item": True}, "max_per_item >= 1"),
        ({"max_per_item": 2.5}, "max_per_item >= 1"),
        ({"max_age": timedelta(0)}, "max_age > 0"),
        ({"max_age": timedelta(days=-1)}, "max_age > 0"),
        ({"max_age": 3600}, "max_age > 0"),
    ],
)
def test_a_retention_that_would_prune_the_logs_end_is_refused(
    kw: dict[str, object], field: str
) -> None:
    """`max_per_item=0` numbered every transition past the newest 0 of its item: the whole log,
    its newest transition too (where readers resume and ids go on)."""
    with pytest.raises(ValueError, match=f"^Retention needs {field}"):
        Retention(**kw)  # type: ignore[arg-type]
    assert Retention(max_age=timedelta(seconds=1), max_per_item=1).max_per_item == 1

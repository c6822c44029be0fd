"""Time in state from the user's side: the stuck rule and its configuration, `scanhub stats`
over a state file, and the per-item timing the API shows (issue 22). The store's numbers are
held by the conformance tests in tests/test_store.py."""

from __future__ import annotations

import io
import json
import sqlite3
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanhub import ConfigError, Lifecycle, Scan, SQLiteStore, Vendor
from scanhub._config import load_config, parse_config
from scanhub._stats import (
    StuckRule,
    human,
    parse_group_by,
    parse_window,
    stuck_counts,
    stuck_rule,
    timing,
)
from scanhub.cli import main
from scanhub.store import MemoryStore, Observation, Overdue, StoredItem

from .test_store import HISTORY

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def source(**extra: object) -> dict[str, object]:
    return {"vendor": "appsecplus", "base_url": "http://asp.invalid", "token_env": "T", **extra}


async def record(store: SQLiteStore | MemoryStore, start: datetime) -> None:
    """tests/test_store.py's HISTORY, starting at `start`."""
    for minute in sorted({m for m, _ in HISTORY}):
        await store.commit(
            [
                Observation(i.key, start + timedelta(minutes=m), i, None, "track")
                for m, i in HISTORY
                if m == minute
            ]
        )


def test_stuck_after_is_checked_and_described_in_the_schema() -> None:
    config = parse_config(
        {
            "stuck_after": 900,
            "source": [
                source(name="a", stuck_after=60, stuck_after_by_kind={"scan": 30}),
                source(name="b"),
            ],
        }
    )
    assert config.stuck_after == 900
    assert config.sources[0].stuck_after == 60
    with pytest.raises(ConfigError) as caught:
        parse_config({"source": [source(stuck_after=0, stuck_after_by_kind={"scna": 1})]})
    text = str(caught.value)
    assert "source[0].stuck_after: expected a positive" in text
    assert "source[0].stuck_after_by_kind.scna: unknown key (expected one of promotion, scan)" in (
        text
    )
    out = io.StringIO()
    assert main(["config", "schema"], out=out) == 0
    schema = json.loads(out.getvalue())
    assert "stuck_after" in schema["properties"]
    asp = next(
        s for s in schema["properties"]["source"]["items"]["oneOf"] if "AppSec" in s["title"]
    )
    assert asp["properties"]["stuck_after_by_kind"]["additionalProperties"] is False


async def test_the_stuck_rule_prefers_configuration_then_history_then_the_default() -> None:
    store = MemoryStore()
    # 20 AppSec+ scans that each took 100 + i seconds, finished in the last 7 days.
    for i in range(20):
        start = NOW - timedelta(hours=2, seconds=i * 300)
        q = Scan(Vendor.APPSECPLUS, "asp", f"s{i}", "app", Lifecycle.QUEUED, "q")
        done = Scan(Vendor.APPSECPLUS, "asp", f"s{i}", "app", Lifecycle.SUCCEEDED, "ok")
        await store.commit([Observation(q.key, start, q, None, "track")])
        await store.commit([Observation(q.key, start + timedelta(seconds=100 + i), done)])
    learned = parse_config({"source": [source(name="asp")]})
    rule = await stuck_rule(store, learned, NOW)
    assert rule.threshold("asp", "scan").basis == "p90"
    assert rule.threshold("asp", "scan").seconds == pytest.approx(117.1)
    assert rule.threshold("asp", "promotion").basis == "default"  # no history of promotions
    assert rule.threshold("other", "scan").seconds == 1800.0
    by_source = parse_config({"stuck_after": 99, "source": [source(name="asp", stuck_after=60)]})
    rule = await stuck_rule(store, by_source, NOW)
    assert (rule.threshold("asp", "scan").seconds, rule.threshold("other", "x").seconds) == (60, 99)
    by_kind = parse_config(
        {"source": [source(name="asp", stuck_after=60, stuck_after_by_kind={"scan": 5})]}
    )
    rule = await stuck_rule(store, by_kind, NOW)
    assert rule.threshold("asp", "scan").seconds == 5
    assert rule.threshold("asp", "promotion").seconds == 60
    # Under 20 finished items, nothing is learned.
    few = MemoryStore()
    await record(few, NOW - timedelta(hours=1))
    assert (await stuck_rule(few, learned, NOW)).learned == {}


def test_an_item_is_stuck_when_under_way_past_its_threshold() -> None:
    rule = StuckRule({("asp", "scan"): 600.0}, {}, 1800.0)
    running = Scan(Vendor.APPSECPLUS, "asp", "x", "app", Lifecycle.RUNNING, "r")
    young = StoredItem(running, "track", since=NOW - timedelta(seconds=599))
    old = StoredItem(running, "track", since=NOW - timedelta(seconds=601))
    assert not rule.stuck(young, NOW) and rule.stuck(old, NOW)
    done = Scan(Vendor.APPSECPLUS, "asp", "x", "app", Lifecycle.SUCCEEDED, "ok")
    assert not rule.stuck(StoredItem(done, "track", since=NOW - timedelta(days=9)), NOW)
    view = timing(old, NOW, rule)
    assert view["total_seconds"] == 601.0 and view["running_seconds"] is None
    assert (view["stuck_after_seconds"], view["stuck_basis"]) == (600.0, "configured")
    # First seen finished: its phases are unknown, not days of "queue".
    seen_done = StoredItem(done, "track", since=NOW - timedelta(days=9))
    assert timing(seen_done, NOW, rule)["total_seconds"] is None


def test_windows_group_names_and_durations_for_people() -> None:
    assert parse_window("7d") == "7d"
    with pytest.raises(ValueError, match="24h, 7d, 30d"):
        parse_window("1y")
    assert parse_group_by("kind,source") == ("source", "kind")
    assert parse_group_by("") == ()
    assert parse_group_by(" kind ,\tsource,") == ("source", "kind")
    for wrong in ("source,source", "kind, kind", "application", "vendor source"):
        with pytest.raises(ValueError, match="group_by"):
            parse_group_by(wrong)
    assert [human(s) for s in (None, 4.6, 725, 12_000, 200_000)] == [
        "–",
        "5s",
        "12m 05s",
        "3h 20m",
        "2d 07h",
    ]


async def test_scanhub_stats_reads_a_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    async with SQLiteStore(state) as store:
        await record(store, datetime.now(UTC) - timedelta(hours=1))
    out = io.StringIO()
    assert await _main(["stats", "--state", str(state)], out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("items finished in the last 24h")
    asp = next(line for line in lines if line.startswith("asp"))
    assert asp.split()[:5] == ["asp", "scan", "4", "25%", "25%"]
    assert "2m 00s / 2m 42s / 3m 00s" in asp  # queued p50 / p90 / max
    assert "stuck: asp scan: 1 unfinished under way longer than 30m 00s (default)" in lines

    # JSON: the same report as GET /api/v1/stats; thresholds from the configuration.
    config = tmp_path / "scanhub.toml"
    config.write_text(
        textwrap.dedent(f"""
            [state]
            path = "{state.name}"
            [[source]]
            name = "asp"
            vendor = "appsecplus"
            base_url = "http://asp.invalid"
            token_env = "T"
            stuck_after = 7200
            """)
    )
    load_config(config)  # valid
    out = io.StringIO()
    args = ["stats", "-c", str(config), "--window", "7d", "--group-by", "kind", "--format", "json"]
    assert await _main(args, out) == 0
    data = json.loads(out.getvalue())
    assert data["window"] == "7d" and data["group_by"] == ["kind"]
    assert [(g["kind"], g["finished"]) for g in data["groups"]] == [("promotion", 1), ("scan", 4)]
    asp = next(s for s in data["stuck"] if s["source"] == "asp")
    assert (asp["stuck"], asp["basis"], asp["stuck_after_seconds"]) == (0, "configured", 7200)
    assert data["activity"]["bucket_seconds"] == 6 * 3600
    assert sum(sum(b["counts"].values()) for b in data["activity"]["buckets"]) == len(HISTORY)


async def test_scanhub_stats_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _main(["stats"], io.StringIO()) == 2
    assert "give --state" in capsys.readouterr().err
    assert await _main(["stats", "--state", str(tmp_path / "none.db")], io.StringIO()) == 2
    assert "no state file there" in capsys.readouterr().err
    state = tmp_path / "s.db"
    async with SQLiteStore(state):
        pass
    assert await _main(["stats", "--state", str(state), "--group-by", "app"], io.StringIO()) == 2
    assert "group_by: expected some of vendor, source, kind" in capsys.readouterr().err


async def _main(argv: list[str], out: io.StringIO) -> int:
    """`main` runs its own event loop: run it off this test's loop."""
    import asyncio

    return await asyncio.to_thread(main, argv, out)


_moments = st.none() | st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(
    lifecycle=st.sampled_from(list(Lifecycle)),
    since=_moments,
    running_at=_moments,
    finished_at=_moments,
    changed=_moments,
    now=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
)
def test_an_items_timing_is_its_kept_times_read_at_now_however_often_it_is_read(
    lifecycle: Lifecycle,
    since: datetime | None,
    running_at: datetime | None,
    finished_at: datetime | None,
    changed: datetime | None,
    now: datetime,
) -> None:
    # A finished item's times are remembered; they must read as a fresh reckoning does.
    from scanhub._convert import timestamp_or_none
    from scanhub.store import phases

    item = Scan(Vendor.APPSECPLUS, "asp", "s1", "app", lifecycle, lifecycle.value)
    stored = StoredItem(item, "track", None, None, changed, since, running_at, finished_at)
    rule = StuckRule({}, {}, 3600.0)
    unknown = lifecycle.is_terminal and finished_at is None
    spans = (None, None, None) if unknown else phases(since, running_at, finished_at, now)
    expected = {
        "since": timestamp_or_none(since),
        "running_at": timestamp_or_none(running_at),
        "finished_at": timestamp_or_none(finished_at),
        "queued_seconds": None if spans[0] is None else round(spans[0], 3),
        "running_seconds": None if spans[1] is None else round(spans[1], 3),
        "total_seconds": None if spans[2] is None else round(spans[2], 3),
        "since_change_seconds": None
        if changed is None
        else round(max(0.0, (now - changed).total_seconds()), 3),
        "stuck_after_seconds": 3600.0,
        "stuck_basis": "default",
    }
    for _ in range(2):
        got = timing(stored, now, rule)
        assert got == expected and list(got) == list(expected)


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_stuck_counts_keep_each_vendor_apart_and_ask_each_source_and_kind_once(
    tmp_path: Path, backend: str
) -> None:
    """Two vendors' sources of the same name: each vendor's row counts its own stuck items,
    and the store is asked about each (source, kind) once."""
    store = MemoryStore() if backend == "memory" else SQLiteStore(tmp_path / "state.db")
    async with store:
        old, young = NOW - timedelta(hours=2), NOW - timedelta(minutes=1)
        for vendor, sid, at in [
            (Vendor.APPSECPLUS, "a1", old),
            (Vendor.APPSECPLUS, "a2", old),
            (Vendor.IQ, "i1", young),
            (Vendor.IQ, "i2", old),
            (Vendor.IQ, "i3", young),
        ]:
            item = Scan(vendor, "shared", sid, "app", Lifecycle.RUNNING, "r")
            await store.commit([Observation(item.key, at, item, None, "track")])
        asked: list[tuple[str, str, datetime]] = []
        overdue = store.overdue

        async def counting(cutoffs: Sequence[tuple[str, str, datetime]]) -> list[Overdue]:
            asked.extend(cutoffs)
            return await overdue(cutoffs)

        store.overdue = counting  # type: ignore[method-assign]
        found = await stuck_counts(store, StuckRule({}, {}, 1800.0), NOW)
    got = {(s["vendor"], s["source"], s["kind"]): s["stuck"] for s in found}
    assert got == {("appsecplus", "shared", "scan"): 2, ("iq", "shared", "scan"): 1}
    assert [(s, k) for s, k, _ in asked] == [("shared", "scan")]


async def stuck_both_ways(
    store: MemoryStore | SQLiteStore, rule: StuckRule, now: datetime
) -> tuple[dict[tuple[str, str, str], int], dict[tuple[str, str, str], int]]:
    """Per (vendor, source, kind): how many items the stuck rule calls stuck one by one (the
    items page and API), and how many `stuck_counts` counts (/metrics and the stats page)."""
    one_by_one: dict[tuple[str, str, str], int] = {}
    for stored in await store.tracked():
        i = stored.item
        labels = (str(i.vendor), i.source, i.kind)
        one_by_one[labels] = one_by_one.get(labels, 0) + rule.stuck(stored, now)
    counted = {
        (s["vendor"], s["source"], s["kind"]): s["stuck"]
        for s in await stuck_counts(store, rule, now)
    }
    return one_by_one, counted


@settings(max_examples=60, deadline=None)
@given(
    threshold=st.floats(min_value=1e-6, max_value=1e7, allow_nan=False),
    steps=st.lists(st.integers(min_value=-3, max_value=3), min_size=1, max_size=8),
    created=st.booleans(),
)
async def test_the_items_page_and_the_stuck_counts_call_the_same_items_stuck(
    threshold: float, steps: list[int], created: bool
) -> None:
    """Items under way for about their threshold, a few microseconds either side (the
    threshold need not be whole microseconds: a learned p90 seldom is), some with the vendor's
    creation time, some without: an item is stuck on the items page exactly when the stuck
    counts count it."""
    store = MemoryStore()
    edge = timedelta(seconds=threshold)
    for n, step in enumerate(steps):
        since = NOW - edge - timedelta(microseconds=step)
        kw = {"created_at": since} if created else {}
        item = Scan(Vendor.APPSECPLUS, "asp", f"s{n}", "app", Lifecycle.RUNNING, "r", **kw)  # type: ignore[arg-type]
        seen = NOW if created else since  # first seen now, or when it started
        await store.commit([Observation(item.key, seen, item, None, "track")])
    one_by_one, counted = await stuck_both_ways(
        store, StuckRule({("asp", None): threshold}, {}), NOW
    )
    assert one_by_one == counted


async def test_a_migrated_item_of_unknown_start_is_stuck_nowhere(tmp_path: Path) -> None:
    """A state file migrated from schema 1 keeps an item that had no time at all (no creation
    time, never changed, never observed) with an empty start: the items page does not call it
    stuck, and neither do the stuck counts; an item at its threshold's sub-microsecond edge is
    stuck in both or neither."""
    rule = StuckRule({("asp", None): 600.0000006}, {})
    async with SQLiteStore(tmp_path / "state.db") as store:
        for sid, since in [("unknown", NOW - timedelta(hours=9)),
                           ("edge", NOW - timedelta(seconds=600, microseconds=1)),
                           ("old", NOW - timedelta(hours=1))]:  # fmt: skip
            item = Scan(Vendor.APPSECPLUS, "asp", sid, "app", Lifecycle.RUNNING, "r")
            await store.commit([Observation(item.key, since, item, None, "track")])
    db = sqlite3.connect(tmp_path / "state.db")
    with db:  # what migration 1 -> 2 leaves of such a row
        db.execute(
            "UPDATE items SET since = '', changed_at = NULL, observed_at = NULL"
            " WHERE key LIKE '%unknown%'"
        )
    db.close()
    async with SQLiteStore(tmp_path / "state.db") as store:
        one_by_one, counted = await stuck_both_ways(store, rule, NOW)
        # Nor is it the source's oldest unfinished item (it would read as started now).
        (oldest,) = await store.oldest_active()
    assert one_by_one == counted == {("appsecplus", "asp", "scan"): 1}
    assert oldest.key.endswith(":old") and oldest.since == NOW - timedelta(hours=1)

"""Retention pruning on SQLite: `SQLiteStore.prune` beside the simplest pruning a user could
write with sqlite3, on the same states, in the same run.

Run: `python -m bench.prune [--quick] [--output PATH] [--items N] [--repeats K]`.
Writes a Markdown section and its JSON beside it (to `--output`, else a new temporary
directory; never over BENCHMARKS.md). `--quick` runs a tiny state: it proves the harness, its
figures mean nothing.

The state is `bench.yearstate`'s (a year of history written through `SQLiteStore.commit`: 95%
finished, about 3.3 transitions an item; cached, keyed by size and schema). Every measurement
runs on a fresh copy of it (its WAL checkpointed), scanhub's and the baseline's alternately.

1. By count (`Retention(max_per_item=2)`):
   - the first pruning by count of the year never pruned (the whole log numbered by item, a
     window function, and the transitions left that follow what goes found by reading the log
     once); beside it the baseline's statement on another copy;
   - then 1,000 finished items spread over the log are observed again with a new vendor status
     (each a third transition, through `commit`), and the hourly pruning runs: scanhub's
     (only the items with transitions since the last pruning, their chains walked back to
     what goes) against the baseline a user would run hourly instead (and scanhub ran before
     2026-12-02), on a copy of the same state taken just before: `DELETE ... WHERE id IN (...
     ROW_NUMBER() OVER (PARTITION BY key ORDER BY id DESC) ... WHERE n > 2)`;
   - the first pruning of the same store opened again (the log already pruned; where the last
     numbering got to is kept in the file, so a start numbers only what moved since).
2. By age (`Retention(max_age=1 hour)`): a pruning in which the oldest 1% of the log ages out
   (an hour's worth of a log 100 hours long; the cost depends on the share, not on the span),
   scanhub's against `DELETE FROM transitions WHERE observed_at < ?`:
   - on the year's state;
   - on a state of hot items (`hot_state`: 20 items of 10,000 transitions each, one every
     36 s for 100 hours, each a new vendor status; written through `SQLiteStore.commit`,
     cached like the year's) with no `max_per_item`: the hour that goes is 100 transitions of
     each item, and each keeps 9,900. A pruning whose cost grows with the history each pruned
     item keeps shows here: scanhub walks each pruned item's chain back from its end, a
     statement a step, and once the walk is longer than reading the log (`_WALK_STEPS` in
     `store/sqlite.py`) it stops and reads the log once (before it stopped, the walk read
     every transition kept: 1.5 s an hour, against 53 ms for the baseline, measured
     2026-12-02 on a 2-core AMD EPYC).

Times are wall-clock seconds of the call (`await store.prune(now)`: the store's one thread is
busy that long; its checkpoints run on a thread of their own after it) and of the baseline's
DELETE and COMMIT on a plain `sqlite3` connection set to the store's `synchronous=NORMAL`, so
that both commit alike and what differs is the statements.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from scanhub import Lifecycle, Retention, Scan, SQLiteStore
from scanhub.store import Observation
from scanhub.store._base import SCHEMA_VERSION

from . import yearstate
from .history import log, machine, yardstick

#: How many transitions an item keeps in the count benchmark.
PER_ITEM = 2
#: The share of the log that ages out in the age benchmark's pruning.
AGED_SHARE = 0.01
#: The age benchmark's `max_age`.
MAX_AGE = timedelta(hours=1)
#: The baseline by count: what a user would run hourly (and scanhub ran hourly before).
BASELINE_COUNT = (
    "DELETE FROM transitions WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER"
    " (PARTITION BY key ORDER BY id DESC) AS n FROM transitions) WHERE n > ?)"
)
#: The baseline by age.
BASELINE_AGE = "DELETE FROM transitions WHERE observed_at < ?"
#: The hot items' state: items, transitions each (`--quick`: 5 of 200), over `HOT_SPAN`.
HOT_ITEMS = 20
HOT_TRANSITIONS = 10_000
HOT_SPAN = timedelta(hours=100)
HOT_START = datetime(2026, 1, 1, tzinfo=UTC)
#: Bump when what `hot_state` writes changes (cached states of other versions are not reused).
HOT_VERSION = 1


def copy_state(src: Path, dst: Path) -> Path:
    """`src` (a closed state, its WAL checkpointed: the cached one) copied to `dst`, with no
    WAL or WAL index beside the copy."""
    remove_state(dst)
    shutil.copyfile(src, dst)
    return dst


def remove_state(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def snapshot(src: Path, dst: Path) -> Path:
    """A copy of `src` as its open store's last commit left it, WAL included, with SQLite's
    backup (a read: the store's WAL and its checkpointer are left as they were; a checkpoint
    from another connection would turn the store's own checkpoints off)."""
    remove_state(dst)
    reader = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    target = sqlite3.connect(dst)
    try:
        reader.backup(target)
    finally:
        target.close()
        reader.close()
    return dst


def baseline(path: Path, sql: str, arg: Any) -> dict[str, float]:
    """The baseline's statement on `path`, in a transaction of a plain sqlite3 connection (the
    store's `synchronous=NORMAL`): seconds of the DELETE, of the COMMIT, and rows removed."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA synchronous=NORMAL")
        t0 = time.perf_counter()
        removed = db.execute(sql, (arg,)).rowcount
        t1 = time.perf_counter()
        db.commit()
        t2 = time.perf_counter()
    finally:
        db.close()
    return {"s": t2 - t0, "delete_s": t1 - t0, "commit_s": t2 - t1, "removed": removed}


async def timed(call: Callable[[], Awaitable[int]]) -> dict[str, float]:
    t0 = time.perf_counter()
    removed = await call()
    return {"s": time.perf_counter() - t0, "removed": removed}


def rescans(n: int, changed: int, at: datetime) -> list[Observation]:
    """`changed` finished items of the state of `n` spread evenly over the log, each observed
    again at `at` with a new vendor status (a re-evaluation: one transition each)."""
    finished = n - yearstate.active_count(n)
    out = []
    for k in range(changed):
        item = yearstate._finished(k * finished // changed, n)[-1][1]
        again = attrs.evolve(item, vendor_status=f"{item.vendor_status} (re-evaluated)")
        out.append(Observation(again.key, at, again, None, None))
    return out


async def count_trial(
    state: Path, work: Path, n: int, changed: int, baseline_first: bool
) -> dict[str, Any]:
    """One round of the count benchmark on fresh copies of `state`."""
    now = yearstate.START + yearstate.YEAR + timedelta(hours=1)
    out: dict[str, Any] = {}
    ours = work / "count.db"
    theirs = work / "count-baseline.db"

    def first_baseline() -> None:
        copy_state(state, theirs)
        out["baseline_first"] = baseline(theirs, BASELINE_COUNT, PER_ITEM)
        remove_state(theirs)

    if baseline_first:
        first_baseline()
    copy_state(state, ours)
    retention = Retention(max_per_item=PER_ITEM)
    async with SQLiteStore(ours, retention=retention) as store:
        out["first"] = await timed(lambda: store.prune(now))
        observations = rescans(n, changed, now)
        t0 = time.perf_counter()
        recorded = 0
        for i in range(0, len(observations), 100):
            done = await store.commit(observations[i : i + 100])
            recorded += sum(1 for c in done if c.id is not None)
        out["commit_s"] = time.perf_counter() - t0
        if recorded != changed:
            raise RuntimeError(f"{recorded} transitions recorded of {changed} observations")
        # The baseline's copy: this state as it is, before the hourly pruning.
        snapshot(ours, theirs)
        out["pruned_log"] = _count(theirs)
        out["hourly"] = await timed(lambda: store.prune(now + timedelta(hours=1)))
    out["baseline_hourly"] = baseline(theirs, BASELINE_COUNT, PER_ITEM)
    remove_state(theirs)
    # Opened again: where the last numbering got to is kept in the file, so this pruning
    # numbers only what moved since (nothing).
    async with SQLiteStore(ours, retention=retention) as store:
        out["reopened"] = await timed(lambda: store.prune(now + timedelta(hours=2)))
    remove_state(ours)
    if not baseline_first:
        first_baseline()
    return out


async def age_trial(
    state: Path, work: Path, cutoff: str, baseline_first: bool, name: str = "age"
) -> dict[str, Any]:
    """One round of the age benchmark on fresh copies of `state`."""
    now = datetime.fromisoformat(cutoff) + MAX_AGE
    out: dict[str, Any] = {}
    ours = work / f"{name}.db"
    theirs = work / f"{name}-baseline.db"

    def run_baseline() -> None:
        copy_state(state, theirs)
        out["baseline"] = baseline(theirs, BASELINE_AGE, cutoff)
        remove_state(theirs)

    if baseline_first:
        run_baseline()
    copy_state(state, ours)
    async with SQLiteStore(ours, retention=Retention(max_age=MAX_AGE)) as store:
        out["scanhub"] = await timed(lambda: store.prune(now))
    remove_state(ours)
    if not baseline_first:
        run_baseline()
    return out


def hot_item(i: int, step: int) -> Scan:
    """Hot item `i` at its `step`th transition: running, its vendor status new at each step."""
    sid = f"hot-{i:04d}"
    return Scan(
        "appsecplus",
        "hot",
        sid,
        f"app-{i % 50}",
        Lifecycle.RUNNING,
        f"running: step {step}",
        scan_type="dast",
        raw={"id": sid, "status": "running", "step": step},
    )


async def build_hot(path: Path, items: int, per: int, steps_a_commit: int = 100) -> dict[str, Any]:
    """Write the hot items' state to `path` (a new file) through `SQLiteStore.commit`: `per`
    transitions of each of `items`, a step (one of each item) every `HOT_SPAN / per`, the log
    in time order."""
    t0 = time.perf_counter()
    every = HOT_SPAN / per
    recorded = 0
    async with SQLiteStore(path) as store:
        for first in range(0, per, steps_a_commit):
            chunk = [
                Observation(item.key, HOT_START + every * step, item, None, "track")
                for step in range(first, min(first + steps_a_commit, per))
                for item in (hot_item(i, step) for i in range(items))
            ]
            done = await store.commit(chunk)
            recorded += sum(1 for c in done if c.id is not None)
    if recorded != items * per:
        raise RuntimeError(f"{recorded} transitions recorded of {items * per} observations")
    seconds = time.perf_counter() - t0
    return {"items": items, "per_item": per, "transitions": recorded, "build_s": seconds}


def hot_state(items: int, per: int, *, log: Any = None) -> tuple[Path, dict[str, Any]]:
    """The hot items' state, built once and reused (beside `bench.yearstate`'s, keyed by
    sizes, schema and `HOT_VERSION`). Returns its path and what building it took (or took
    then)."""
    d = yearstate.cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"hot-i{items}-t{per}-schema{SCHEMA_VERSION}-b{HOT_VERSION}.db"
    meta = path.with_suffix(".meta")
    if path.exists() and meta.exists():
        return path, {**json.loads(meta.read_text()), "cached": True}
    partial = path.with_suffix(".building")
    for p in (path, meta, partial):
        remove_state(p)
    if log:
        log(f"building the hot state: {items:,} items of {per:,} transitions (cached in {d})")
    info = asyncio.run(build_hot(partial, items, per))
    return yearstate.cache_built(partial, path, meta, info)


def _count(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT COUNT(*) FROM transitions").fetchone()[0])
    finally:
        db.close()


def aged_cutoff(state: Path, share: float) -> tuple[str, int]:
    """The time (as the store writes it) before which the oldest `share` of the log was
    observed, and the log's length."""
    db = sqlite3.connect(state)
    try:
        total = int(db.execute("SELECT COUNT(*) FROM transitions").fetchone()[0])
        (cutoff,) = db.execute(
            "SELECT observed_at FROM transitions ORDER BY id LIMIT 1 OFFSET ?",
            (int(total * share),),
        ).fetchone()
    finally:
        db.close()
    return str(cutoff), total


def indexes(state: Path) -> list[str]:
    db = sqlite3.connect(state)
    try:
        return [
            str(sql)
            for (sql,) in db.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'transitions'"
                " AND sql IS NOT NULL"
            )
        ]
    finally:
        db.close()


def summary(trials: list[dict[str, Any]], *path: str) -> dict[str, Any]:
    """Median, least and most seconds of one figure over the trials, with every run's."""
    runs = []
    for t in trials:
        v: Any = t
        for p in path:
            v = v[p]
        runs.append(v)
    seconds = [r["s"] for r in runs]
    removed = sorted({r["removed"] for r in runs})
    return {
        "median_s": statistics.median(seconds),
        "min_s": min(seconds),
        "max_s": max(seconds),
        "runs_s": seconds,
        "removed": removed[0] if len(removed) == 1 else removed,
        **(
            {
                "delete_median_s": statistics.median(r["delete_s"] for r in runs),
                "commit_median_s": statistics.median(r["commit_s"] for r in runs),
            }
            if "delete_s" in runs[0]
            else {}
        ),
    }


# --- the report --------------------------------------------------------------------------------


def secs(x: float) -> str:
    return f"{x * 1000:,.1f} ms" if x < 10 else f"{x:,.1f} s"


def cell(f: dict[str, Any]) -> str:
    return f"{secs(f['median_s'])} ({secs(f['min_s'])}–{secs(f['max_s'])})"


def removed(f: dict[str, Any]) -> str:
    r = f["removed"]
    return f"{r:,}" if isinstance(r, int) else " / ".join(f"{x:,}" for x in r)


def ratio(a: dict[str, Any], b: dict[str, Any]) -> str:
    return f"{b['median_s'] / a['median_s']:,.1f}x" if a["median_s"] > 0 else "—"


def built(b: dict[str, Any]) -> str:
    how = f"built in {b['build_s']:.0f} s"
    if "migrated_from" in b:
        how += f", migrated since from {b['migrated_from']}"
    return f"cached, {how}" if b.get("cached") else f"{how} in this run"


def report(r: dict[str, Any]) -> str:
    c, a, h, hs = r["count"], r["age"], r["hot"], r["hot_state"]
    # What each hot item keeps of its history after the pruning (it loses an equal share).
    hot_kept = hs["per_item"] - round(hs["per_item"] * AGED_SHARE)
    n = r["items"]
    lines = [
        "## Retention pruning on SQLite",
        "",
        f"Measured {r['date']} on {machine()}; load average before the run {r['load_before']}, "
        f"after it {r['load_after']} (1, 5 and 15 minutes). Reproduce: `python -m bench.prune` "
        f"({r['wall']:.0f} s here, the state cached); `--quick` is the smoke run.",
        "",
        "The machine's speed (`bench.history.yardstick`: `json.loads` of IQ's status answer): "
        f"{r['yardstick_before']:.2f} µs at the start of the run, {r['yardstick_after']:.2f} µs "
        "at its end. Every time below moves with it; compare runs at the same speed.",
    ]
    if r["quick"]:
        lines += ["", "**A --quick smoke run: a tiny state, the figures mean nothing.**"]
    lines += [
        "",
        f"The state: `bench.yearstate`'s year of {n:,} items (95% finished) "
        f"written through `SQLiteStore.commit`: {r['transitions']:,} transitions, "
        f"{r['state_bytes']:,} bytes on disk ({r['state_bytes'] / 2**20:,.0f} MiB, WAL "
        f"checkpointed; {built(r['built'])}). "
        + (
            f"Each figure: the median of {r['repeats']} runs, each on a fresh copy of the file, "
            "scanhub's and the baseline's alternately, with the least and the most in brackets. "
            if r["repeats"] > 1
            else "Each figure: one run on a fresh copy of the file. "
        )
        + "scanhub's time is its `prune` call's (the store's one thread is busy that long; "
        "the checkpoint of what it wrote runs after it on a thread of its own, unless the WAL "
        "is past its limit); the baseline's is its DELETE and its COMMIT on a plain `sqlite3` "
        "connection set to the store's `synchronous=NORMAL` (SQLite checkpoints in a COMMIT "
        "that takes the WAL past 1,000 pages). "
        "The transitions table's indexes: "
        + (", ".join(f"`{s}`" for s in r["indexes"]) or "none but its primary key (`id`)")
        + ".",
        "",
        f"### By count (`max_per_item={PER_ITEM}`)",
        "",
        "| pruning | scanhub `prune` | baseline (sqlite3, window) | baseline / scanhub "
        "| transitions removed (scanhub / baseline) |",
        "|---|---|---|---|---|",
        f"| the first by count, on the year never pruned ({r['transitions']:,} transitions) "
        f"| {cell(c['first'])} | {cell(c['baseline_first'])} "
        f"| {ratio(c['first'], c['baseline_first'])} | {removed(c['first'])} / "
        f"{removed(c['baseline_first'])} |",
        f"| hourly, after {r['changed']:,} new transitions over {r['changed']:,} items "
        f"({c['pruned_log']:,} transitions in the log) | {cell(c['hourly'])} "
        f"| {cell(c['baseline_hourly'])} | {ratio(c['hourly'], c['baseline_hourly'])} "
        f"| {removed(c['hourly'])} / {removed(c['baseline_hourly'])} |",
        f"| the first after opening again (the log already pruned) | {cell(c['reopened'])} "
        f"| — | — | {removed(c['reopened'])} / — |",
        "",
        f"The {r['changed']:,} new transitions: finished items spread evenly over the log, each "
        "observed again with a new vendor status (a third transition; the oldest of the three "
        f"goes), committed in batches of 100 in {secs(c['commit_median_s'])} (median). The "
        "baseline's time splits into its DELETE and its COMMIT: "
        f"{secs(c['baseline_first']['delete_median_s'])} + "
        f"{secs(c['baseline_first']['commit_median_s'])} for the first, "
        f"{secs(c['baseline_hourly']['delete_median_s'])} + "
        f"{secs(c['baseline_hourly']['commit_median_s'])} hourly (medians). The baseline "
        "removes the same transitions but keeps nothing of what they were: a transition left "
        "whose previous one went loses its `before` (scanhub copies it into `kept_before`).",
        "",
        f"### By age (`max_age`, {AGED_SHARE:.0%} of the log aged out)",
        "",
        "| pruning | scanhub `prune` | baseline (sqlite3, `observed_at < ?`) "
        "| baseline / scanhub | transitions removed (scanhub / baseline) |",
        "|---|---|---|---|---|",
        f"| hourly, the oldest {AGED_SHARE:.0%} aged out (observed before {a['cutoff']}) "
        f"| {cell(a['scanhub'])} | {cell(a['baseline'])} | {ratio(a['scanhub'], a['baseline'])} "
        f"| {removed(a['scanhub'])} / {removed(a['baseline'])} |",
        f"| hot items: hourly, {hs['items']:,} items of {hs['per_item']:,} transitions each "
        f"and no `max_per_item` ({hs['transitions']:,} transitions), the oldest "
        f"{AGED_SHARE:.0%} aged out (observed before {h['cutoff']}) "
        f"| {cell(h['scanhub'])} | {cell(h['baseline'])} | {ratio(h['scanhub'], h['baseline'])} "
        f"| {removed(h['scanhub'])} / {removed(h['baseline'])} |",
        "",
        "scanhub removes a prefix of the log by id (it is in time order: the first transition "
        "young enough is found reading from the log's start) and walks only the pruned items' "
        "chains (the log once, when that is shorter: the hot items below); the baseline's `observed_at < ?` reads the whole log "
        "(no index on `observed_at`). The two counts differ where the log's order by id and by time "
        "disagree at the cutoff (the state's items commit their whole walk at once). The "
        "baseline's split: "
        f"{secs(a['baseline']['delete_median_s'])} DELETE + "
        f"{secs(a['baseline']['commit_median_s'])} COMMIT (medians).",
        "",
        f"The hot items: {hs['items']:,} items polled for {HOT_SPAN.total_seconds() / 3600:.0f} "
        f"hours, each poll a new vendor status ({hs['per_item']:,} transitions an item, one "
        f"every {HOT_SPAN.total_seconds() / hs['per_item']:,.0f} s), in a state of their own "
        f"({hs['state_bytes'] / 2**20:,.1f} MiB; {built(hs['built'])}), pruned by age only: "
        f"the hour that goes takes the oldest {AGED_SHARE:.0%} of each item's history, and "
        f"each keeps {hot_kept:,}. The row shows what a small pruning costs when the items it "
        "prunes keep long histories: scanhub walks each pruned item's chain back "
        "from its end (a statement a step) to keep what the first transition left followed, "
        "and once the walk is longer than reading the log once, stops and reads it; a walk "
        f"to the end read all {hot_kept:,} of each (1.5 s an hour, measured 2026-12-02). "
        "The baseline's split: "
        f"{secs(h['baseline']['delete_median_s'])} DELETE + "
        f"{secs(h['baseline']['commit_median_s'])} COMMIT (medians).",
    ]
    return "\n".join(lines) + "\n"


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.prune", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a tiny state: proves the harness runs")
    ap.add_argument(
        "--output",
        default=None,
        help="the Markdown file (its .json beside it); default: a new temporary "
        "directory (never BENCHMARKS.md)",
    )
    ap.add_argument("--items", type=int, default=None, help="default 100000 (--quick: 2000)")
    ap.add_argument("--repeats", type=int, default=None, help="default 3 (--quick: 2)")
    ap.add_argument("--hot-items", type=int, default=None, help=f"default {HOT_ITEMS} (--quick: 5)")
    ap.add_argument(
        "--hot-transitions",
        type=int,
        default=None,
        help=f"each hot item's; default {HOT_TRANSITIONS:,} (--quick: 200)",
    )
    args = ap.parse_args(argv)
    out = (
        Path(args.output)
        if args.output
        else (Path(tempfile.mkdtemp(prefix="scanhub-prune-")) / "prune.md")
    )
    if out.resolve().name == "BENCHMARKS.md":
        ap.error("this harness never writes BENCHMARKS.md; give another --output")
    q = args.quick
    n = args.items or (2_000 if q else 100_000)
    repeats = args.repeats or (2 if q else 3)
    changed = min(100 if q else 1_000, n - yearstate.active_count(n))
    hot_items = args.hot_items or (5 if q else HOT_ITEMS)
    hot_per = args.hot_transitions or (200 if q else HOT_TRANSITIONS)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": q,
        "items": n,
        "repeats": repeats,
        "changed": changed,
        "load_before": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "yardstick_before": yardstick(),
    }
    log(f"yardstick {results['yardstick_before']:.2f} µs; the state of {n:,} items")
    state, built = yearstate.cached_state(n, log=log)
    results["built"] = built
    results["state_bytes"] = yearstate.state_bytes(state)
    results["indexes"] = indexes(state)
    cutoff, results["transitions"] = aged_cutoff(state, AGED_SHARE)
    hot, hot_built = hot_state(hot_items, hot_per, log=log)
    hot_cutoff, hot_transitions = aged_cutoff(hot, AGED_SHARE)
    results["hot_state"] = {
        "items": hot_items,
        "per_item": hot_per,
        "transitions": hot_transitions,
        "state_bytes": yearstate.state_bytes(hot),
        "built": hot_built,
    }
    work = Path(tempfile.mkdtemp(prefix="scanhub-prune-run-"))
    try:
        counts, ages, hots = [], [], []
        for k in range(repeats):
            log(f"by count, run {k + 1} of {repeats}")
            counts.append(asyncio.run(count_trial(state, work, n, changed, k % 2 == 1)))
            log(f"by age, run {k + 1} of {repeats}")
            ages.append(asyncio.run(age_trial(state, work, cutoff, k % 2 == 0)))
            log(f"by age, hot items, run {k + 1} of {repeats}")
            hots.append(asyncio.run(age_trial(hot, work, hot_cutoff, k % 2 == 1, "hot")))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["count"] = {
        **{
            f: summary(counts, f)
            for f in ("first", "baseline_first", "hourly", "baseline_hourly", "reopened")
        },
        "commit_median_s": statistics.median(t["commit_s"] for t in counts),
        "pruned_log": counts[0]["pruned_log"],
    }
    results["age"] = {
        "cutoff": cutoff,
        "scanhub": summary(ages, "scanhub"),
        "baseline": summary(ages, "baseline"),
    }
    results["hot"] = {
        "cutoff": hot_cutoff,
        "scanhub": summary(hots, "scanhub"),
        "baseline": summary(hots, "baseline"),
    }
    results["wall"] = time.perf_counter() - started
    results["load_after"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    results["yardstick_after"] = yardstick()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
    text = report(results)
    out.write_text(text, encoding="utf-8")
    print(text)
    log(f"written to {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

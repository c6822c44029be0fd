"""A year of history: a scanhub state file as a team that has run it for a year would have
one, written through the public store API (`SQLiteStore.commit` with `Observation`s).

- `n` items over six sources (three AppSec+ servers, IQ, ThreadFix, AppTrust) and 500
  applications; 95% finished (succeeded, failed, cancelled, expired), each with its walk
  (queued, running, sometimes a second running status, its end): about 3.3 transitions an item.
- The 5% still under way are AppSec+ scans `scan-001`, `scan-002`, ... of the three AppSec+
  sources, queued: exactly what a simulator seeded with `active_pairs` in the same order
  answers (`bench.simfarm`), so the service polls them at a known rate.
- Built states are cached under the temporary directory, keyed by size, schema version and
  this builder's version, so reruns reuse them; never in the repository.

`python -m bench.yearstate N [--fresh]` builds (or finds) the state of N items and prints its
path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scanhub import Lifecycle, Promotion, Scan, SQLiteStore, Verdict
from scanhub.store import Observation
from scanhub.store._base import SCHEMA_VERSION

#: Bump when what `build` writes changes (cached states of other versions are not reused).
BUILDER_VERSION = 1

#: (source name, vendor): the six sources. Items under way belong to the AppSec+ ones.
SOURCES = (
    ("asp-1", "appsecplus"),
    ("asp-2", "appsecplus"),
    ("asp-3", "appsecplus"),
    ("iq", "iq"),
    ("threadfix", "threadfix"),
    ("apptrust", "apptrust"),
)
ACTIVE_SOURCES = SOURCES[:3]
SCAN_TYPES = ("sast", "dast", "sca", "container")
_TEAMS = (
    "payments",
    "checkout",
    "search",
    "identity",
    "billing",
    "catalog",
    "ledger",
    "mobile",
    "reports",
    "gateway",
)
_KINDS = ("api", "web", "worker", "service", "batch")
#: 500 applications, the same at every size (history grows with time, the portfolio less so).
APPS = tuple(f"{_TEAMS[i % 10]}-{_KINDS[i // 10 % 5]}-{i:03d}" for i in range(500))
_REASONS = (
    "timeout waiting for the build agent",
    "scanner crashed: out of memory",
    "license check failed",
    "policy violation: critical findings",
    "repository not reachable",
    "quota exceeded",
)
YEAR = timedelta(days=365)
START = datetime(2024, 1, 1, tzinfo=UTC)


def active_count(n: int) -> int:
    """Items under way in a state of `n` items (5%)."""
    return n // 20


def active_split(n: int) -> list[int]:
    """How many of them each AppSec+ source has."""
    a = active_count(n)
    k = len(ACTIVE_SOURCES)
    return [a // k + (1 if s < a % k else 0) for s in range(k)]


def active_pairs(count: int) -> list[tuple[str, str]]:
    """(application, scan type) of active scans 1..count of a source, in order: seed a
    simulator with these and it answers `scan-001`... exactly as the state has them."""
    return [_pair(j) for j in range(count)]


def _pair(j: int) -> tuple[str, str]:
    return APPS[j * 7 % len(APPS)], SCAN_TYPES[j % 4]


def active_item(source: str, j: int) -> Scan:
    app, kind = _pair(j)
    return Scan(
        "appsecplus",
        source,
        f"scan-{j + 1:03d}",
        app,
        Lifecycle.QUEUED,
        "queued",
        scan_type=kind,
        triggered_by="seed",
        raw={"id": f"scan-{j + 1:03d}", "applicationId": app, "scanType": kind, "status": "queued"},
    )


def _finished(i: int, n: int) -> list[tuple[datetime, Scan | Promotion]]:
    """The walk of finished item `i`: (observed at, state) for each step."""
    source, vendor = SOURCES[i % len(SOURCES)]
    app = APPS[(i * 31 + i // 997) % len(APPS)]
    h = (i * 2654435761) % 1000
    if h < 800:
        end = Lifecycle.SUCCEEDED
        verdict = Verdict.PASS if h < 560 else Verdict.WARN if h < 720 else Verdict.FAIL
    elif h < 920:
        end, verdict = Lifecycle.FAILED, Verdict.ERROR
    elif h < 970:
        end, verdict = Lifecycle.CANCELLED, Verdict.NONE
    else:
        end, verdict = Lifecycle.EXPIRED, Verdict.NONE
    t0 = START + YEAR * (i / n)
    message = f"{_REASONS[i % len(_REASONS)]} ({app})" if end is Lifecycle.FAILED else None
    steps = [
        (Lifecycle.QUEUED, "queued", Verdict.NONE, None, t0),
        (Lifecycle.RUNNING, "running", Verdict.NONE, None, t0 + timedelta(seconds=30)),
    ]
    if h % 5 < 2:
        steps.append(
            (
                Lifecycle.RUNNING,
                "running: analysing",
                Verdict.NONE,
                None,
                t0 + timedelta(seconds=90),
            )
        )
    steps.append((end, end.value, verdict, message, t0 + timedelta(seconds=300 + i % 600)))
    out: list[tuple[datetime, Scan | Promotion]] = []
    for lc, status, v, msg, at in steps:
        raw = {"id": i, "status": status, "application": app, "updated": at.isoformat()}
        fin = at if lc.is_terminal else None
        item: Scan | Promotion
        if vendor == "appsecplus":
            item = Scan(
                vendor,
                source,
                f"scan-h{i:07d}",
                app,
                lc,
                status,
                v,
                msg,
                created_at=t0,
                finished_at=fin,
                scan_type=SCAN_TYPES[i % 4],
                triggered_by="ci-bot",
                raw=raw,
            )
        elif vendor == "threadfix":
            item = Scan(
                vendor,
                source,
                str(100_000 + i),
                str(1 + APPS.index(app)),
                lc,
                status,
                v,
                msg,
                created_at=t0,
                finished_at=fin,
                application_name=app,
                scan_type="upload",
                raw=raw,
            )
        elif vendor == "iq":
            item = Promotion(
                vendor,
                source,
                f"{i:032x}",
                f"{APPS.index(app):032x}",
                lc,
                status,
                v,
                msg,
                created_at=t0,
                finished_at=fin,
                application_name=app,
                target_stage="release",
                raw=raw,
            )
        else:
            item = Promotion(
                vendor,
                source,
                str(1_700_000_000_000 + i),
                app,
                lc,
                status,
                v,
                msg,
                created_at=t0,
                finished_at=fin,
                version=f"1.{i % 50}.{i % 7}",
                source_stage="QA",
                target_stage="PROD",
                raw=raw,
            )
        out.append((at, item))
    return out


def _observations(n: int, batch: int) -> Iterator[list[Observation]]:
    """The whole history in commit batches, oldest first (answers come in order)."""
    finished = n - active_count(n)
    chunk: list[Observation] = []
    for i in range(finished):
        for at, item in _finished(i, n):
            chunk.append(Observation(item.key, at, item, None, "track"))
        if len(chunk) >= batch:
            yield chunk
            chunk = []
    at = START + YEAR
    for (source, _), count in zip(ACTIVE_SOURCES, active_split(n), strict=True):
        for j in range(count):
            item = active_item(source, j)
            chunk.append(Observation(item.key, at, item, None, "track"))
            if len(chunk) >= batch:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


async def build(path: Path, n: int, batch: int = 8000) -> dict[str, Any]:
    """Write a state of `n` items to `path` (a new file) through `SQLiteStore.commit`."""
    t0 = time.perf_counter()
    transitions = 0
    async with SQLiteStore(path) as store:
        for chunk in _observations(n, batch):
            done = await store.commit(chunk)
            transitions += sum(1 for c in done if c.id is not None)
    seconds = time.perf_counter() - t0
    return {"items": n, "transitions": transitions, "build_s": seconds, "bytes": state_bytes(path)}


def state_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def cache_dir() -> Path:
    return Path(
        os.environ.get("SCANHUB_BENCH_CACHE")
        or Path(tempfile.gettempdir()) / "scanhub-bench-history"
    )


def cached_state(n: int, *, fresh: bool = False, log: Any = None) -> tuple[Path, dict[str, Any]]:
    """The state of `n` items, built once and reused (keyed by size, schema and builder
    versions). Returns its path and what building it took (or took then)."""
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"state-n{n}-schema{SCHEMA_VERSION}-b{BUILDER_VERSION}.db"
    meta = path.with_suffix(".meta")
    if path.exists() and meta.exists() and not fresh:
        return path, {**json.loads(meta.read_text()), "cached": True}
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), meta):
        p.unlink(missing_ok=True)
    partial = path.with_suffix(".building")
    for p in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        p.unlink(missing_ok=True)
    older = None if fresh else _older_state(d, n)
    if older is not None:
        # The same history at an older schema: migrated as a user's file is (opening it),
        # instead of written again (the 1M state takes about 20 minutes to build).
        if log:
            log(f"migrating the cached state of {n:,} items from {older.name}")
        for suffix in ("", "-wal"):  # a WAL left beside it holds committed pages too
            if Path(f"{older}{suffix}").exists():
                shutil.copyfile(f"{older}{suffix}", f"{partial}{suffix}")
        t0 = time.perf_counter()
        asyncio.run(_open(partial))
        info = {
            **json.loads(older.with_suffix(".meta").read_text()),
            "migrated_from": older.name,
            "migrate_s": time.perf_counter() - t0,
        }
        for p in (older, Path(f"{older}-wal"), Path(f"{older}-shm"), older.with_suffix(".meta")):
            p.unlink(missing_ok=True)  # the cache keeps one state of each size
    else:
        if log:
            log(f"building a state of {n:,} items (cached in {d})")
        info = asyncio.run(build(partial, n))
    return cache_built(partial, path, meta, info)


def cache_built(partial: Path, path: Path, meta: Path, info: dict[str, Any]) -> tuple[Path, Any]:
    """Put a state built at `partial` in the cache as `path` (its WAL checkpointed into the
    file), with what was built in `meta`; returns them, not cached before."""
    db = sqlite3.connect(partial)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    partial.rename(path)
    meta.write_text(json.dumps(info))
    return path, {**info, "cached": False}


def _older_state(d: Path, n: int) -> Path | None:
    """The newest cached state of `n` items by this builder at an older schema, if any."""
    found = [
        (v, d / f"state-n{n}-schema{v}-b{BUILDER_VERSION}.db") for v in range(1, SCHEMA_VERSION)
    ]
    older = [p for _, p in found if p.exists() and p.with_suffix(".meta").exists()]
    return older[-1] if older else None


async def _open(path: Path) -> None:
    async with SQLiteStore(path):
        pass


def working_copy(path: Path, into: Path) -> Path:
    """A copy of a cached state to run a service on (the service writes to it)."""
    into.mkdir(parents=True, exist_ok=True)
    target = into / path.name
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(path, target)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.yearstate")
    ap.add_argument("items", type=int)
    ap.add_argument("--fresh", action="store_true", help="build again even when cached")
    args = ap.parse_args(argv)
    path, info = cached_state(args.items, fresh=args.fresh, log=print)
    print(path, info)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Where issue 19's misses spend their time: profiles of the figures `bench.history` measures.

    python -m bench.histprof serve [--items N] [--seconds S]   # py-spy on `scanhub serve`
    python -m bench.histprof commit                            # cProfile of SQLiteStore.commit
    python -m bench.histprof normalize                         # cProfile of each vendor's parse
    python -m bench.histprof poll                              # cProfile of a watch's polls

`serve` runs the real service subprocess on the cached state of N items, loads it with the 50
readers of `bench.history` (their own process) and samples the service with py-spy (installed
in the dev environment); each prints the functions with the largest shares: inclusive (the
share of samples in which the function is on the stack) and self.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import history, yearstate
from .simfarm import Load, SimFarm

#: Leaves of a stack that waits rather than works (an idle event loop, an idle worker thread).
IDLE = {
    "EpollSelector.select (selectors.py)",
    "_worker (thread.py)",
    "Condition.wait (threading.py)",
    "Event.wait (threading.py)",
    "select (selectors.py)",
}


def shares_of_collapsed(path: Path, top: int) -> None:
    """Inclusive and self shares per function from py-spy's raw (collapsed) output."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = [
            f.split(" (")[0] + " (" + f.split("(")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
            for f in stack.split(";")
            if f
        ]
        if frames and frames[-1] in IDLE:  # waiting, not working
            total -= n
            continue
        for f in set(frames):
            inclusive[f] += n
        if frames:
            own[frames[-1]] += n
    print(f"{total} busy samples (waits left out)")
    print("inclusive:")
    for f, n in inclusive.most_common(top):
        print(f"  {n / total:6.1%}  {f}")
    print("self:")
    for f, n in own.most_common(top):
        print(f"  {n / total:6.1%}  {f}")


def _py_spy() -> str:
    """py-spy beside this interpreter (the dev environment's), else the one on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else "py-spy"


def profile_serve(items: int, seconds: float, top: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="scanhub-h19-prof-"))
    cached, _ = yearstate.cached_state(items, log=history.log)
    state = yearstate.working_copy(cached, workdir)
    active = yearstate.active_count(items)
    with SimFarm(len(yearstate.ACTIVE_SOURCES)) as farm:
        for k, count in enumerate(yearstate.active_split(items)):
            farm.seed(k, yearstate.active_pairs(count))
        server, _ = history.start_service(
            workdir, state, farm, max(1.0, active / history.POLL_RATE), "prof"
        )
        try:
            start_at = time.time() + 3
            load = Load(
                {
                    "mode": "scanhub",
                    "base": server.url,
                    "first": "/api/v1/items?limit=100",
                    "pages": 20,
                    "clients": history.CLIENTS,
                    "seconds": seconds + 2,
                    "start_at": start_at,
                }
            ).start()
            time.sleep(start_at - time.time() + 1)
            raw = workdir / "serve.txt"
            subprocess.run(
                [
                    _py_spy(),
                    "record",
                    "--pid",
                    str(server.pid),
                    "--duration",
                    str(int(seconds)),
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                    "--nonblocking",
                ],
                check=True,
                capture_output=True,
            )
            print(load.result())
            shares_of_collapsed(raw, top)
        finally:
            server.stop()


def profile_commit(top: int) -> None:
    """`SQLiteStore.commit`'s work (which runs on the store's thread) called on this thread:
    50,000 transitions in batches of 500 over 1,000 items, as `bench.history` measures."""
    from datetime import UTC, datetime

    from scanhub.store import Observation
    from scanhub.store.sqlite import RowCache, _commit, connect, migrate

    db = connect(Path(tempfile.mkdtemp(prefix="scanhub-h19-prof-")) / "state.db")
    migrate(db)
    scans = history._scans(1000)
    now = datetime.now(UTC)
    rows = RowCache()  # as the store keeps it between its commits
    _commit(db, [Observation(s.key, now, s, None, "bench") for s in scans], rows)
    chunks = [
        [history._step(scans[(i + k) % 1000], i + k, now) for k in range(500)]
        for i in range(0, 50_000, 500)
    ]
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for chunk in chunks:
        _commit(db, chunk, rows)
    prof.disable()
    print(f"{50_000 / (time.perf_counter() - t0):,.0f} transitions/s under the profiler")
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


async def watch_only(farm: SimFarm, n: int, interval: float, seconds: float) -> None:
    """scanhub's side of `bench.history`'s poll CPU: `n` AppSec+ items watched with a SQLite
    store at `interval` (every answer committed) for an interval (first sightings), then
    `seconds`."""
    from scanhub import AppSecPlus, Lifecycle, Scan, ScanHub, SQLiteStore

    info = farm.info[0]
    ids = farm.seed(0, [("poll-cpu", "sast")] * n)
    path = Path(tempfile.mkdtemp(prefix="scanhub-h19-prof-")) / "state.db"
    client = AppSecPlus(info["url"], info["token"], name="asp")
    async with ScanHub(
        [client], store=SQLiteStore(path), interval=interval, max_interval=interval, backoff=1.0
    ) as hub:
        for sid in ids:
            hub.track(Scan("appsecplus", "asp", sid, "poll-cpu", Lifecycle.UNKNOWN, ""))
        async for _ in hub.watch(deadline=interval + seconds, until_done=False, initial=False):
            pass


def profile_commit_pg(top: int) -> None:
    """`PostgresStore.commit` (asyncpg, on this process's loop; the server's own time shows as
    waiting): 20,000 transitions in batches of 500 over 1,000 items."""
    from datetime import UTC, datetime

    from scanhub.store.postgres import PostgresStore
    from scanhub.testing import fresh_database, postgres_cluster

    async def run(dsn: str) -> None:
        url = await fresh_database(dsn, "histprof")
        async with PostgresStore(url) as store:
            scans = history._scans(1000)
            now = datetime.now(UTC)
            await store.track([(s, "bench") for s in scans], now)
            chunks = [
                [history._step(scans[(i + k) % 1000], i + k, now) for k in range(500)]
                for i in range(0, 20_000, 500)
            ]
            prof = cProfile.Profile()
            t0 = time.perf_counter()
            prof.enable()
            for chunk in chunks:
                await store.commit(chunk)
            prof.disable()
            print(f"{20_000 / (time.perf_counter() - t0):,.0f} transitions/s under the profiler")
            stats = pstats.Stats(prof)
            stats.sort_stats("tottime").print_stats(top)
            stats.sort_stats("cumulative").print_stats(top)

    with postgres_cluster() as dsn:
        asyncio.run(run(dsn))


def cprofile(fn: object, top: int) -> None:
    prof = cProfile.Profile()
    prof.enable()
    asyncio.run(fn())  # type: ignore[operator]
    prof.disable()
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.histprof")
    ap.add_argument("what", choices=("serve", "commit", "commit-pg", "normalize", "poll", "watch"))
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args(argv)
    if args.what == "serve":
        profile_serve(args.items, args.seconds, args.top)
    elif args.what == "commit":
        profile_commit(args.top)
    elif args.what == "commit-pg":
        profile_commit_pg(args.top)
    elif args.what == "normalize":
        from scanhub.sansio import Response

        for vendor, (body, parse) in history.normalization_cases().items():
            resp = Response(200, body, {"content-type": "application/json"}, "bench", "http://h/x")
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(20_000):
                parse(resp)
            prof.disable()
            print(f"===== {vendor}")
            pstats.Stats(prof).sort_stats("tottime").print_stats(args.top // 2)
    elif args.what == "poll":
        raw = Path(tempfile.mkdtemp(prefix="scanhub-h19-prof-")) / "poll.txt"
        subprocess.run(
            [
                _py_spy(),
                "record",
                "--rate",
                "500",
                "--format",
                "raw",
                "--output",
                str(raw),
                "--",
                sys.executable,
                "-m",
                "bench.histprof",
                "watch",
                "--seconds",
                str(args.seconds),
            ],
            check=True,
            capture_output=True,
        )
        shares_of_collapsed(raw, args.top)
    else:  # watch: what `poll` samples
        with SimFarm(1) as farm:
            asyncio.run(watch_only(farm, 1000, 5.0, args.seconds))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

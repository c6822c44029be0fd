"""Issue 19, "a year of history": is the service as fast at 100,000 items as at 100?

Run: `python -m bench.history [--quick] [--output PATH] [--sizes 10000,100000,1000000]`.
Writes a Markdown section and its JSON beside it (to `--output`, else a new temporary
directory; never over BENCHMARKS.md). `--quick` runs tiny sizes in well under a minute: it
proves the harness, its figures mean nothing.

What runs where (the machine has 2 cores, so which figures share a core is said in the output):
- `scanhub serve` is a real subprocess (`python -m scanhub serve -c CONFIG --state COPY --port
  0`) on a working copy of a cached state (`bench.yearstate`); beside it, on the same file,
  the 30-line aiohttp + sqlite3 server (`bench.baseline`), another subprocess.
- The service's six sources include three AppSec+ sources backed by a simulator farm
  (`bench.simfarm`, one process each) serving the state's items under way, queued for good;
  `interval = max_interval` is set so the engine polls them at a known rate (`POLL_RATE`).
- Latencies are measured one request at a time from this process, scanhub and baseline
  requests interleaved (this VM's speed drifts; neighbours in time see the same drift).
- The 50 readers run in a load-generator process of their own; this process meanwhile probes
  /healthz and counts the simulators' answers (the engine's polls).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import gc
import json
import os
import platform
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

import scanhub

from . import yearstate
from .simfarm import SimFarm, capacity, cpu_seconds, rss_bytes

#: Polls per second the service's engine is configured for (items under way / interval).
POLL_RATE = 100.0
#: Readers of the load test.
CLIENTS = 50
#: Text searches (`q`), in turn: an application (0.2% of items), a failure reason (about 2%),
#: a team name (10%).
SEARCHES = ("payments-api-000", "quota exceeded", "ledger")
SRC = str(Path(scanhub.__file__).resolve().parent.parent)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment with this scanhub first on the path (the child imports the same)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [SRC, str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    env.update(extra or {})
    return env


def machine_busy() -> float:
    """CPU seconds the machine's cores have been busy since boot (Linux /proc/stat)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    """CPU seconds of this process and of its children that ended (servers, generators)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# --- the two servers -----------------------------------------------------------------------


class Server:
    """A server subprocess whose first stdout line is its URL (read with a deadline)."""

    def __init__(self, argv: list[str], env: dict[str, str], stderr: Path) -> None:
        self.argv, self.env, self.stderr_path = argv, env, stderr
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 120.0) -> float:
        """Start; returns seconds until it printed its URL."""
        self._err = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in stop()
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=self._err, env=self.env
        )
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        if not line or not line[0]:
            self.stop()
            raise RuntimeError(
                f"{self.argv[:4]} printed no URL; stderr: {self.stderr_path.read_text()[-2000:]}"
            )
        first = line[0].decode().strip()
        self.url = first.split()[2] if first.startswith("scanhub serve:") else first
        return time.perf_counter() - t0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        with contextlib.suppress(AttributeError):
            self._err.close()


def serve_config(path: Path, farm: SimFarm | None, interval: float) -> dict[str, str]:
    """The service's scanhub.toml (six sources); returns the environment it reads."""
    lines = [f"interval = {interval:g}", f"max_interval = {interval:g}", ""]
    nowhere = "http://127.0.0.1:9"  # history only: never polled (no item under way)
    for k, (name, vendor) in enumerate(yearstate.SOURCES):
        lines += ["[[source]]", f'name = "{name}"', f'vendor = "{vendor}"']
        if vendor == "appsecplus":
            url = farm.info[k % farm.size]["url"] if farm is not None else nowhere
            lines += [f'base_url = "{url}"', 'token_env = "BENCH_ASP_TOKEN"']
        elif vendor == "iq":
            lines += [
                f'base_url = "{nowhere}"',
                'username = "bench"',
                'password_env = "BENCH_SECRET"',
            ]
        elif vendor == "threadfix":
            lines += [f'base_url = "{nowhere}"', 'api_key_env = "BENCH_SECRET"']
        else:
            lines += [f'base_url = "{nowhere}"', 'token_env = "BENCH_SECRET"']
        lines.append("")
    path.write_text("\n".join(lines))
    token = farm.info[0]["token"] if farm is not None else "t"
    return {"BENCH_ASP_TOKEN": token, "BENCH_SECRET": "bench-secret"}


def wait_ready(url: str, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}/readyz: not ready after {timeout} s")
        time.sleep(0.01)


def start_service(
    workdir: Path, state: Path, farm: SimFarm | None, interval: float, tag: str
) -> tuple[Server, dict[str, float]]:
    """`scanhub serve` on `state`; returns it with start → URL, start → /readyz (s) and RSS
    after start (bytes, 2 s after ready: what it holds once it settled)."""
    config = workdir / f"scanhub-{tag}.toml"
    extra = serve_config(config, farm, interval)
    server = Server(
        [
            sys.executable,
            "-m",
            "scanhub",
            "serve",
            "-c",
            str(config),
            "--state",
            str(state),
            "--port",
            "0",
        ],
        subprocess_env(extra),
        workdir / f"serve-{tag}.log",
    )
    t0 = time.perf_counter()
    to_url = server.start()
    wait_ready(server.url)
    ready = time.perf_counter() - t0
    rss_ready = rss_bytes(server.pid)
    time.sleep(2.0)
    return server, {
        "url_s": to_url,
        "ready_s": ready,
        "rss_ready": rss_ready,
        "rss": rss_bytes(server.pid),
    }


def start_baseline(workdir: Path, state: Path, tag: str) -> Server:
    server = Server(
        [sys.executable, "-m", "bench.baseline", str(state), "--port", "0"],
        subprocess_env(),
        workdir / f"baseline-{tag}.log",
    )
    server.start()
    return server


# --- reads, one at a time ------------------------------------------------------------------


async def timed_get(http: aiohttp.ClientSession, url: str) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    async with http.get(url) as r:
        body = await r.read()
        if r.status != 200:
            raise RuntimeError(f"GET {url}: {r.status} {body[:300]!r}")
    return time.perf_counter() - t0, body


async def measure_reads(
    sh: str, base: str, keys: list[str], samples: int, walks: int
) -> dict[str, Any]:
    """Every read figure, scanhub and baseline requests interleaved, round robin over the
    figures (so each figure sees the whole run's drift alike)."""
    figures: dict[str, tuple[Callable[[int], str], Callable[[int], str] | None]] = {
        "first": (lambda k: f"{sh}/api/v1/items?limit=100", lambda k: f"{base}/items?limit=100"),
        "failed": (
            lambda k: f"{sh}/api/v1/items?limit=100&lifecycle=failed",
            lambda k: f"{base}/items?limit=100&lifecycle=failed",
        ),
        "search": (
            lambda k: f"{sh}/api/v1/items?limit=100&q={SEARCHES[k % 3].replace(' ', '%20')}",
            lambda k: f"{base}/items?limit=100&q={SEARCHES[k % 3].replace(' ', '%20')}",
        ),
        "item": (lambda k: f"{sh}/api/v1/items/{keys[k % len(keys)]}", None),
        "summary": (lambda k: f"{sh}/api/v1/summary", None),
        "metrics": (lambda k: f"{sh}/metrics", None),
    }
    out: dict[str, list[float]] = {}
    per_search: dict[str, list[float]] = {s: [] for s in SEARCHES}
    connector = aiohttp.TCPConnector(limit=4)
    async with aiohttp.ClientSession(connector=connector) as http:
        for ours, theirs in figures.values():  # warm-up: connections, caches, imports
            await timed_get(http, ours(0))
            if theirs:
                await timed_get(http, theirs(0))
        for k in range(samples):
            for name, (ours, theirs) in figures.items():
                seconds, _ = await timed_get(http, ours(k))
                out.setdefault(name, []).append(seconds)
                if name == "search":
                    per_search[SEARCHES[k % 3]].append(seconds)
                if theirs is not None:
                    seconds, _ = await timed_get(http, theirs(k))
                    out.setdefault(f"baseline_{name}", []).append(seconds)
        # Deep pages: walks of 20 pages, scanhub (next_cursor) and baseline (next_after) in
        # turn; page 20 and the whole walk.
        for _ in range(walks):
            for who in ("scanhub", "baseline"):
                first = (
                    f"{sh}/api/v1/items?limit=100"
                    if who == "scanhub"
                    else f"{base}/items?limit=100"
                )
                total, url, last = 0.0, first, 0.0
                for _page in range(20):
                    last, body = await timed_get(http, url)
                    total += last
                    data = json.loads(body)
                    # (a state under 2,000 items, --quick: the walk starts again at page 1)
                    if who == "scanhub":
                        nxt = data["next_cursor"]
                        url = f"{sh}/api/v1/items?limit=100&cursor={nxt}" if nxt else first
                    else:
                        nxt = data["items"] and data["next_after"]
                        url = f"{base}/items?limit=100&after={nxt}" if nxt else first
                prefix = "" if who == "scanhub" else "baseline_"
                out.setdefault(f"{prefix}page20", []).append(last)
                out.setdefault(f"{prefix}walk20", []).append(total)
    result: dict[str, Any] = {
        name: {"p50": pct(v, 50), "p99": pct(v, 99), "max": max(v), "n": len(v)}
        for name, v in out.items()
    }
    result["search_terms"] = {
        s: {"p50": pct(v, 50), "p99": pct(v, 99)} for s, v in per_search.items() if v
    }
    return result


# --- 50 readers ----------------------------------------------------------------------------


async def probe_health(url: str, until: float) -> list[float]:
    """GET /healthz every 20 ms until `until` (perf_counter); latencies (a timeout counts as
    the time waited)."""
    out = []
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            try:
                async with http.get(f"{url}/healthz") as r:
                    await r.read()
            except (aiohttp.ClientError, TimeoutError):
                pass
            out.append(time.perf_counter() - t0)
            await asyncio.sleep(0.02)
    return out


def polls_during(farm: SimFarm, seconds: float) -> float:
    """The engine's polls per second over `seconds`, counted at the simulators."""
    before, t0 = farm.requests(), time.perf_counter()
    time.sleep(seconds)
    return (farm.requests() - before) / (time.perf_counter() - t0)


def loaded(
    spec: dict[str, Any], probe: str, farm: SimFarm, service_pid: int | None
) -> dict[str, Any]:
    """Run the readers (their own process), and meanwhile probe /healthz and count polls."""
    from .simfarm import Load

    seconds = spec["seconds"]
    start_at = time.time() + 3.0  # the generator's start-up (imports) is over by then
    load = Load({**spec, "start_at": start_at}).start()
    time.sleep(max(0.0, start_at - time.time()))
    before, t0 = farm.requests(), time.perf_counter()
    cpu0 = cpu_seconds(service_pid) if service_pid else 0.0
    health = asyncio.run(probe_health(probe, time.perf_counter() + seconds))
    polls = (farm.requests() - before) / (time.perf_counter() - t0)
    cpu = (cpu_seconds(service_pid) - cpu0) / (time.perf_counter() - t0) if service_pid else None
    result = load.result()
    return {
        **result,
        "healthz_p50": pct(health, 50),
        "healthz_p99": pct(health, 99),
        "healthz_max": max(health),
        "healthz_n": len(health),
        "polls_per_s": polls,
        "server_cores": cpu,
    }


# --- per size -------------------------------------------------------------------------------


def sample_keys(state: Path, k: int) -> list[str]:
    db = sqlite3.connect(state)
    try:
        n = db.execute("SELECT MAX(rid) FROM items").fetchone()[0] or 0
        rng = random.Random(19)
        rids = [rng.randint(1, n) for _ in range(k * 2)]
        keys = [
            r[0] for rid in rids for r in db.execute("SELECT key FROM items WHERE rid = ?", (rid,))
        ]
    finally:
        db.close()
    return keys[:k]


def bench_size(
    n: int, workdir: Path, farm: SimFarm, *, samples: int, walks: int, load_s: float
) -> dict[str, Any]:
    """Everything measured on a state of `n` items (0: an empty state, start and RSS only)."""
    tag = f"n{n}"
    if n == 0:
        state = workdir / "empty.db"
        state.unlink(missing_ok=True)
        server, start = start_service(workdir, state, farm, 5.0, tag)
        server.stop()
        return {"items": 0, "start": start}
    cached, built = yearstate.cached_state(n, log=log)
    state = yearstate.working_copy(cached, workdir / tag)
    active = yearstate.active_count(n)
    interval = max(1.0, active / POLL_RATE)
    out: dict[str, Any] = {
        "items": n,
        "built": built,
        "active": active,
        "interval": interval,
        "configured_polls_per_s": active / interval,
    }
    out["state_bytes"] = yearstate.state_bytes(state)
    busy0, own0, farm0, t0 = machine_busy(), own_cpu(), farm.cpu(), time.perf_counter()
    server, out["start"] = start_service(workdir, state, farm, interval, tag)
    baseline = start_baseline(workdir, state, tag)
    try:
        keys = sample_keys(state, 200)
        log(f"  {n:,} items: reads ({samples} samples a figure, {walks} walks of 20 pages)")
        out["reads"] = asyncio.run(measure_reads(server.url, baseline.url, keys, samples, walks))
        log(f"  {n:,} items: {CLIENTS} readers for {load_s:g} s")
        out["unloaded_polls_per_s"] = polls_during(farm, load_s)
        out["unloaded_healthz"] = asyncio.run(probe_health(server.url, time.perf_counter() + 1))
        common = {"clients": CLIENTS, "seconds": load_s, "pages": 20}
        out["load"] = loaded(
            {**common, "mode": "scanhub", "base": server.url, "first": "/api/v1/items?limit=100"},
            server.url,
            farm,
            server.pid,
        )
        out["baseline_load"] = loaded(
            {**common, "mode": "baseline", "base": baseline.url, "first": "/items?limit=100"},
            server.url,
            farm,
            baseline.pid,
        )
        out["rss_end"] = rss_bytes(server.pid)
    finally:
        baseline.stop()
        server.stop()
    # Other work on the machine meanwhile: busy cores less this run's own processes.
    ours = own_cpu() - own0 + farm.cpu() - farm0
    out["foreign_cores"] = (machine_busy() - busy0 - ours) / (time.perf_counter() - t0)
    out["unloaded_healthz"] = {
        "p99": pct(out["unloaded_healthz"], 99),
        "max": max(out["unloaded_healthz"]),
    }
    return out


# --- the store's write rate ----------------------------------------------------------------


def _step(item: scanhub.Scan, n: int, at: datetime) -> Any:
    from scanhub.store import Observation

    state = scanhub.Scan(
        item.vendor,
        item.source,
        item.id,
        item.application_id,
        scanhub.Lifecycle.RUNNING,
        f"step-{n}",
        raw=item.raw,
    )
    return Observation(item.key, at + timedelta(microseconds=n), state)


def _scans(items: int) -> list[scanhub.Scan]:
    return [
        scanhub.Scan(
            "appsecplus",
            "bench",
            f"scan-{i:06d}",
            f"app-{i % 50}",
            scanhub.Lifecycle.RUNNING,
            "running",
            raw={"id": f"scan-{i:06d}", "status": "running", "scanType": "sast"},
        )
        for i in range(items)
    ]


async def _write(store: Any, transitions: int, items: int, batch: int) -> float:
    scans = _scans(items)
    now = datetime.now(UTC)
    await store.track([(s, "bench") for s in scans], now)
    # Each batch's observations are made with the clock stopped: what is measured is the
    # store. They are made batch by batch, as a service's polls make them, not all first:
    # 100,000 observations held alive at once (200,000 objects the store never sees) made
    # each of the collector's full passes during the commits walk them, about 0.3 s of a 2 s
    # run charged to the store (a service holds its active items, frozen at start).
    elapsed = 0.0
    done = 0
    while done < transitions:
        chunk = [
            _step(scans[(done + k) % items], done + k, now)
            for k in range(min(batch, transitions - done))
        ]
        done += len(chunk)
        t0 = time.perf_counter()
        await store.commit(chunk)
        elapsed += time.perf_counter() - t0
    return transitions / elapsed


def fresh_process(name: str, *args: Any) -> Any:
    """`asyncio.run(name(*args))` of this module in a new Python process: a store's write rate
    is its own, not that of whatever this harness's process holds by then (after the service
    benchmarks, the collector's full passes over this process's heap cost the SQLite figure
    about 10%)."""
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        return pool.submit(_run_here, name, *args).result()


def median_run(name: str, runs: int, *args: Any) -> Any:
    """The run of `name` with the median write rate of `runs`, each in a fresh process, with
    every run's rate (`runs_per_s`): on this shared machine one run's rate moves by 10% and
    more from one minute to the next."""
    found = [fresh_process(name, *args) for _ in range(runs)]
    if found[0] is None:  # no PostgreSQL here
        return None
    found.sort(key=lambda r: r["per_s"])
    return {**found[len(found) // 2], "runs_per_s": [r["per_s"] for r in found]}


def _runs(r: dict[str, Any]) -> str:
    n = len(r.get("runs_per_s", [r["per_s"]]))
    return "1 run" if n == 1 else f"{n} runs"


def _spread(r: dict[str, Any]) -> str:
    runs = r.get("runs_per_s", [])
    return f" ({runs[0]:,.0f}–{runs[-1]:,.0f})" if len(runs) > 1 else ""


def _run_here(name: str, *args: Any) -> Any:
    return asyncio.run(globals()[name](*args))


async def bench_sqlite(transitions: int, items: int, batch: int) -> dict[str, Any]:
    """Transitions committed per second in batches, and bytes per transition on disk (the
    file's growth over the transitions, WAL checkpointed)."""
    d = Path(tempfile.mkdtemp(prefix="scanhub-h19-store-"))
    path = d / "state.db"
    async with scanhub.SQLiteStore(path) as store:
        rate = await _write(store, transitions, items, batch)
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    tables = (
        dict(db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"))
        if _has_dbstat(db)
        else {}
    )
    db.close()
    size = yearstate.state_bytes(path)
    return {
        "transitions": transitions,
        "items": items,
        "batch": batch,
        "per_s": rate,
        "bytes": size,
        "bytes_per_transition": size / transitions,
        "transitions_table_per_transition": (
            tables.get("transitions", 0) / transitions  # the log has no other index
            if tables
            else None
        ),
    }


def _has_dbstat(db: sqlite3.Connection) -> bool:
    try:
        db.execute("SELECT 1 FROM dbstat LIMIT 1").fetchall()
        return True
    except sqlite3.OperationalError:
        return False


async def bench_postgres(transitions: int, items: int, batch: int) -> dict[str, Any] | None:
    from scanhub.store.postgres import PostgresStore
    from scanhub.testing import fresh_database, postgres_bindir, postgres_cluster

    if postgres_bindir() is None:
        return None
    import asyncpg  # type: ignore[import-untyped]

    with postgres_cluster() as dsn:
        url = await fresh_database(dsn, "bench_history")
        con = await asyncpg.connect(url)
        async with PostgresStore(url) as store:
            size0 = await con.fetchval("SELECT pg_database_size(current_database())")
            rate = await _write(store, transitions, items, batch)
        await con.execute("CHECKPOINT")
        size = await con.fetchval("SELECT pg_database_size(current_database())")
        log_bytes = await con.fetchval("SELECT pg_total_relation_size('transitions')")
        await con.close()
    return {
        "transitions": transitions,
        "items": items,
        "batch": batch,
        "per_s": rate,
        "bytes_per_transition": (size - size0) / transitions,
        "transitions_table_per_transition": log_bytes / transitions,
    }


# --- normalization ---------------------------------------------------------------------------


def normalization_cases() -> dict[str, tuple[bytes, Callable[[Any], Any]]]:
    """Per built-in vendor: one status answer, rendered by its simulator (a finished item: the
    richest answer), and its parse function. For six vendors it is what a poll parses; AppTrust
    has no status endpoint for a promotion under way, so its polls read the promotions list (the
    page row of `bench_normalize`) and this is its details endpoint (`WHAT`)."""
    from scanhub.sansio import appsecplus, apptrust, iq, threadfix
    from scanhub.vendors.appsecplus.sim import AppSecPlusSim
    from scanhub.vendors.apptrust.sim import AppTrustSim
    from scanhub.vendors.dependencytrack import sansio as dt
    from scanhub.vendors.dependencytrack.sim import DependencyTrackSim
    from scanhub.vendors.github import sansio as gh
    from scanhub.vendors.github.sim import GitHubSim
    from scanhub.vendors.iq.sim import IQSim
    from scanhub.vendors.sonarqube import sansio as sq
    from scanhub.vendors.sonarqube.sim import SonarQubeSim
    from scanhub.vendors.threadfix.sim import ThreadFixSim

    B = "http://h"
    iq_sim = IQSim()
    app, _ = iq_sim.add_application("bench")
    (status_id,) = iq_sim.seed_promotions(app, 1, duration=0)
    tf = ThreadFixSim()
    (pending,) = tf.seed_pending(6, 1, duration=0)
    asp = AppSecPlusSim()
    (scan_id,) = asp.seed_scans("bench", 1, duration=0)
    at = AppTrustSim()
    (pid,) = at.seed_promotions("bench", "1.0.0", 1, duration=0)
    sq_sim = SonarQubeSim()
    task = sq_sim.submit("bench", queue=0, duration=0)
    gh_sim = GitHubSim()
    (sarif,) = gh_sim.seed_uploads("acme/bench", 1, duration=0)
    dt_sim = DependencyTrackSim()
    project = dt_sim.add_project("bench", "1.0.0")
    token = dt_sim.seed_upload(project, duration=0)
    dt_sim.pipeline.advance()  # the walk moves when the server is asked; a finished workflow

    def dumps(x: Any) -> bytes:
        return json.dumps(x, separators=(",", ":")).encode()

    return {
        "iq": (
            dumps(iq_sim.render(status_id)),
            lambda r: iq.parse_status(
                r, source="s", base_url=B, application_id=app, status_id=status_id
            ),
        ),
        "threadfix": (
            dumps(tf.render(pending)),
            lambda r: threadfix.parse_pending_scan(r, source="s"),
        ),
        "appsecplus": (
            dumps(asp.render(scan_id)),
            lambda r: appsecplus.parse_scan(r, source="s", base_url=B),
        ),
        "apptrust": (
            dumps(at.render("bench", "1.0.0", pid)),
            lambda r: apptrust.parse_promotion(
                r, source="s", application_key="bench", version="1.0.0"
            ),
        ),
        "sonarqube": (
            dumps({"task": sq_sim.render_task(task)}),
            lambda r: sq.parse_task(r, source="s", base_url=B),
        ),
        "github": (
            dumps(gh_sim.render(sarif)),
            lambda r: gh.parse_status(r, source="s", repository="acme/bench", sarif_id=sarif),
        ),
        "dependencytrack": (
            dumps(dt_sim.render(token)),
            lambda r: dt.parse_workflow(r, source="s"),
        ),
    }


def interleaved(fns: list[Callable[[], Any]], budget: float, rounds: int) -> list[list[float]]:
    """CPU seconds per call of each function, in alternating batches (as bench.run does)."""
    number = []
    for fn in fns:
        t0 = time.perf_counter()
        for _ in range(10):
            fn()
        once = max((time.perf_counter() - t0) / 10, 1e-7)
        number.append(max(1, int(budget / rounds / len(fns) / once)))
    out: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for k, fn in enumerate(fns):
            gc.collect()
            t0 = time.process_time()
            for _ in range(number[k]):
                fn()
            out[k].append((time.process_time() - t0) / number[k])
    return out


def yardstick() -> float:
    """The machine's speed at this moment: µs for `json.loads` of IQ's status answer (the body
    of normalization's first row), the median of 11 batches of 0.05 s. This shared machine's
    speed moves by 2x and more over hours, with no steal time to show for it; every CPU and
    rate figure of a run moves with it, so the run measures it at its start and its end."""
    body = normalization_cases()["iq"][0]
    rounds = []
    for _ in range(11):
        n, t0 = 0, time.process_time()
        while (spent := time.process_time() - t0) < 0.05:
            for _ in range(100):
                json.loads(body)
            n += 100
        rounds.append(spent / n * 1e6)
    return statistics.median(rounds)


#: What a status-answer row measures, where it is not the answer a poll parses.
WHAT = {"apptrust": "one promotion's details; its polls read the list, the page row below"}


def bench_normalize(budget: float, rounds: int) -> dict[str, Any]:
    from bench.run import normalization_bodies
    from scanhub.sansio import Response, _common

    cases = {
        vendor: (body, parse, WHAT.get(vendor, "one status answer"), 1)
        for vendor, (body, parse) in normalization_cases().items()
    }
    # The discovery pages of bench.run's section 3 (where the 2.6-3.8x came from):
    # per record the same ratio as per call.
    for name, what in (
        ("apptrust (page of 1000 promotions)", "apptrust"),
        ("appsecplus (list of 1000 scans)", "appsecplus"),
    ):
        body, records, parse = normalization_bodies()[name]
        cases[f"{what}, list"] = (body, parse, f"a page of {records:,} records", records)
    rows = {}
    for vendor, (body, parse, what, records) in cases.items():
        resp = Response(200, body, {"content-type": "application/json"}, "bench", "http://h/x")
        parse(resp)  # it parses at all
        t_json, t_parse = interleaved(
            [lambda body=body: json.loads(body), lambda resp=resp, parse=parse: parse(resp)],
            budget,
            rounds,
        )
        rows[vendor] = {
            "what": what,
            "records": records,
            "bytes": len(body),
            "json_us": statistics.median(t_json) * 1e6,
            "parse_us": statistics.median(t_parse) * 1e6,
            "ratio": statistics.median(p / j for p, j in zip(t_parse, t_json, strict=True)),
        }
    return {"vendors": rows, "orjson": _common._orjson_loads is not None}


# --- a watch poll's CPU ------------------------------------------------------------------------


async def bench_poll_cpu(
    farm: SimFarm, n: int, interval: float, seconds: float, rounds: int
) -> dict[str, Any]:
    """CPU per poll: scanhub watching `n` AppSec+ items (SQLite store: each answer committed,
    changes detected) against a bare aiohttp GET + json() loop over the same simulator at the
    same rate; rounds alternate, ratio = median of per-round ratios. Both in this process
    (process CPU time includes the store's thread); the simulator in its own."""
    from scanhub import AppSecPlus, Lifecycle, Scan, ScanHub, SQLiteStore

    info = farm.info[0]
    ids = farm.seed(0, [("poll-cpu", "sast")] * n)
    path = Path(tempfile.mkdtemp(prefix="scanhub-h19-poll-")) / "state.db"
    client = AppSecPlus(info["url"], info["token"], name="asp")
    headers = {"Authorization": f"Bearer {info['token']}"}
    urls = [f"{info['url']}/scans/{sid}" for sid in ids]
    rate = n / interval
    ours: list[float] = []
    theirs: list[float] = []
    polls_ours: list[int] = []
    async with (
        ScanHub(
            [client], store=SQLiteStore(path), interval=interval, max_interval=interval, backoff=1.0
        ) as hub,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as http,
    ):
        for sid in ids:
            hub.track(Scan("appsecplus", "asp", sid, "poll-cpu", Lifecycle.UNKNOWN, ""))
        sem = asyncio.Semaphore(16)

        async def get(url: str) -> Any:
            async with sem, http.get(url, headers=headers) as r:
                return await r.json()

        async def bare(duration: float) -> int:
            loop = asyncio.get_running_loop()
            t0, sent, tasks = loop.time(), 0, []
            while (now := loop.time()) < t0 + duration:
                due = int((now - t0) * rate)
                while sent < due:
                    tasks.append(asyncio.ensure_future(get(urls[sent % n])))
                    sent += 1
                await asyncio.sleep(0.005)
            await asyncio.gather(*tasks)
            return sent

        async def watched(duration: float) -> int:
            p0 = hub.sources.polls
            async for _ in hub.watch(deadline=duration, until_done=False, initial=False):
                pass
            return hub.sources.polls - p0

        await watched(interval)  # warm-up: first sightings (transitions), connections
        await bare(1.0)
        for _ in range(rounds):
            gc.collect()
            c0 = time.process_time()
            p = await watched(seconds)
            ours.append((time.process_time() - c0) / max(p, 1))
            polls_ours.append(p)
            gc.collect()
            c0 = time.process_time()
            b = await bare(seconds)
            theirs.append((time.process_time() - c0) / max(b, 1))
    return {
        "items": n,
        "interval": interval,
        "rate": rate,
        "seconds": seconds,
        "rounds": rounds,
        "scanhub_us": statistics.median(ours) * 1e6,
        "bare_us": statistics.median(theirs) * 1e6,
        "ratio": statistics.median(a / b for a, b in zip(ours, theirs, strict=True)),
        "scanhub_polls_per_round": polls_ours,
    }


# --- simulators: capacity, the farm, a 10k watch ---------------------------------------------


def bench_sims(quick: bool) -> dict[str, Any]:
    """One simulator process's status answers/s, the farm it takes to reach 3,000/s, and a
    watch of 10,000 items at a 5 s interval over that farm (at least two processes)."""
    out: dict[str, Any] = {"farms": []}
    seconds = 1.0 if quick else 4.0
    need = 3000.0
    chosen = 1
    for k in range(1, 5):
        with SimFarm(k) as farm:
            ids = [farm.seed(p, [("cap", "sast")] * 500) for p in range(k)]
            found = capacity(farm, ids, seconds=seconds)
        out["farms"].append(found)
        chosen = k
        if found["answers_per_s"] >= need or quick:
            break
    out["one_process"] = out["farms"][0]
    out["chosen"] = chosen
    n, interval, warm, measure = (200, 1.0, 1.0, 2.0) if quick else (10_000, 5.0, 5.0, 10.0)
    processes = max(2, chosen)
    with SimFarm(processes) as farm:
        out["watch"] = asyncio.run(watch_farm(farm, n, interval, warm, measure))
    return out


async def watch_farm(
    farm: SimFarm, n: int, interval: float, warm: float, measure: float
) -> dict[str, Any]:
    """`ScanHub.watch` of `n` AppSec+ items spread over the farm (one source per process; the
    default memory store, as `scanhub watch` without state), `interval = max_interval`: the
    configured rate is n / interval. Measured after one interval (the staggered first round),
    at the simulators; the CPU of this process and of the farm tell which is the bottleneck."""
    from scanhub import AppSecPlus, Lifecycle, Scan, ScanHub

    per = [n // farm.size + (1 if k < n % farm.size else 0) for k in range(farm.size)]
    clients, items = [], []
    for k, count in enumerate(per):
        info = farm.info[k]
        ids = farm.seed(k, [("watch", "sast")] * count)
        clients.append(AppSecPlus(info["url"], info["token"], name=f"asp-{k}"))
        items += [
            Scan("appsecplus", f"asp-{k}", sid, "watch", Lifecycle.UNKNOWN, "") for sid in ids
        ]
    async with ScanHub(clients, interval=interval, max_interval=interval, backoff=1.0) as hub:
        for item in items:
            hub.track(item)

        async def after_warm_up() -> tuple[int, int, float, float, float]:
            await asyncio.sleep(warm)
            return (
                farm.requests(),
                hub.sources.polls,
                time.perf_counter(),
                time.process_time(),
                farm.cpu(),
            )

        sample = asyncio.create_task(after_warm_up())
        async for _ in hub.watch(deadline=warm + measure, until_done=False, initial=False):
            pass
        r0, p0, t0, c0, f0 = await sample
        elapsed = time.perf_counter() - t0
        answered = farm.requests() - r0
        polls = hub.sources.polls - p0
        cpu = time.process_time() - c0
        farm_cpu = farm.cpu() - f0
    configured = n / interval
    return {
        "items": n,
        "interval": interval,
        "processes": farm.size,
        "seconds": elapsed,
        "configured_per_s": configured,
        "answered_per_s": answered / elapsed,
        "polls_per_s": polls / elapsed,
        "share": answered / elapsed / configured,
        "client_cores": cpu / elapsed,
        "farm_cores": farm_cpu / elapsed,
    }


# --- the report --------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, aiohttp "
        f"{aiohttp.__version__}, SQLite {sqlite3.sqlite_version}, scanhub "
        f"{scanhub.__version__}"
    )


def ms(x: float | None) -> str:
    return "—" if x is None else f"{x * 1000:.1f} ms"


def mib(x: float) -> str:
    return f"{x / 2**20:.0f} MiB"


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("**met**" if ok else "**missed**")


def size_label(n: int) -> str:
    return (
        f"{n // 1_000_000}M"
        if n >= 1_000_000 and n % 1_000_000 == 0
        else (f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n))
    )


def evaluate(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of the issue: (what, per-size figures, target, met per size)."""
    sizes = [s for s in r["sizes"] if s["items"]]
    rows: list[dict[str, Any]] = []

    def row(
        what: str,
        figure: Callable[[dict[str, Any]], Any],
        fmt: Callable[[Any], str],
        target: str,
        ok: Callable[[dict[str, Any]], bool | None] | None = None,
        baseline: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        rows.append(
            {
                "what": what,
                "cells": [fmt(figure(s)) for s in sizes],
                "baseline": " / ".join(fmt(baseline(s)) for s in sizes) if baseline else "—",
                "target": target,
                "ok": [ok(s) if ok else None for s in sizes],
            }
        )

    def p99(name: str) -> Callable[[dict[str, Any]], tuple[float, float]]:
        return lambda s: (s["reads"][name]["p99"], s["reads"][name]["p50"])

    def lat(v: tuple[float, float]) -> str:
        return f"{ms(v[0])} ({v[1] * 1000:.1f})"

    def within(name: str, factor: float) -> Callable[[dict[str, Any]], bool]:
        return lambda s: s["reads"][name]["p99"] <= factor * s["reads"]["baseline_first"]["p99"]

    row(
        "`GET /api/v1/items?limit=100` p99 (p50)",
        p99("first"),
        lat,
        "≤ 5x baseline first page p99",
        within("first", 5),
        baseline=p99("baseline_first"),
    )
    row(
        "`?lifecycle=failed` p99 (p50)",
        p99("failed"),
        lat,
        "≤ 5x baseline first page p99",
        within("failed", 5),
        baseline=p99("baseline_failed"),
    )
    row(
        "`?q=` text search p99 (p50)",
        p99("search"),
        lat,
        "≤ 8x baseline first page p99",
        within("search", 8),
        baseline=p99("baseline_search"),
    )
    row(
        "page 20 via `next_cursor` p99 (p50)",
        p99("page20"),
        lat,
        "≤ 8x baseline first page p99",
        within("page20", 8),
        baseline=p99("baseline_page20"),
    )
    row(
        "the 20-page walk p50 (p99)",
        lambda s: (s["reads"]["walk20"]["p50"], s["reads"]["walk20"]["p99"]),
        lambda v: f"{ms(v[0])} ({ms(v[1])})",
        "—",
        baseline=lambda s: (
            s["reads"]["baseline_walk20"]["p50"],
            s["reads"]["baseline_walk20"]["p99"],
        ),
    )
    row(
        "`GET /api/v1/items/{key}` p99 (p50)",
        p99("item"),
        lat,
        "≤ 5x baseline first page p99",
        within("item", 5),
    )
    row(
        "`GET /api/v1/summary` p99 (p50)",
        p99("summary"),
        lat,
        "≤ 5x baseline first page p99",
        within("summary", 5),
    )
    row(
        "`GET /metrics` p99 (p50)",
        p99("metrics"),
        lat,
        "≤ 5x baseline first page p99",
        within("metrics", 5),
    )
    row("baseline first page p99 (p50) (the yardstick)", p99("baseline_first"), lat, "—")
    first10 = next((s for s in sizes if s["items"] == 10_000), sizes[0])
    row(
        "first page p99 vs at the smallest size",
        lambda s: s["reads"]["first"]["p99"] / first10["reads"]["first"]["p99"],
        lambda x: f"{x:.2f}x",
        "100k ≤ 2x 10k",
        lambda s: (
            (s["reads"]["first"]["p99"] <= 2 * first10["reads"]["first"]["p99"])
            if s["items"] == 100_000
            else None
        ),
    )
    row(
        f"{CLIENTS} readers, 5 s: answers/s (unanswered)",
        lambda s: (s["load"]["per_s"], s["load"]["unanswered"]),
        lambda v: f"{v[0]:,.0f} ({v[1]})",
        "≥ half the baseline's",
        lambda s: s["load"]["per_s"] >= 0.5 * s["baseline_load"]["per_s"],
        baseline=lambda s: (s["baseline_load"]["per_s"], s["baseline_load"]["unanswered"]),
    )
    row(
        "`/healthz` p99 / max while they read",
        lambda s: (s["load"]["healthz_p99"], s["load"]["healthz_max"]),
        lambda v: f"{ms(v[0])} / {ms(v[1])}",
        "max ≤ 250 ms",
        lambda s: s["load"]["healthz_max"] <= 0.25,
    )
    row(
        "engine polls/s while they read / unloaded (configured)",
        lambda s: (
            s["load"]["polls_per_s"],
            s["unloaded_polls_per_s"],
            s["configured_polls_per_s"],
        ),
        lambda v: f"{v[0]:.0f} / {v[1]:.0f} ({v[2]:.0f})",
        "≥ 90% of unloaded (at most the configured rate)",
        # Each figure counts the polls of one 5-s window, and the schedule's phase moves it by
        # about 10% either way: an unloaded count above the configured rate is that phase,
        # not a rate the poller keeps (a run read 104 against 100 configured), so the
        # yardstick is the unloaded rate up to the configured one.
        lambda s: (
            s["load"]["polls_per_s"]
            >= 0.9 * min(s["unloaded_polls_per_s"], s["configured_polls_per_s"])
        ),
    )
    empty = r["empty"]["start"]
    row(
        f"start → `/readyz` (empty state: {empty['ready_s']:.2f} s)",
        lambda s: s["start"]["ready_s"],
        lambda x: f"{x:.2f} s",
        "100k ≤ empty + 2 s",
        lambda s: s["start"]["ready_s"] <= empty["ready_s"] + 2 if s["items"] == 100_000 else None,
    )
    row(
        f"RSS after start (empty state: {mib(empty['rss'])})",
        lambda s: s["start"]["rss"],
        mib,
        "100k ≤ empty + 64 MiB",
        lambda s: s["start"]["rss"] <= empty["rss"] + 64 * 2**20 if s["items"] == 100_000 else None,
    )
    return rows


def report(r: dict[str, Any]) -> str:
    sizes = [s for s in r["sizes"] if s["items"]]
    labels = [size_label(s["items"]) for s in sizes]
    lines = [
        "## A year of history (issue 19)",
        "",
        f"Measured {r['date']} on {machine()}; load average before the run "
        f"{r['load_before']}, after it {r.get('load_after', '?')} (1, 5 and 15 minutes; "
        "other work on the machine shows there); CPU not charged to this run's processes (other work, and kernel time such as loopback networking) was "
        f"{r.get('foreign_cores', 0):.2f} cores on average during it ("
        + ", ".join(
            f"{size_label(s['items'])}: {s.get('foreign_cores', 0):.2f}"
            for s in r["sizes"]
            if s["items"]
        )
        + " while the service was measured at each size; the run's figure counts the "
        "PostgreSQL cluster it starts as other work). Reproduce: `python -m bench.history` "
        f"({r['wall']:.0f} s here, states cached); `--quick` is the smoke run.",
    ]
    if "yardstick_before" in r:
        lines += [
            "",
            "The machine's speed (`yardstick`: `json.loads` of IQ's status answer, the first "
            f"normalization row's body): {r['yardstick_before']:.2f} µs at the start of the run, "
            f"{r.get('yardstick_after', float('nan')):.2f} µs at its end. Every CPU and rate "
            "figure below moves with it; compare runs at the same speed.",
        ]
    if r["quick"]:
        lines += ["", "**A --quick smoke run: tiny sizes, the figures mean nothing.**"]
    lines += [
        "",
        "Each state was written through `SQLiteStore.commit` (95% finished, about 3.3 "
        "transitions an item, six sources, 500 applications): "
        + "; ".join(
            f"{size_label(s['items'])}: {s['built']['transitions']:,} transitions, "
            f"{mib(s['state_bytes'])} on disk ({s['state_bytes'] / s['built']['transitions']:,.0f}"
            f" bytes a transition, items and indexes included), built in "
            f"{s['built']['build_s']:.0f} s ({s['built']['transitions'] / s['built']['build_s']:,.0f}"
            " transitions/s through the API, making the objects included)"
            + (
                f", migrated since from {s['built']['migrated_from']} in "
                f"{s['built']['migrate_s']:.0f} s (opened by this scanhub, as a user's file is)"
                if "migrated_from" in s["built"]
                else ""
            )
            for s in sizes
        )
        + ".",
        "",
        "`scanhub serve` ran as a subprocess on a copy of each state; the 30-line baseline "
        "(`bench/baseline.py`: aiohttp, stdlib `sqlite3`, `SELECT … ORDER BY key LIMIT 100`, "
        "`json.dumps`) on the same file beside it. The service polled its "
        + ", ".join(f"{s['active']:,} items under way every {s['interval']:g} s" for s in sizes)
        + f" ({POLL_RATE:g} polls/s configured) from a simulator farm of three processes. "
        "Who shares a core (2 cores in all): during the one-at-a-time reads the service, the "
        "baseline and this client process take turns (only one works at a time) while the "
        f"farm answers the polls; during the {CLIENTS}-reader test the load generator "
        "(its own process) and the server under load each use about a core, and the "
        "/healthz probe, the other server and the farm share them.",
        "",
        "### The service on a year of history",
        "",
        "| figure | "
        + " | ".join(labels)
        + " | baseline ("
        + " / ".join(labels)
        + ") | target | met / missed ("
        + " / ".join(labels)
        + ") |",
        "|---|" + "---|" * len(labels) + "---|---|---|",
    ]
    for row in evaluate(r):
        marks = (
            " / ".join(verdict(ok) for ok in row["ok"])
            if any(ok is not None for ok in row["ok"])
            else "—"
        )
        lines.append(
            f"| {row['what']} | "
            + " | ".join(row["cells"])
            + f" | {row['baseline']} | {row['target']} | {marks} |"
        )
    lines += [
        "",
        f"Samples: {sizes[0]['reads']['first']['n']} of each read (p99 of that many), "
        f"{sizes[0]['reads']['page20']['n']} walks of 20 pages. Text searches in turn: "
        + ", ".join(f"`{t}`" for t in SEARCHES)
        + " (0.2%, about 2% and 10% of items); p50 / "
        "p99 each: "
        + "; ".join(
            f"{size_label(s['items'])}: "
            + ", ".join(
                f"`{t}` {ms(v['p50'])} / {ms(v['p99'])}"
                for t, v in s["reads"]["search_terms"].items()
            )
            for s in sizes
        )
        + ". The baseline's text search is `instr(lower(item), ?)`: a walk of the table "
        "until 100 rows match.",
        "",
        "Server CPU while the readers read (cores): "
        + "; ".join(
            f"{size_label(s['items'])}: scanhub {s['load']['server_cores']:.2f}, "
            f"baseline {s['baseline_load']['server_cores']:.2f}"
            for s in sizes
        )
        + ". RSS at the end of the run: "
        + ", ".join(f"{size_label(s['items'])} {mib(s['rss_end'])}" for s in sizes)
        + "; start → URL printed: "
        + ", ".join(f"{size_label(s['items'])} {s['start']['url_s']:.2f} s" for s in sizes)
        + f" (empty {r['empty']['start']['url_s']:.2f} s).",
        "",
    ]
    st, pg = r["sqlite"], r["postgres"]
    norm = r["normalize"]
    pc = r["poll_cpu"]
    sims = r["sims"]
    w = sims["watch"]
    one = sims["one_process"]
    farm_best = sims["farms"][-1]
    other: list[tuple[str, str, str, bool | None]] = [
        (
            f"SQLite: transitions/s (median of {_runs(st)}, each in its own process; batches "
            f"of {st['batch']} over {st['items']:,} items, a new vendor status each, "
            f"{st['transitions']:,} in all)",
            f"{st['per_s']:,.0f}/s{_spread(st)}",
            "≥ 50,000/s",
            st["per_s"] >= 50_000,
        ),
        (
            "SQLite: bytes per transition on disk (file growth; the log table "
            f"alone: {st['transitions_table_per_transition'] or 0:,.0f})",
            f"{st['bytes_per_transition']:,.0f}",
            "≤ 600",
            st["bytes_per_transition"] <= 600,
        ),
    ]
    if pg is None:
        other.append(("PostgreSQL", "not measured: no server binaries here", "≥ 20,000/s", None))
    else:
        other += [
            (
                f"PostgreSQL: transitions/s (median of {_runs(pg)}, each in its own process, "
                "a throwaway cluster, fsync off; same batches)",
                f"{pg['per_s']:,.0f}/s{_spread(pg)}",
                "≥ 20,000/s",
                pg["per_s"] >= 20_000,
            ),
            (
                "PostgreSQL: bytes per transition (database growth; the log table alone: "
                f"{pg['transitions_table_per_transition']:,.0f})",
                f"{pg['bytes_per_transition']:,.0f}",
                "≤ 600",
                pg["bytes_per_transition"] <= 600,
            ),
        ]
    for vendor, v in norm["vendors"].items():
        other.append(
            (
                f"normalization, {vendor} ({v.get('what', 'one status answer')},"
                f" {v['bytes']:,} bytes: parse {v['parse_us'] / v.get('records', 1):.1f} µs,"
                f" json.loads {v['json_us'] / v.get('records', 1):.1f} µs"
                + (" a record)" if v.get("records", 1) > 1 else ")"),
                f"{v['ratio']:.2f}x json.loads",
                "≤ 2x",
                v["ratio"] <= 2,
            )
        )
    other += [
        (
            f"a watch poll's CPU: scanhub ({pc['items']:,} items, SQLite store, every answer "
            f"committed) {pc['scanhub_us']:.0f} µs vs bare aiohttp GET + `json()` "
            f"{pc['bare_us']:.0f} µs, both at {pc['rate']:.0f}/s",
            f"{pc['ratio']:.2f}x",
            "≤ 1.3x",
            pc["ratio"] <= 1.3,
        ),
        (
            f"one simulator process: status answers/s (it used {one['sim_cpu_share']:.2f} of "
            f"a core: {one['answers_per_s'] / max(one['sim_cpu_share'], 1e-9):,.0f} answers "
            "per CPU-second)",
            f"{one['answers_per_s']:,.0f}/s",
            "≥ 3,000/s",
            one["answers_per_s"] >= 3000,
        ),
        (
            f"farm of {farm_best['processes']} process(es): status answers/s",
            f"{farm_best['answers_per_s']:,.0f}/s",
            "≥ 3,000/s",
            farm_best["answers_per_s"] >= 3000,
        ),
        (
            f"a {w['items']:,}-item watch at {w['interval']:g} s over a farm of "
            f"{w['processes']}: polls/s achieved vs configured {w['configured_per_s']:,.0f} "
            f"(client {w['client_cores']:.2f} cores, farm {w['farm_cores']:.2f})",
            f"{w['answered_per_s']:,.0f}/s ({w['share']:.0%})",
            "≥ 95%",
            w["share"] >= 0.95,
        ),
    ]
    lines += [
        "### Writes, normalization, polling, simulators",
        "",
        "| figure | measured | target | |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {verdict(ok)} |" for a, b, c, ok in other]
    lines += [
        "",
        "Normalization decodes with orjson when it is installed ("
        + ("installed" if norm["orjson"] else "not installed")
        + " here) against stdlib "
        "`json.loads`; median of interleaved rounds of CPU time. The simulators' capacity "
        "was driven by two bare-aiohttp load processes (64 requests in flight each) on the "
        "same 2 cores, so a farm's figure is bounded by the clients, not by the simulators "
        "(see their CPU share). The watch ran in this process (the default memory store), "
        "the farm in its own processes.",
        "",
    ]
    missed, beyond = [], []
    for row in evaluate(r):
        for size, label, ok in zip(sizes, labels, row["ok"], strict=True):
            if ok is False:
                (beyond if size["items"] > 100_000 else missed).append(f"{row['what']} ({label})")
    missed += [a.split(" (")[0] for a, _, _, ok in other if ok is False]
    lines += ["### Targets missed", ""]
    lines += [("Missed: " + "; ".join(missed) + ".") if missed else "None missed.", ""]
    if beyond:
        lines += [
            "The issue sets the read targets at 100,000 items and asks for the figures at "
            "larger sizes; held to the same targets there, these fall short: "
            + "; ".join(beyond)
            + ".",
            "",
        ]
    return "\n".join(lines) + "\n"


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: proves the harness runs")
    ap.add_argument(
        "--output",
        default=None,
        help="the Markdown file (its .json beside it); default: a new temporary "
        "directory (never BENCHMARKS.md)",
    )
    ap.add_argument(
        "--sizes",
        default=None,
        help="state sizes, comma-separated (default 10000,100000,1000000; --quick: 300,1200)",
    )
    ap.add_argument(
        "--render",
        metavar="JSON",
        default=None,
        help="rewrite the Markdown from a saved .json (no measuring)",
    )
    ap.add_argument(
        "--notes",
        default=None,
        help="a Markdown file appended to the report (why targets were missed)",
    )
    args = ap.parse_args(argv)
    notes = Path(args.notes).read_text(encoding="utf-8") if args.notes else ""
    out = (
        Path(args.output)
        if args.output
        else (Path(tempfile.mkdtemp(prefix="scanhub-history-")) / "history.md")
    )
    if out.resolve().name == "BENCHMARKS.md":
        ap.error("this harness never writes BENCHMARKS.md; give another --output")
    if args.render:
        results = json.loads(Path(args.render).read_text())
        out.write_text(report(results) + notes, encoding="utf-8")
        print(out.read_text())
        return 0
    q = args.quick
    sizes = (
        [int(x) for x in args.sizes.split(",")]
        if args.sizes
        else [300, 1200]
        if q
        else [10_000, 100_000, 1_000_000]
    )
    samples, walks, load_s = (15, 2, 1.0) if q else (200, 40, 5.0)
    started = time.perf_counter()
    busy0, own0 = machine_busy(), own_cpu()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": q,
        "load_before": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "yardstick_before": yardstick(),
    }
    workdir = Path(tempfile.mkdtemp(prefix="scanhub-h19-run-"))
    # The farm behind the service: one process per AppSec+ source, seeded for the largest
    # state (a smaller state's items under way are a prefix of the same ids).
    most = max(sizes)
    with SimFarm(len(yearstate.ACTIVE_SOURCES)) as farm:
        for k, count in enumerate(yearstate.active_split(most)):
            farm.seed(k, yearstate.active_pairs(count))
        log("start and RSS on an empty state")
        results["empty"] = bench_size(0, workdir, farm, samples=0, walks=0, load_s=0)
        results["sizes"] = []
        for n in sizes:
            log(f"state of {n:,} items")
            results["sizes"].append(
                bench_size(n, workdir, farm, samples=samples, walks=walks, load_s=load_s)
            )
            with contextlib.suppress(OSError):
                for p in sorted((workdir / f"n{n}").iterdir()):
                    p.unlink()
    log("store write rates")
    results["sqlite"] = median_run(
        "bench_sqlite", 1 if q else 3, 2_000 if q else 100_000, 200 if q else 1_000, 500
    )
    results["postgres"] = median_run(
        "bench_postgres", 1 if q else 3, 2_000 if q else 50_000, 200 if q else 1_000, 500
    )
    log("normalization")
    results["normalize"] = bench_normalize(0.05 if q else 1.0, 3 if q else 11)
    log("a watch poll's CPU")
    with SimFarm(1) as farm:
        results["poll_cpu"] = asyncio.run(
            bench_poll_cpu(
                farm, 100 if q else 1000, 1.0 if q else 5.0, 0.5 if q else 3.0, 2 if q else 7
            )
        )
    log("simulators and a 10k watch")
    results["sims"] = bench_sims(q)
    results["wall"] = time.perf_counter() - started
    results["foreign_cores"] = (machine_busy() - busy0 - (own_cpu() - own0)) / results["wall"]
    results["load_after"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    results["yardstick_after"] = yardstick()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
    text = report(results) + notes
    out.write_text(text, encoding="utf-8")
    print(text)
    log(f"written to {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

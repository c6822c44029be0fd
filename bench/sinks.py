"""Section 12 of the benchmarks: sinks (pushes of the committed log to webhooks).

- deliveries per second to a receiver on loopback, one sink and ten sinks (the receiver runs
  in a process of its own, so it does not share this process's CPU);
- commit → delivery latency (p50, p99): a transition committed here, its arrival at the
  receiver (wall clocks of one machine);
- what a sink that is down costs the engine: polls per second and CPU per 1,000 polls while
  watching items on the simulators, with and without a sink whose target refuses every
  connection and is retried every 0.1 s (a far harsher schedule than the standard one)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp

from scanhub import Lifecycle, Scan, ScanHub, SQLiteStore, Vendor
from scanhub._sinks import Sink, new_secret
from scanhub.store import Observation

SECRET = new_secret()

#: A receiver in a process of its own: answers 200 and notes each webhook-id's arrival time.
RECEIVER = textwrap.dedent(
    """
    import json, sys, time
    from aiohttp import web
    arrived = {}
    async def hook(request):
        await request.read()
        arrived.setdefault(request.path + " " + request.headers["webhook-id"], time.time())
        return web.Response(text="ok")
    async def seen(request):
        return web.json_response(arrived)
    app = web.Application()
    app.router.add_post("/{sink}", hook)
    app.router.add_get("/arrived", seen)
    async def main():
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        while True:
            await asyncio.sleep(3600)
    import asyncio
    asyncio.run(main())
    """
)


async def _until(check: Any, every: float = 0.005) -> None:
    while True:
        if check():
            return
        await asyncio.sleep(every)


def _scan(i: int, lc: Lifecycle) -> Scan:
    return Scan(Vendor.APPSECPLUS, "appsecplus", f"s{i:06d}", "app", lc, lc.value)


async def _arrived(http: aiohttp.ClientSession, base: str) -> dict[str, float]:
    async with http.get(f"{base}/arrived") as r:
        return dict(await r.json())


async def _throughput(base: str, n_sinks: int, n: int) -> float:
    """Deliveries per second: `n` transitions committed at once, to `n_sinks` sinks."""
    directory = Path(tempfile.mkdtemp(prefix="scanhub-sinks-"))
    sinks = [
        Sink.webhook(f"k{i}-{n_sinks}", f"{base}/k{i}-{n_sinks}", SECRET, allow_private=True)
        for i in range(n_sinks)
    ]
    hub = ScanHub(store=SQLiteStore(directory / "s.db"), sinks=sinks)
    await hub.open()
    try:
        async with hub.polling(), aiohttp.ClientSession() as http:
            await _until(lambda: len(hub.sinks.states) == n_sinks)
            now = time.time()
            t0 = time.perf_counter()
            for start in range(0, n, 500):
                await hub.store.commit(
                    [
                        Observation(f"k{i}", _at(now), _scan(i, Lifecycle.RUNNING), None, "b")
                        for i in range(start, min(n, start + 500))
                    ]
                )
            await _until(lambda: sum(hub.sinks.delivered.values()) >= n * n_sinks)
            seconds = time.perf_counter() - t0
            await _arrived(http, base)
    finally:
        await hub.close()
    return n * n_sinks / seconds


def _at(now: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(now, UTC)


async def _latency(base: str, n: int, every: float) -> list[float]:
    """Commit → arrival, one transition at a time, `every` seconds apart."""
    directory = Path(tempfile.mkdtemp(prefix="scanhub-sinks-"))
    sink = Sink.webhook("lat", f"{base}/lat", SECRET, allow_private=True)
    hub = ScanHub(store=SQLiteStore(directory / "s.db"), sinks=[sink])
    await hub.open()
    committed: dict[str, float] = {}
    try:
        async with hub.polling(), aiohttp.ClientSession() as http:
            await _until(lambda: "lat" in hub.sinks.states)
            for i in range(n):
                at = time.time()
                (done,) = await hub.store.commit(
                    [Observation(f"l{i}", _at(at), _scan(i, Lifecycle.RUNNING), None, "b")]
                )
                committed[f"/lat {done.id}"] = time.time()
                await asyncio.sleep(every)
            await _until(lambda: hub.sinks.delivered["lat"] >= n)
            arrived = await _arrived(http, base)
    finally:
        await hub.close()
    return sorted(arrived[k] - t for k, t in committed.items() if k in arrived)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _watch_cost(
    info: dict[str, Any], sp: Any, n: int, interval: float, seconds: float, down: bool
) -> dict[str, float]:
    """Polls per second and CPU per 1,000 polls while watching `n` AppSec+ items (each poll
    a request to the simulator), with or without a sink that is down."""
    from scanhub import AppSecPlus, MemoryStore

    ids = sp.call("seed_scans", n)
    c = info["appsecplus"]["creds"]
    client = AppSecPlus(info["appsecplus"]["url"], c["token"], name="appsecplus")
    sinks = []
    if down:
        sinks.append(
            Sink.webhook(
                "down",
                f"http://127.0.0.1:{_closed_port()}/hook",
                SECRET,
                allow_private=True,
                schedule=(0.1,) * 100_000,
                max_age=10**9,
            )
        )
    async with ScanHub(
        [client], interval=interval, backoff=1.0, store=MemoryStore(), sinks=sinks
    ) as hub:
        for sid in ids:
            hub.track(Scan(Vendor.APPSECPLUS, "appsecplus", sid, "one", Lifecycle.UNKNOWN, ""))

        async def after_warm_up() -> tuple[int, float, float]:
            await asyncio.sleep(interval)
            return hub.sources.polls, time.process_time(), time.perf_counter()

        sample = asyncio.create_task(after_warm_up())
        async for _ in hub.watch(deadline=interval + seconds, until_done=False, initial=False):
            pass
        polls0, cpu0, t0 = await sample
        polls, cpu = hub.sources.polls - polls0, time.process_time() - cpu0
        wall = time.perf_counter() - t0
        failures = hub.sinks.states["down"].failures if down and "down" in hub.sinks.states else 0
    return {
        "polls_per_s": polls / wall,
        "cpu_per_1000": cpu / max(polls, 1) * 1000,
        "sink_failures": failures,
    }


def bench_sinks(info: dict[str, Any], sp: Any, quick: bool) -> dict[str, Any]:
    """The figures of section 12 (see the module docstring)."""
    n = 200 if quick else 3000
    proc = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        base = f"http://127.0.0.1:{proc.stdout.readline().strip()}"
        one = asyncio.run(_throughput(base, 1, n))
        ten = asyncio.run(_throughput(base, 10, n // 5))
        lat = asyncio.run(_latency(base, 50 if quick else 300, 0.01))
    finally:
        proc.terminate()
        proc.wait(10)
    size, interval, seconds = (100, 0.5, 1.0) if quick else (1000, 1.0, 6.0)
    rounds = 1 if quick else 3
    without, with_down = [], []
    for _ in range(rounds):  # interleaved, so drift in the machine hits both alike
        without.append(asyncio.run(_watch_cost(info, sp, size, interval, seconds, False)))
        with_down.append(asyncio.run(_watch_cost(info, sp, size, interval, seconds, True)))

    def median(rows: list[dict[str, float]], key: str) -> float:
        values = sorted(r[key] for r in rows)
        return values[len(values) // 2]

    return {
        "transitions": n,
        "one_per_s": one,
        "ten_per_s": ten,
        "ten_transitions": n // 5,
        "latency_p50": lat[len(lat) // 2] if lat else 0.0,
        "latency_p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0.0,
        "latency_n": len(lat),
        "watch_items": size,
        "watch_rate": size / interval,
        "polls_without": median(without, "polls_per_s"),
        "polls_with": median(with_down, "polls_per_s"),
        "cpu_without": median(without, "cpu_per_1000"),
        "cpu_with": median(with_down, "cpu_per_1000"),
        "down_failures": median(with_down, "sink_failures"),
        "rounds": rounds,
    }


def report(s: dict[str, Any] | None) -> list[str]:
    """Section 12 of BENCHMARKS.md."""
    lines = ["## 12. Sinks", ""]
    if s is None:
        return [*lines, "Not measured.", ""]
    return [
        *lines,
        "Pushes of the committed log to a webhook receiver on loopback (a process of its own "
        "that answers 200), each delivery a signed CloudEvent, the cursor in a SQLite file.",
        "",
        "| what | figure |",
        "|---|---|",
        f"| one sink: {s['transitions']:,} transitions committed at once | "
        f"**{s['one_per_s']:,.0f} deliveries/s** |",
        f"| ten sinks: {s['ten_transitions']:,} transitions, each to all ten | "
        f"**{s['ten_per_s']:,.0f} deliveries/s** |",
        f"| commit → arrival at the receiver ({s['latency_n']} transitions, 10 ms apart) | "
        f"p50 **{s['latency_p50'] * 1000:.1f} ms**, p99 {s['latency_p99'] * 1000:.1f} ms |",
        "",
        f"A sink that is down (its target refuses every connection; retried every 0.1 s, so "
        f"{s['down_failures']:.0f} failed attempts in the run) while the engine watches "
        f"{s['watch_items']:,} items at {s['watch_rate']:,.0f} polls/s on the simulators "
        f"(median of {s['rounds']} interleaved rounds):",
        "",
        "| | polls/s | CPU per 1,000 polls |",
        "|---|---|---|",
        f"| no sink | {s['polls_without']:,.0f} | {s['cpu_without'] * 1000:.0f} ms |",
        f"| a sink that is down | {s['polls_with']:,.0f} | {s['cpu_with'] * 1000:.0f} ms |",
        "",
    ]


__all__ = ["bench_sinks", "report"]

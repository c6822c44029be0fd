"""scanhub benchmarks. Run: `python -m bench.run` (writes BENCHMARKS.md); `--quick` for a tiny
smoke run. The simulators run in a separate process on loopback so the client under test has its
own core; every figure is measured in this one run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import requests

import scanhub
from scanhub import (
    AppSecPlus,
    AppTrust,
    IQServer,
    Lifecycle,
    Promotion,
    RateLimit,
    RetryPolicy,
    Scan,
    ScanHub,
    ThreadFix,
    Vendor,
)
from scanhub.sansio import Response, appsecplus, apptrust, iq, threadfix
from scanhub.store import Observation

from .simproc import SimProcess
from .sinks import bench_sinks
from .sinks import report as sinks_report

CONCURRENCY = 16  # per source, scanhub's default; the bare-aiohttp baseline gets the same


# --- shared setup -------------------------------------------------------------------------


def make_clients(info: dict[str, Any], **kw: Any) -> dict[str, scanhub.Client]:
    c = {n: v["creds"] for n, v in info.items()}
    return {
        "iq": IQServer(
            info["iq"]["url"], c["iq"]["username"], c["iq"]["password"], name="iq", **kw
        ),
        "threadfix": ThreadFix(
            info["threadfix"]["url"], c["threadfix"]["api_key"], name="threadfix", **kw
        ),
        "appsecplus": AppSecPlus(
            info["appsecplus"]["url"], c["appsecplus"]["token"], name="appsecplus", **kw
        ),
        "apptrust": AppTrust(
            info["apptrust"]["url"], c["apptrust"]["token"], name="apptrust", **kw
        ),
    }


def placeholders(seeded: dict[str, Any]) -> list[scanhub.Item]:
    """What a user tracks: the ids the vendors gave, state not yet known."""
    U = Lifecycle.UNKNOWN
    app, sids = seeded["iq"]
    items: list[scanhub.Item] = [Promotion(Vendor.IQ, "iq", s, app, U, "") for s in sids]
    tf_app, pids = seeded["threadfix"]
    items += [Scan(Vendor.THREADFIX, "threadfix", str(p), str(tf_app), U, "") for p in pids]
    asp_app, scans = seeded["appsecplus"]
    items += [Scan(Vendor.APPSECPLUS, "appsecplus", s, asp_app, U, "") for s in scans]
    (key, version), ids = seeded["apptrust"]
    items += [Promotion(Vendor.APPTRUST, "apptrust", i, key, U, "", version=version) for i in ids]
    return items


def bare_requests(
    info: dict[str, Any], seeded: dict[str, Any]
) -> list[tuple[str, str, dict[str, str]]]:
    """(source, url, headers) for the same endpoints, built by hand as a script would."""
    c = {n: v["creds"] for n, v in info.items()}
    basic = base64.b64encode(f"{c['iq']['username']}:{c['iq']['password']}".encode()).decode()
    out = []
    app, sids = seeded["iq"]
    out += [
        (
            "iq",
            f"{info['iq']['url']}/api/v2/evaluation/applications/{app}/status/{s}",
            {"Authorization": f"Basic {basic}"},
        )
        for s in sids
    ]
    tf_app, pids = seeded["threadfix"]
    out += [
        (
            "threadfix",
            f"{info['threadfix']['url']}/rest/latest/applications/{tf_app}/pendingScan/{p}/status",
            {"Authorization": f"APIKEY {c['threadfix']['api_key']}", "Accept": "application/json"},
        )
        for p in pids
    ]
    _, scans = seeded["appsecplus"]
    out += [
        (
            "appsecplus",
            f"{info['appsecplus']['url']}/scans/{s}",
            {"Authorization": f"Bearer {c['appsecplus']['token']}"},
        )
        for s in scans
    ]
    (key, version), ids = seeded["apptrust"]
    out += [
        (
            "apptrust",
            f"{info['apptrust']['url']}/applications/{key}/versions/{version}/promotions/{i}?include=message",
            {"Authorization": f"Bearer {c['apptrust']['token']}"},
        )
        for i in ids
    ]
    return out


async def scanhub_snapshots(
    info: dict[str, Any], seeded: dict[str, Any], repeats: int, measure: Callable[[], float]
) -> list[float]:
    clients = make_clients(info)
    async with ScanHub(clients.values(), concurrency=CONCURRENCY) as hub:
        for item in placeholders(seeded):
            hub.track(item)
        snap = await hub.snapshot()  # warm-up: connections, first states
        assert not snap.errors, next(iter(snap.errors.values()))
        out = []
        for _ in range(repeats):
            gc.collect()
            t0 = measure()
            snap = await hub.snapshot()
            out.append(measure() - t0)
            assert not snap.errors and len(snap.items) == len(placeholders(seeded))
            assert all(i.lifecycle in (Lifecycle.QUEUED, Lifecycle.RUNNING) for i in snap.items)
    return out


def bare_round(
    session: aiohttp.ClientSession,
    reqs: list[tuple[str, str, dict[str, str]]],
    info: dict[str, Any],
) -> Callable[[], Awaitable[None]]:
    """One bare-aiohttp pass over every endpoint: GET and `json()`, no normalization, with the
    same concurrency per source as scanhub."""
    sems = {s: asyncio.Semaphore(CONCURRENCY) for s in info}

    async def one(source: str, url: str, headers: dict[str, str]) -> Any:
        async with sems[source], session.get(url, headers=headers) as r:
            return await r.json()

    async def round_() -> None:
        results = await asyncio.gather(*(one(*r) for r in reqs))
        assert len(results) == len(reqs)

    return round_


async def bare_aiohttp(
    info: dict[str, Any], seeded: dict[str, Any], repeats: int, measure: Callable[[], float]
) -> list[float]:
    reqs = bare_requests(info, seeded)
    connector = aiohttp.TCPConnector(limit=200, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        round_ = bare_round(session, reqs, info)
        await round_()  # warm-up
        out = []
        for _ in range(repeats):
            gc.collect()
            t0 = measure()
            await round_()
            out.append(measure() - t0)
    return out


async def cpu_interleaved(
    info: dict[str, Any], seeded: dict[str, Any], rounds: int
) -> tuple[list[float], list[float]]:
    """Process CPU seconds of scanhub snapshots and bare-aiohttp rounds over the same items,
    alternating round by round in one event loop (this VM's speed drifts; neighbours in time
    see the same drift)."""
    reqs = bare_requests(info, seeded)
    clients = make_clients(info)
    connector = aiohttp.TCPConnector(limit=200, limit_per_host=0)
    async with (
        ScanHub(clients.values(), concurrency=CONCURRENCY) as hub,
        aiohttp.ClientSession(connector=connector) as session,
    ):
        for item in placeholders(seeded):
            hub.track(item)
        bare = bare_round(session, reqs, info)

        snap = await hub.snapshot()  # warm-up both
        assert not snap.errors
        await bare()
        ours, theirs = [], []
        for _ in range(rounds):
            gc.collect()
            t0 = time.process_time()
            snap = await hub.snapshot()
            ours.append(time.process_time() - t0)
            assert not snap.errors
            gc.collect()
            t0 = time.process_time()
            await bare()
            theirs.append(time.process_time() - t0)
    return ours, theirs


def sequential_requests(info: dict[str, Any], seeded: dict[str, Any]) -> float:
    """What the vendors' own examples do: requests.get in a loop, one after the other."""
    reqs = bare_requests(info, seeded)
    t0 = time.perf_counter()
    for _, url, headers in reqs:
        r = requests.get(url, headers=headers, timeout=30)
        r.raise_for_status()
        r.json()
    return time.perf_counter() - t0


# --- 3. normalization ---------------------------------------------------------------------


def normalization_bodies() -> dict[str, tuple[bytes, int, Callable[[Response], Any]]]:
    """Per vendor: (an answer body the simulator renders, records in it, parse function)."""
    from scanhub.sim import AppSecPlusSim, AppTrustSim, IQSim, ThreadFixSim

    at = AppTrustSim()
    page = {
        "promotions": [at.synthetic_record("bench", "1.0.0", i) for i in range(1000)],
        "total": 1000,
        "limit": 1000,
        "offset": 0,
    }
    asp = AppSecPlusSim()
    scans = [asp.render(s) for s in asp.seed_scans("bench", 1000, duration=0)]
    iq_sim = IQSim()
    app, _ = iq_sim.add_application("bench")
    (status_id,) = iq_sim.seed_promotions(app, 1, duration=0)  # COMPLETED, with report links
    tf = ThreadFixSim()
    (pending_id,) = tf.seed_pending(6, 1, duration=0)  # DONE
    B = "http://h"
    return {
        "apptrust (page of 1000 promotions)": (
            json.dumps(page).encode(),
            1000,
            lambda r: apptrust.parse_promotions(
                r, source="s", application_key="bench", version="1.0.0", offset=0
            ),
        ),
        "appsecplus (list of 1000 scans)": (
            json.dumps(scans).encode(),
            1000,
            lambda r: appsecplus.parse_list(r, source="s"),
        ),
        "iq (one status answer)": (
            json.dumps(iq_sim.render(status_id)).encode(),
            1,
            lambda r: iq.parse_status(r, source="s", base_url=B, application_id=app, status_id="x"),
        ),
        "threadfix (one pending-scan answer)": (
            json.dumps(tf.render(pending_id)).encode(),
            1,
            lambda r: threadfix.parse_pending_scan(r, source="s"),
        ),
    }


def interleaved(fns: list[Callable[[], Any]], budget: float, rounds: int = 11) -> list[list[float]]:
    """Seconds per call of each function, measured in alternating batches (a, b, c, a, b, c,
    ...): this VM's speed drifts by tens of percent within seconds, and neighbours in time see
    the same drift, so ratios of one round are fair. Each batch starts from a collected heap;
    the garbage collector stays on while it runs, as in real use. Returns per-function lists."""
    number = []
    for fn in fns:
        t0 = time.perf_counter()
        fn()
        once = max(time.perf_counter() - t0, 1e-7)
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


def bench_normalize(budget: float) -> list[dict[str, Any]]:
    """Each parser with orjson (when installed, as `pip install scanhub[fast]` gives) and with
    the stdlib decoder alone, against json.loads; medians over interleaved rounds."""
    from scanhub.sansio import _common

    fast = _common._orjson_loads

    def stdlib_only(parse: Callable[[Response], Any], resp: Response) -> Any:
        _common._orjson_loads = None
        try:
            return parse(resp)
        finally:
            _common._orjson_loads = fast

    rows = []
    for name, (body, n, parse) in normalization_bodies().items():
        resp = Response(200, body, {"content-type": "application/json"}, "bench", "")
        t_json, t_parse, t_std = interleaved(
            [
                lambda body=body: json.loads(body),
                lambda resp=resp, parse=parse: parse(resp),
                lambda resp=resp, parse=parse: stdlib_only(parse, resp),
            ],
            budget,
        )
        med = statistics.median
        rows.append(
            {
                "name": name,
                "records": n,
                "bytes": len(body),
                "json_per_s": n / med(t_json),
                "norm_per_s": n / med(t_parse),
                "ratio": med(p / j for p, j in zip(t_parse, t_json, strict=True)),
                "std_per_s": n / med(t_std),
                "std_ratio": med(p / j for p, j in zip(t_std, t_json, strict=True)),
            }
        )
    return rows


# --- 4. memory ----------------------------------------------------------------------------


def bench_memory(n: int) -> dict[str, float]:
    """Bytes per tracked item beyond its raw payload, items made by the real parsers from
    per-item answers shaped like the simulators' (tracemalloc)."""
    from scanhub.sim import AppSecPlusSim, AppTrustSim, IQSim, ThreadFixSim

    per = n // 4
    never = 1e12  # every item stays in progress, as tracked items are
    iq_sim, tf, asp, at = IQSim(), ThreadFixSim(), AppSecPlusSim(), AppTrustSim()
    app, _ = iq_sim.add_application("bench")
    bodies: list[tuple[str, bytes]] = []
    for sid in iq_sim.seed_promotions(app, per, duration=never):
        bodies.append(("iq", json.dumps(iq_sim.render(sid)).encode()))
    for pid in tf.seed_pending(7, per, duration=never):
        bodies.append(("tf", json.dumps(tf.render(pid)).encode()))
    for scan_id in asp.seed_scans("bench", per, duration=never):
        bodies.append(("asp", json.dumps(asp.render(scan_id)).encode()))
    for millis in at.seed_promotions("bench", "1.0.0", per, duration=never):
        bodies.append(("at", json.dumps(at.render("bench", "1.0.0", millis)).encode()))
    del iq_sim, tf, asp, at
    clients = make_clients(
        {
            n: {"url": f"http://{n}", "creds": c}
            for n, c in {
                "iq": {"username": "u", "password": "p"},
                "threadfix": {"api_key": "k"},
                "appsecplus": {"token": "t"},
                "apptrust": {"token": "t"},
            }.items()
        }
    )
    hub = ScanHub(clients.values())

    def parse(kind: str, body: bytes, i: int) -> scanhub.Item:
        r = Response(200, body, {}, "bench", "")
        if kind == "iq":
            return iq.parse_status(
                r, source="iq", base_url="http://iq", application_id=app, status_id=f"{i:032x}"
            )
        if kind == "tf":
            return threadfix.parse_pending_scan(r, source="threadfix")
        if kind == "asp":
            return appsecplus.parse_scan(r, source="appsecplus")
        return apptrust.parse_promotion(
            r, source="apptrust", application_key="bench", version="1.0.0"
        )

    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    raws = [json.loads(b) for _, b in bodies]
    raw_bytes = tracemalloc.get_traced_memory()[0] - base
    del raws
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    for i, (kind, body) in enumerate(bodies):
        hub.working.add(parse(kind, body, i), "bench")  # what the engine holds per active item
    total = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert len(hub.working) == len(bodies)
    return {
        "items": len(bodies),
        "total": total,
        "raw": raw_bytes,
        "per_item_total": total / len(bodies),
        "per_item_beyond_raw": (total - raw_bytes) / len(bodies),
    }


async def bench_paging(info: dict[str, Any], count: int) -> dict[str, float]:
    """Page through a version with `count` promotions; peak memory growth must stay flat."""
    at = make_clients(info)["apptrust"]
    assert isinstance(at, AppTrust)
    async with at:
        # warm the connection and imports before measuring
        async for _ in at.promotions("big", "9.9.9", page_size=10):
            break
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        seen = 0
        async for promo in at.promotions("big", "9.9.9", page_size=1000):
            seen += 1
            assert promo.lifecycle is Lifecycle.SUCCEEDED
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
    assert seen == count, (seen, count)
    return {"count": seen, "peak_growth": peak, "seconds": elapsed}


# --- 5. politeness ------------------------------------------------------------------------


async def bench_politeness(
    sp: SimProcess,
    info: dict[str, Any],
    *,
    limit: int,
    demand: int,
    scale: float,
    retry_after: float,
    n429: int,
) -> dict[str, Any]:
    """A 1,500 / 5 min limit (or `limit`) over simulated time: `scale` simulated seconds pass
    per real second, for the client's limiter and for the server's arrival log alike."""
    period = 300.0

    def clock() -> float:
        return time.monotonic() * scale

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(seconds / scale)

    seeded = sp.call("seed", 1)
    scan_id = seeded["appsecplus"][1][0]
    creds = info["appsecplus"]["creds"]
    sp.call("faults", ("appsecplus", {}))
    sp.call("record", "appsecplus")
    # The guard absorbs real network/queueing jitter (0.5 s of it); time here runs `scale`
    # times faster, so the same real jitter spans `scale` times more simulated seconds.
    asp = AppSecPlus(
        info["appsecplus"]["url"],
        creds["token"],
        rate_limit=RateLimit(limit, period, guard=0.5 * scale),
        clock=clock,
        sleep=sleep,
    )
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with sem:
            await asp.scan(scan_id)

    t0 = time.monotonic()
    async with asp:
        await asyncio.gather(*(one() for _ in range(demand)))
    real = time.monotonic() - t0
    answers = sp.call("answers", "appsecplus")
    arrivals = [a * scale for a, _ in answers]
    best, lo = 0, 0
    for hi, t in enumerate(arrivals):
        while t - arrivals[lo] >= period:
            lo += 1
        best = max(best, hi - lo + 1)
    window = {
        "limit": limit,
        "period": period,
        "demand": demand,
        "sent": asp.transport.sent,
        "received": len(arrivals),
        "max_in_any_window": best,
        "simulated_seconds": (arrivals[-1] - arrivals[0]) if arrivals else 0.0,
        "real_seconds": real,
    }

    # 429s honoured: the server answers 429 + Retry-After to a share of requests; after each
    # 429 the next request must not arrive before Retry-After has passed (simulated seconds).
    sp.call(
        "faults", ("appsecplus", {"rate_limit_rate": 0.3, "retry_after": retry_after, "seed": 11})
    )
    sp.call("record", "appsecplus")
    asp2 = AppSecPlus(
        info["appsecplus"]["url"],
        creds["token"],
        clock=clock,
        sleep=sleep,
        retry=RetryPolicy(attempts=10),
    )
    async with asp2:
        for _ in range(n429):
            await asp2.scan(scan_id)
    answers = sp.call("answers", "appsecplus")
    sp.call("faults", ("appsecplus", {}))
    gaps = [
        (answers[i + 1][0] - answers[i][0]) * scale
        for i in range(len(answers) - 1)
        if answers[i][1] == 429
    ]
    honoured = sum(1 for g in gaps if g >= retry_after * 0.99)
    return {
        "window": window,
        "retry_after": retry_after,
        "n429": len(gaps),
        "honoured": honoured,
        "min_gap": min(gaps) if gaps else None,
    }


# --- report -------------------------------------------------------------------------------


# --- 6-9. the engine and the store --------------------------------------------------------


async def bench_one_source(
    info: dict[str, Any], n: int, repeats: int, latency: float, sp: SimProcess
) -> dict[str, Any]:
    """A snapshot of `n` AppSec+ scans on one source: scanhub with default (adaptive)
    concurrency against bare aiohttp with 64 requests in flight."""
    ids = sp.call("seed_scans", n)
    sp.call("faults", ("appsecplus", {"latency": latency}))
    c = info["appsecplus"]["creds"]
    client = AppSecPlus(info["appsecplus"]["url"], c["token"], name="appsecplus")
    ours: list[float] = []
    async with ScanHub([client]) as hub:
        for sid in ids:
            hub.track(Scan(Vendor.APPSECPLUS, "appsecplus", sid, "one", Lifecycle.UNKNOWN, ""))
        snap = await hub.snapshot()  # warm-up: connections, and the limit finds its level
        assert not snap.errors, next(iter(snap.errors.values()))
        for _ in range(repeats):
            gc.collect()
            t0 = time.perf_counter()
            snap = await hub.snapshot()
            ours.append(time.perf_counter() - t0)
            assert not snap.errors
        learned = hub.sources.concurrency_of("appsecplus")
    headers = {"Authorization": f"Bearer {c['token']}"}
    urls = [f"{info['appsecplus']['url']}/scans/{sid}" for sid in ids]
    bare: list[float] = []
    connector = aiohttp.TCPConnector(limit=200, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sem = asyncio.Semaphore(64)

        async def one(url: str) -> Any:
            async with sem, session.get(url, headers=headers) as r:
                return await r.json()

        await asyncio.gather(*(one(u) for u in urls))
        for _ in range(repeats):
            gc.collect()
            t0 = time.perf_counter()
            await asyncio.gather(*(one(u) for u in urls))
            bare.append(time.perf_counter() - t0)
    sp.call("faults", ("appsecplus", {}))
    return {"items": n, "latency": latency, "scanhub": ours, "bare": bare, "learned": learned}


async def bench_head_of_line(
    info: dict[str, Any], sp: SimProcess, n: int, interval: float, seconds: float
) -> dict[str, Any]:
    """Items on a healthy source polled while every answer of another source hangs."""
    healthy_ids = sp.call("seed_scans", n)
    app, hanging_ids = sp.call("seed_iq", n)
    sp.call("faults", ("iq", {"latency": 3600.0}))
    clients = make_clients(info)
    before = sp.call("requests")["appsecplus"]
    async with ScanHub(
        [clients["appsecplus"], clients["iq"]], interval=interval, backoff=1.0
    ) as hub:
        for sid in healthy_ids:
            hub.track(Scan(Vendor.APPSECPLUS, "appsecplus", sid, "one", Lifecycle.UNKNOWN, ""))
        for sid in hanging_ids:
            hub.track(Promotion(Vendor.IQ, "iq", sid, app, Lifecycle.UNKNOWN, ""))
        t0 = time.perf_counter()
        async for _ in hub.watch(deadline=seconds, until_done=False, initial=False):
            pass
        overshoot = time.perf_counter() - t0 - seconds
    polls = sp.call("requests")["appsecplus"] - before
    sp.call("faults", ("iq", {}))
    return {
        "items": n,
        "interval": interval,
        "seconds": seconds,
        "polls": polls,
        "expected": n * seconds / interval,
        "deadline_overshoot": overshoot,
    }


async def bench_watch_cpu(
    info: dict[str, Any], sp: SimProcess, n: int, interval: float, seconds: float
) -> dict[str, Any]:
    """Process CPU per 1,000 polls while watching `n` items at a poll rate of n / interval."""
    ids = sp.call("seed_scans", n)
    c = info["appsecplus"]["creds"]
    client = AppSecPlus(info["appsecplus"]["url"], c["token"], name="appsecplus")
    async with ScanHub([client], interval=interval, backoff=1.0) as hub:
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        for sid in ids:
            hub.track(Scan(Vendor.APPSECPLUS, "appsecplus", sid, "one", Lifecycle.UNKNOWN, ""))
        tracked = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()

        # Sample the counters after one interval (the staggered first round), then measure
        # the rest of the same watch.
        async def after_warm_up() -> tuple[int, float]:
            await asyncio.sleep(interval)
            return hub.sources.polls, time.process_time()

        sample = asyncio.create_task(after_warm_up())
        async for _ in hub.watch(deadline=interval + seconds, until_done=False, initial=False):
            pass
        polls0, cpu0 = await sample
        polls, cpu = hub.sources.polls - polls0, time.process_time() - cpu0
    return {
        "items": n,
        "interval": interval,
        "polls": polls,
        "cpu_per_1000": cpu / max(polls, 1) * 1000,
        "bytes_per_item": tracked / n,
    }


async def bench_store(transitions: int, items: int) -> dict[str, Any]:
    """SQLite: transitions committed per second in batches, bytes per transition, and the time
    to resume (open the store and restore the tracked set) with that history recorded."""
    from scanhub import SQLiteStore

    directory = Path(tempfile.mkdtemp(prefix="scanhub-store-"))
    path = directory / "state.db"
    scans = [
        Scan(
            Vendor.APPSECPLUS,
            "appsecplus",
            f"scan-{i:06d}",
            "app",
            Lifecycle.RUNNING,
            "running",
            raw={"id": f"scan-{i:06d}", "status": "running", "scanType": "sast"},
        )
        for i in range(items)
    ]
    now = datetime.now(UTC)
    batch = 500
    async with SQLiteStore(path) as store:
        await store.track([(s, "bench") for s in scans], now)
        t0 = time.perf_counter()
        done = 0
        while done < transitions:
            chunk = [
                _step(scans[(done + k) % items], done + k, now)
                for k in range(min(batch, transitions - done))
            ]
            await store.commit(chunk)
            done += len(chunk)
        seconds = time.perf_counter() - t0
    size = SQLiteStore(path).size()
    client = AppSecPlus("http://127.0.0.1:9", "t0ken-bench", name="appsecplus")
    t0 = time.perf_counter()
    hub = ScanHub([client], store=SQLiteStore(path))
    await hub.open()
    resumed = len(hub.working)
    resume = time.perf_counter() - t0
    await hub.close()
    return {
        "transitions": transitions,
        "batch": batch,
        "per_s": transitions / seconds,
        "bytes_per_transition": size / transitions,
        "resume_s": resume,
        "resumed_items": resumed,
    }


class _Still(scanhub.Client):
    """A source whose items never change: the engine idles and the service is what is
    measured."""

    vendor = "appsecplus"

    async def refresh(self, item: Any) -> Any:
        return item


# --- 10. the service ------------------------------------------------------------------------


async def bench_service(n_items: int, n_clients: int, n_events: int) -> dict[str, Any]:
    """`scanhub serve` in-process over loopback: GET /api/v1/items and /metrics with `n_items`
    tracked, and the live stream fanned out to `n_clients` at once."""
    from scanhub import MemoryStore
    from scanhub._config import parse_config
    from scanhub.serve import Service

    hub = ScanHub(
        [_Still("http://still.invalid", name="bench")], interval=3600, store=MemoryStore()
    )
    config = parse_config(
        {
            "source": [
                {
                    "name": "bench",
                    "vendor": "appsecplus",
                    "base_url": "http://still.invalid",
                    "token_env": "T",
                }
            ]
        },
        "<bench>",
        env={"T": "x"},
    )
    await hub.open()
    for i in range(n_items):
        lc = (Lifecycle.QUEUED, Lifecycle.RUNNING, Lifecycle.SUCCEEDED)[i % 3]
        hub.track(Scan(Vendor.APPSECPLUS, "bench", f"s{i:06d}", f"app-{i % 50}", lc, lc.value))
    await hub.flush()
    svc = Service(hub, config, port=0, heartbeat=30)
    url = await svc.start()
    out: dict[str, Any] = {"items": n_items, "clients": n_clients, "events": n_events}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        timings = []
        for k in range(200):
            query = (
                "limit=100",
                "limit=100&lifecycle=running",
                f"limit=100&application=app-{k % 50}",
                "limit=1000",
            )[k % 4]
            t0 = time.perf_counter()
            async with http.get(f"{url}/api/v1/items?{query}") as r:
                await r.read()
            timings.append(time.perf_counter() - t0)
        out["items_p50"], out["items_p99"] = _pct(timings, 50), _pct(timings, 99)
        scrapes = []
        for _ in range(20):
            t0 = time.perf_counter()
            async with http.get(f"{url}/metrics") as r:
                await r.read()
            scrapes.append(time.perf_counter() - t0)
        out["metrics_p50"] = _pct(scrapes, 50)

        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        streams = [
            await http.get(f"{url}/api/v1/events/stream").__aenter__() for _ in range(n_clients)
        ]
        while svc.streams < n_clients:  # noqa: ASYNC110 - the server registers them
            await asyncio.sleep(0.01)
        for s in streams:  # drain the "retry:" line
            await s.content.readline()
            await s.content.readline()
        out["bytes_per_client"] = (tracemalloc.get_traced_memory()[0] - base) / n_clients
        tracemalloc.stop()

        latencies: list[float] = []

        async def receive(stream: aiohttp.ClientResponse, want: int) -> float:
            while True:
                line = await stream.content.readline()
                if line.startswith(b"id: ") and int(line[4:]) == want:
                    return time.perf_counter()

        item = next(i for i in await hub.current() if not i.lifecycle.is_terminal)
        for k in range(n_events):
            # A new vendor status each time: a real transition, recorded and streamed.
            changed = Scan(
                Vendor.APPSECPLUS,
                "bench",
                item.id,
                item.application_id,
                Lifecycle.RUNNING,
                f"step-{k}",
            )
            t0 = time.perf_counter()
            change = await hub.apply(changed)
            assert change.id is not None
            arrived = await asyncio.gather(*(receive(s, change.id) for s in streams))
            latencies += [a - t0 for a in arrived]
        out["sse_p50"], out["sse_p99"] = _pct(latencies, 50), _pct(latencies, 99)
        for s in streams:
            s.close()
    await svc.stop()
    return out


async def bench_postgres(transitions: int, events: int) -> dict[str, Any] | None:
    """PostgreSQL: transitions committed per second, live-stream delivery from one replica's
    commit to a client of another, and failover (a replica stops renewing its leases; how long
    until another polls its sources)."""
    from scanhub._config import parse_config
    from scanhub.serve import Service
    from scanhub.store.postgres import PostgresStore
    from scanhub.testing import fresh_database, postgres_bindir, postgres_cluster

    if postgres_bindir() is None:
        return None

    out: dict[str, Any] = {"transitions": transitions, "events": events}
    with postgres_cluster() as dsn:
        url = await fresh_database(dsn, "bench")
        scans = [
            Scan(Vendor.APPSECPLUS, "bench", f"s{i:06d}", "app", Lifecycle.RUNNING, "running")
            for i in range(1000)
        ]
        now = datetime.now(UTC)
        async with PostgresStore(url) as store:
            await store.track([(s, "bench") for s in scans], now)
            t0 = time.perf_counter()
            done = 0
            while done < transitions:
                chunk = [
                    _step(scans[(done + k) % 1000], done + k, now)
                    for k in range(min(500, transitions - done))
                ]
                await store.commit(chunk)
                done += len(chunk)
            out["per_s"] = transitions / (time.perf_counter() - t0)

        config = parse_config(
            {
                "source": [
                    {
                        "name": "bench",
                        "vendor": "appsecplus",
                        "base_url": "http://still.invalid",
                        "token_env": "T",
                    }
                ]
            },
            "<bench>",
            env={"T": "x"},
        )
        replicas = []
        for name in ("a", "b"):
            hub = ScanHub(
                [_Still("http://still.invalid", name="bench")],
                interval=3600,
                store=PostgresStore(url, holder=name),
                lease_ttl=1.0,
            )
            replicas.append(Service(hub, config, port=0))
        a, b = replicas
        await a.start()
        await b.start()
        try:
            async with aiohttp.ClientSession() as http:
                stream = await http.get(f"{b.url}/api/v1/events/stream").__aenter__()
                await stream.content.readline()
                await stream.content.readline()
                latencies = []
                item = scans[0]
                for k in range(events):
                    changed = Scan(
                        Vendor.APPSECPLUS, "bench", item.id, "app", Lifecycle.RUNNING, f"step-{k}"
                    )
                    t0 = time.perf_counter()
                    change = await a.hub.apply(changed)
                    assert change is not None and change.id is not None
                    while True:
                        line = await stream.content.readline()
                        if line.startswith(b"id: ") and int(line[4:]) == change.id:
                            latencies.append(time.perf_counter() - t0)
                            break
                stream.close()
            out["sse_p50"], out["sse_p99"] = _pct(latencies, 50), _pct(latencies, 99)
            # Failover: a stops renewing (as if killed); b takes the source when it expires.
            await a.hub.runner.stop_polling()
            t0 = time.perf_counter()
            while not b.hub.sources.health()[0].polled_here:  # noqa: ASYNC110 - b's lease loop
                await asyncio.sleep(0.01)
            out["failover_s"] = time.perf_counter() - t0
            out["lease_s"] = 1.0
        finally:
            try:
                await b.stop()
            finally:
                # Its service too, not only its hub: the application's engine context (closed
                # by the collector otherwise, past the hub's close) ends as a service's does.
                await a.stop()
    return out


# --- 13. the page -----------------------------------------------------------------------------

#: Injected before the burst: every animation frame's gap and every long task (Chromium's
#: `longtask` entries, > 50 ms on the main thread) until `__monitor` is cleared.
_FRAME_MONITOR = """
window.__gaps = []; window.__long = []; window.__monitor = true;
let last = performance.now();
function tick(t) { window.__gaps.push(t - last); last = t; if (window.__monitor) requestAnimationFrame(tick); }
requestAnimationFrame(tick);
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__long.push(e.duration);
}).observe({ entryTypes: ["longtask"] });
"""


async def bench_page(n_items: int, burst: int) -> dict[str, Any] | None:
    """The page in headless Chromium over `scanhub serve` with `n_items` tracked in SQLite:
    when its first rows show (from navigation start), and while `burst` transitions arrive at
    once on the live stream, the longest gap between frames and the long tasks, and when the
    last of them shows. None where chromium, chromedriver or selenium is missing."""
    import shutil

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service as ChromeService
    except ImportError:
        return None
    if not (os.path.exists(chromium) and os.path.exists(driver_path)):  # noqa: ASYNC240 - two stats, once
        return None
    from scanhub import SQLiteStore
    from scanhub._config import parse_config
    from scanhub.serve import Service

    directory = Path(tempfile.mkdtemp(prefix="scanhub-page-"))
    path = directory / "state.db"
    now = datetime.now(UTC)
    hot = min(300, n_items)  # the newest items: on the first page, running
    scans = []
    for i in range(n_items):
        lc = (
            Lifecycle.RUNNING
            if i >= n_items - hot
            else (Lifecycle.QUEUED, Lifecycle.SUCCEEDED)[i % 2]
        )
        scans.append(Scan(Vendor.APPSECPLUS, "bench", f"s{i:06d}", f"app-{i % 50}", lc, lc.value))
    async with SQLiteStore(path) as store:
        for start in range(0, n_items, 1000):
            await store.commit(
                [
                    Observation(
                        s.key,
                        now - timedelta(hours=3, seconds=-k * 7200 / n_items),
                        s,
                        None,
                        "bench",
                    )
                    for k, s in enumerate(scans[start : start + 1000], start)
                ]
            )
    hub = ScanHub(
        [_Still("http://still.invalid", name="bench")], interval=3600, store=SQLiteStore(path)
    )
    config = parse_config(
        {
            "source": [
                {
                    "name": "bench",
                    "vendor": "appsecplus",
                    "base_url": "http://still.invalid",
                    "token_env": "T",
                }
            ]
        },
        "<bench>",
        env={"T": "x"},
    )
    svc = Service(hub, config, port=0)
    url = await svc.start()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", f"--user-data-dir={directory / 'chromium'}",
                "--window-size=1440,1000"):  # fmt: skip
        options.add_argument(arg)
    driver = await asyncio.to_thread(
        webdriver.Chrome, service=ChromeService(driver_path), options=options
    )
    out: dict[str, Any] = {"items": n_items, "burst": burst}
    try:
        await asyncio.to_thread(driver.get, url + "/")
        first = None
        for _ in range(300):
            first = await asyncio.to_thread(
                driver.execute_script,
                "const m = performance.getEntriesByName('scanhub:first-rows');"
                "return m.length ? m[0].startTime : null;",
            )
            if first is not None:
                break
            await asyncio.sleep(0.05)
        out["first_rows_ms"] = first
        for _ in range(200):  # until the live stream is open
            if await asyncio.to_thread(
                driver.execute_script,
                "return document.getElementById('live').textContent === 'live'",
            ):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # the stats and the first reload settle
        await asyncio.to_thread(driver.execute_script, _FRAME_MONITOR)
        targets = scans[n_items - hot :]
        steps = [_step(targets[k % hot], k, datetime.now(UTC)) for k in range(burst)]
        last_status = f"step-{burst - 1}"
        last_key = steps[-1].key
        t0 = time.perf_counter()
        for start in range(0, burst, 100):
            await hub.store.commit(steps[start : start + 100])
        shown = None
        for _ in range(600):
            seen = await asyncio.to_thread(
                driver.execute_script,
                'const tr = document.querySelector(`#rows tr[data-key="${CSS.escape(arguments[0])}"]`);'
                "return tr ? tr.cells[9].textContent : null;",
                last_key,
            )
            if seen is not None and last_status in seen:
                shown = time.perf_counter() - t0
                break
            await asyncio.sleep(0.02)
        out["last_shown_s"] = shown
        await asyncio.sleep(1.0)  # the debounced reload after the burst
        gaps, long = await asyncio.to_thread(
            driver.execute_script,
            "window.__monitor = false; return [window.__gaps, window.__long];",
        )
        out["frames"] = len(gaps)
        out["max_gap_ms"] = max(gaps) if gaps else None
        out["p99_gap_ms"] = _pct(gaps, 99) if gaps else None
        out["long_tasks"] = len(long)
        out["longest_task_ms"] = max(long) if long else 0.0
    finally:
        await asyncio.to_thread(driver.quit)
        await svc.stop()
    return out


def _step(scan: Scan, n: int, at: datetime) -> Observation:
    """An observation of `scan` with a new vendor status (so a transition), at `at` plus `n`
    microseconds (answers come in order)."""
    state = Scan(
        scan.vendor,
        scan.source,
        scan.id,
        scan.application_id,
        Lifecycle.RUNNING,
        f"step-{n}",
        raw=scan.raw,
    )
    return Observation(scan.key, at + timedelta(microseconds=n), state)


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu or 'unknown CPU'}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, aiohttp "
        f"{aiohttp.__version__}, scanhub {scanhub.__version__}"
    )


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def report(r: dict[str, Any], args: argparse.Namespace) -> str:
    s = r["snapshot"]
    sh, bare, seq = statistics.median(s["scanhub"]), statistics.median(s["bare"]), s["sequential"]
    c = r["cpu"]
    cpu_sh, cpu_bare = (
        statistics.median(c["scanhub"]) / c["items"],
        statistics.median(c["bare"]) / c["items"],
    )
    cpu_ratio = statistics.median(a / b for a, b in zip(c["scanhub"], c["bare"], strict=True))
    m, p, pol = r["memory"], r["paging"], r["politeness"]
    w = pol["window"]
    at_rate = next(x for x in r["normalize"] if x["name"].startswith("apptrust"))["norm_per_s"]
    worst_norm = max(x["ratio"] for x in r["normalize"])
    lines = [
        "# scanhub benchmarks",
        "",
        f"Measured {r['date']} on: {machine()}.",
        "",
        "Reproduce: `python -m bench.run` (in the dev install; writes this file; about "
        f"{r['wall']:.0f} s here). `python -m bench.run --quick` is the smoke run the test suite "
        "uses. The four vendor simulators run in a separate process on 127.0.0.1 so the client "
        "being measured has a core to itself; the machine has 2 cores in all.",
        ""
        if not args.quick
        else "\n**This is a --quick smoke run: sizes are tiny and the figures mean nothing.**\n",
        "## Summary",
        "",
        "| # | what | target | measured | |",
        "|---|---|---|---|---|",
        f"| 1 | snapshot of {s['items']:,} items, {s['latency'] * 1000:.0f} ms server latency: scanhub vs bare aiohttp | ≤ 1.15x | {sh / bare:.2f}x | {verdict(sh / bare <= 1.15)} |",
        f"| 1 | same: sequential `requests` loop vs scanhub | ≥ 40x faster | {seq / sh:.1f}x | {verdict(seq / sh >= 40)} |",
        f"| 2 | CPU per refreshed item, no latency: scanhub vs bare aiohttp GET + json | ≤ 1.3x | {cpu_ratio:.2f}x | {verdict(cpu_ratio <= 1.3)} |",
        f"| 3 | AppTrust promotions normalized per second per core | ≥ 100,000/s | {at_rate:,.0f}/s | {verdict(at_rate >= 100_000)} |",
        f"| 3 | normalization cost vs `json.loads` alone (worst vendor) | ≤ 3x | {worst_norm:.2f}x | {verdict(worst_norm <= 3)} |",
        f"| 4 | memory per tracked item beyond its raw payload, {m['items']:,} items | < 4 KiB | {fmt_bytes(m['per_item_beyond_raw'])} | {verdict(m['per_item_beyond_raw'] < 4096)} |",
        f"| 4 | peak memory growth paging {p['count']:,} AppTrust promotions | < 64 MiB | {fmt_bytes(p['peak_growth'])} | {verdict(p['peak_growth'] < 64 * 2**20)} |",
        f"| 5 | most requests in any {w['period']:.0f} s window, limit {w['limit']:,} | ≤ limit | {w['max_in_any_window']:,} | {verdict(w['max_in_any_window'] <= w['limit'])} |",
        f"| 5 | 429 + Retry-After honoured | all | {pol['honoured']}/{pol['n429']} | {verdict(pol['honoured'] == pol['n429'])} |",
        "",
        "## 1. Snapshot latency",
        "",
        f"{s['items']:,} tracked items, a quarter per vendor (IQ promotion status, ThreadFix "
        "pending scan, AppSec+ scan, AppTrust promotion details), every answer delayed "
        f"{s['latency'] * 1000:.0f} ms by the simulator. Median of {len(s['scanhub'])} "
        "snapshots after a warm-up one.",
        "",
        "| contender | seconds | vs scanhub |",
        "|---|---|---|",
        f"| scanhub `ScanHub.snapshot(concurrency={CONCURRENCY})`, a fixed {CONCURRENCY} per source like the baseline (section 6 measures the adaptive default on one large source) | {sh:.3f} | 1.00x |",
        f"| bare aiohttp, same endpoints and concurrency, `json()` only, no normalization | {bare:.3f} | {bare / sh:.2f}x |",
        f"| sequential `requests.get(...).json()` loop, as in the vendors' examples | {seq:.3f} | {seq / sh:.1f}x |",
        "",
        f"scanhub / bare aiohttp = {sh / bare:.3f}; sequential / scanhub = {seq / sh:.1f}. "
        f"All runs (s): scanhub {', '.join(f'{x:.3f}' for x in s['scanhub'])}; "
        f"bare {', '.join(f'{x:.3f}' for x in s['bare'])}.",
        "",
        "## 2. CPU per refreshed item",
        "",
        f"{c['items']:,} items, no added latency; process CPU time of the client, scanhub and bare rounds alternating (the "
        f"simulators are in the other process). Median of {len(c['scanhub'])} rounds.",
        "",
        "| contender | CPU µs per item | ratio |",
        "|---|---|---|",
        f"| scanhub snapshot (transport policy, parse, normalize, merge) | {cpu_sh * 1e6:.0f} | {cpu_ratio:.2f}x (median of per-round ratios) |",
        f"| bare aiohttp GET + `json()` | {cpu_bare * 1e6:.0f} | 1.00x |",
        "",
        "## 3. Normalization throughput",
        "",
        "Vendor answer bytes → canonical objects (the `scanhub.sansio` parser, which includes its "
        "own decoding), against `json.loads` of the same bytes. Records per second on one "
        f"core (process time; median of 11 rounds in which json.loads, scanhub and scanhub-stdlib batches alternate, since this VM's speed drifts by tens of percent within seconds). scanhub decodes with orjson when it is "
        f"installed (the `fast` extra, part of `dev`; {'installed' if r['orjson'] else 'NOT installed'} "
        "for this run) and the stdlib otherwise; both columns are shown. The summary uses the "
        "first.",
        "",
        "| vendor answer | bytes | json.loads records/s | scanhub records/s | cost vs json.loads | scanhub, stdlib json only | cost vs json.loads |",
        "|---|---|---|---|---|---|---|",
    ]
    for x in r["normalize"]:
        lines.append(
            f"| {x['name']} | {x['bytes']:,} | {x['json_per_s']:,.0f} | "
            f"{x['norm_per_s']:,.0f} | {x['ratio']:.2f}x | {x['std_per_s']:,.0f} | "
            f"{x['std_ratio']:.2f}x |"
        )
    lines += [
        "",
        "## 4. Scale",
        "",
        f"**Memory per tracked item.** {m['items']:,} items (a quarter per vendor) made by the real "
        "parsers from per-item answers the simulators render, tracked in a `ScanHub`; "
        "`tracemalloc` counts everything allocated. The raw payload each item keeps (`raw`) is "
        "measured separately as the same bodies through `json.loads`.",
        "",
        "| | total | per item |",
        "|---|---|---|",
        f"| tracked items, all included | {fmt_bytes(m['total'])} | {fmt_bytes(m['per_item_total'])} |",
        f"| of which raw payloads | {fmt_bytes(m['raw'])} | {fmt_bytes(m['raw'] / m['items'])} |",
        f"| **beyond the raw payload** | {fmt_bytes(m['total'] - m['raw'])} | **{fmt_bytes(m['per_item_beyond_raw'])}** |",
        "",
        f"**Paging.** `AppTrust.promotions()` over a version with {p['count']:,} promotions "
        f"(pages of 1,000, served from the simulator's synthetic version): peak traced memory "
        f"growth {fmt_bytes(p['peak_growth'])}, {p['seconds']:.1f} s "
        f"({p['count'] / p['seconds']:,.0f} promotions/s with tracemalloc on). The iterator "
        "holds one page at a time.",
        "",
        "## 5. Politeness",
        "",
        f"A client with `RateLimit({w['limit']}, {w['period']:.0f})` (Sonatype Cloud's "
        f"1,500 / 5 min, `RateLimit.iq_cloud()`) asked for {w['demand']:,} requests at once, "
        f"{CONCURRENCY} in flight. Simulated time runs {args.scale:g}x faster than real time "
        "for the client's limiter and the server's arrival log alike, so "
        f"{w['simulated_seconds']:.0f} simulated seconds took {w['real_seconds']:.1f} s. "
        "The limiter's guard (0.5 s, which absorbs real network and server-queue jitter) is "
        f"scaled the same way, to {0.5 * args.scale:g} simulated seconds: without that, "
        "20 ms of real queueing jitter, stretched 30-fold, let 1,516 requests into one "
        "server-side window in an earlier run.",
        "",
        f"- sent {w['sent']:,}, received by the server {w['received']:,};",
        f"- most arrivals at the server within any {w['period']:.0f} s window: "
        f"**{w['max_in_any_window']:,}** (limit {w['limit']:,}).",
        "",
        f"429s: the server answered 429 with `Retry-After: {pol['retry_after']:g}` to about 30% "
        f"of requests; after each of the {pol['n429']} 429s the next request arrived no sooner "
        f"than Retry-After in {pol['honoured']} cases (shortest gap "
        f"{(pol['min_gap'] or 0):.2f} simulated s). A 429 without Retry-After (Sonatype "
        "Cloud's) pauses the source 5 minutes; `tests/test_clients.py` holds that.",
        "",
    ]
    o, hol, ws, st = r["one_source"], r["hol"], r["watch"], r["store"]
    o_sh, o_bare = statistics.median(o["scanhub"]), statistics.median(o["bare"])
    hol_share = hol["polls"] / hol["expected"]
    flat = ws[-1]["cpu_per_1000"] / ws[0]["cpu_per_1000"]
    lines[lines.index("## 1. Snapshot latency") - 1 : lines.index("## 1. Snapshot latency") - 1] = [
        f"| 6 | snapshot of {o['items']:,} items on **one** source, {o['latency'] * 1000:.0f} ms latency: scanhub defaults vs bare aiohttp at 64 in flight | ≤ 1.15x | {o_sh / o_bare:.2f}x | {verdict(o_sh / o_bare <= 1.15)} |",
        f"| 7 | healthy-source polls while another source hangs, share of configured rate | ≥ 90% | {hol_share:.0%} | {verdict(hol_share >= 0.9)} |",
        f"| 7 | watch deadline overshoot against a hanging source | ≤ 0.25 s | {hol['deadline_overshoot'] * 1000:.0f} ms | {verdict(hol['deadline_overshoot'] <= 0.25)} |",
        f"| 8 | CPU per 1,000 polls, {ws[-1]['items']:,} vs {ws[0]['items']:,} tracked items | flat within 1.5x | {flat:.2f}x | {verdict(flat <= 1.5)} |",
    ]
    lines += [
        "## 6. One large source",
        "",
        f"{o['items']:,} AppSec+ scans on one source, {o['latency'] * 1000:.0f} ms latency per "
        "answer. scanhub with its defaults (adaptive concurrency: it starts at 16, doubles per "
        "healthy window, halves on 429/5xx/timeouts or queueing latency) against bare aiohttp "
        f"with 64 requests in flight. Median of {len(o['scanhub'])} snapshots after a warm-up one.",
        "",
        "| contender | seconds |",
        "|---|---|",
        f"| scanhub `snapshot()`, defaults (limit learned: {o['learned']}) | {o_sh:.3f} |",
        f"| bare aiohttp, 64 in flight, `json()` only | {o_bare:.3f} |",
        "",
        "## 7. Head-of-line blocking and deadlines",
        "",
        f"{hol['items']} items on a healthy source polled every {hol['interval']:g} s (no "
        f"backoff) for {hol['seconds']:g} s, while {hol['items']} items on another source get "
        f"answers that never come: {hol['polls']:,.0f} polls of the healthy source against "
        f"{hol['expected']:,.0f} configured ({hol_share:.0%}). The watch's deadline came "
        f"{hol['deadline_overshoot'] * 1000:.0f} ms late, with the hanging requests cancelled.",
        "",
        "## 8. Watching many items",
        "",
        "Process CPU of the client per 1,000 polls while a watch runs at about "
        f"{ws[0]['items'] / ws[0]['interval']:,.0f} polls/s (interval = items / rate), measured after "
        "the first staggered round; and memory per tracked item for the engine's bookkeeping "
        "(slot, heap entry; placeholders, before any payload).",
        "",
        "| tracked items | interval | polls measured | CPU ms per 1,000 polls | bytes per tracked item |",
        "|---|---|---|---|---|",
    ]
    for x in ws:
        lines.append(
            f"| {x['items']:,} | {x['interval']:g} s | {x['polls']:,} | "
            f"{x['cpu_per_1000'] * 1000:.0f} | {x['bytes_per_item']:,.0f} |"
        )
    lines += [
        "",
        "## 9. Store (SQLite)",
        "",
        f"{st['transitions']:,} transitions recorded in batches of {st['batch']} (one transaction "
        f"each; WAL, synchronous=NORMAL): **{st['per_s']:,.0f} transitions/s**, "
        f"**{st['bytes_per_transition']:,.0f} bytes per transition** on disk (both item states, "
        f"without the vendor payload). Resuming (opening the store and restoring "
        f"{st['resumed_items']:,} tracked items) with that history: **{st['resume_s']:.2f} s**.",
        "",
    ]
    sv = r["service"]
    lines += [
        "## 10. The service",
        "",
        f"`scanhub serve` in this process over loopback, {sv['items']:,} tracked items (a source "
        "whose items never change, so the engine idles and the service is what is measured).",
        "",
        "| what | p50 | p99 |",
        "|---|---|---|",
        f"| `GET /api/v1/items` (pages of 100 and 1,000, with and without filters; 200 requests) | {sv['items_p50'] * 1000:.1f} ms | {sv['items_p99'] * 1000:.1f} ms |",
        f"| `GET /metrics` scrape | {sv['metrics_p50'] * 1000:.1f} ms | |",
        f"| live stream: from commit to arrival at each of {sv['clients']:,} connected clients ({sv['events']} transitions) | {sv['sse_p50'] * 1000:.1f} ms | {sv['sse_p99'] * 1000:.1f} ms |",
        "",
        f"Memory per connected stream client (server and client side together, in this one "
        f"process): {fmt_bytes(sv['bytes_per_client'])}.",
        "",
    ]
    pg = r.get("postgres")
    lines += ["## 11. PostgreSQL and replicas", ""]
    if pg is None:
        lines += ["Not measured: no PostgreSQL server binaries on this machine.", ""]
    else:
        lines += [
            f"A throwaway cluster on this machine (fsync off, as the tests run it). "
            f"{pg['transitions']:,} transitions in batches of 500: **{pg['per_s']:,.0f} "
            "transitions/s** (each batch one transaction under the append lock, with its NOTIFY).",
            "",
            f"Live stream across replicas: a transition committed by replica A reaches an SSE "
            f"client of replica B (LISTEN/NOTIFY, then a read of the log) in **{pg['sse_p50'] * 1000:.1f} ms** "
            f"p50, {pg['sse_p99'] * 1000:.1f} ms p99 ({pg['events']} transitions).",
            "",
            f"Failover: replica A stops renewing its leases (lease {pg['lease_s']:g} s); replica B "
            f"polls A's source **{pg['failover_s']:.2f} s** later (the bound is twice the lease "
            "period). `tests/test_replicas.py` does the same with three `scanhub serve` processes "
            "and SIGKILL.",
            "",
        ]
    lines += sinks_report(r.get("sinks"))
    pg_page = r.get("page")
    lines += ["## 13. The page", ""]
    if pg_page is None:
        lines += ["Not measured: no chromium, chromedriver or selenium on this machine.", ""]
    else:
        shown = pg_page["last_shown_s"]
        lines += [
            f"Headless Chromium on the page of `scanhub serve` with {pg_page['items']:,} items "
            "tracked in SQLite (the first page: 200 rows, newest change first, plus the summary, "
            "the sources and the stats charts).",
            "",
            "| what | figure |",
            "|---|---|",
            f"| first rows shown, from navigation start (`performance.mark`) | {pg_page['first_rows_ms']:.0f} ms |",
            f"| a burst of {pg_page['burst']:,} transitions committed at once: the last one shown in its row | "
            + (f"{shown * 1000:.0f} ms |" if shown is not None else "not shown |"),
            f"| longest gap between frames during the burst ({pg_page['frames']} frames) | {pg_page['max_gap_ms']:.0f} ms (p99 {pg_page['p99_gap_ms']:.0f} ms) |",
            f"| long tasks (> 50 ms) during the burst | {pg_page['long_tasks']}, the longest {pg_page['longest_task_ms']:.0f} ms |",
            "",
            "Changes are applied once per animation frame (each row once, the newest state wins) "
            "and re-read in one debounced reload, so a burst costs a few frames, not one DOM "
            "update per transition.",
            "",
        ]
    misses = []
    if o_sh / o_bare > 1.15:
        misses.append("one-source snapshot vs bare aiohttp")
    if hol_share < 0.9:
        misses.append("head-of-line")
    if flat > 1.5:
        misses.append("watch CPU flatness")
    if sh / bare > 1.15:
        misses.append("snapshot vs bare aiohttp")
    if cpu_ratio > 1.3:
        misses.append("CPU per item")
    if at_rate < 100_000 or worst_norm > 3:
        misses.append("normalization")
    if pg_page is not None and (pg_page["first_rows_ms"] or 1e9) > 1000:
        misses.append("page first rows")
    if pg_page is not None and (pg_page["max_gap_ms"] or 0) > 1000:
        misses.append("page burst")
    lines += ["## Targets missed", ""]
    lines += (
        [r.get("notes", "None.")]
        if not misses
        else [f"Missed: {', '.join(misses)}. " + r.get("notes", "")]
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: proves the harness runs")
    ap.add_argument(
        "--out",
        "--output",
        dest="out",
        default=None,
        help="where the report goes (and its .json beside it); default: BENCHMARKS.md for a "
        "full run, a new temporary directory for --quick, so a smoke run never rewrites the "
        "committed figures",
    )
    ap.add_argument("--notes", default=None, help="a file whose text goes under 'Targets missed'")
    ap.add_argument(
        "--render",
        metavar="JSON",
        default=None,
        help="rewrite the report from a results file an earlier run saved (no measuring)",
    )
    args = ap.parse_args(argv)
    if args.out is None:
        if args.quick and not args.render:
            args.out = str(Path(tempfile.mkdtemp(prefix="scanhub-bench-")) / "BENCHMARKS.md")
        else:
            args.out = "BENCHMARKS.md"
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        args.quick, args.scale = saved.pop("_quick"), saved.pop("_scale")
        if args.notes:
            saved["notes"] = Path(args.notes).read_text().strip()
        text = report(saved, args)
        Path(args.out).write_text(text, encoding="utf-8")
        print(text)
        return 0
    q = args.quick
    items, cpu_items, mem_items = (40, 40, 400) if q else (1000, 2000, 10_000)
    paged, repeats, budget = (2_000, 2, 0.05) if q else (100_000, 5, 1.0)
    limit, demand = (20, 50) if q else (1500, 3500)
    args.scale = 3000.0 if q else 30.0
    one = 100 if q else 1000
    hol_items, hol_seconds = (10, 2.0) if q else (50, 10.0)
    watch_sizes, poll_rate, watch_seconds = (
        ((100, 400), 200.0, 1.0) if q else ((1000, 10_000), 1000.0, 8.0)
    )
    store_transitions, store_items = (2_000, 200) if q else (100_000, 10_000)
    service_items, service_clients = (1_000, 50) if q else (10_000, 1000)
    latency = 0.05
    started = time.perf_counter()
    results: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
    with SimProcess() as sp:
        info = sp.call("info")
        seeded = sp.call("seed", items // 4)
        sp.call("faults", ("*", {"latency": latency}))
        print(f"1. snapshot latency, {items} items", file=sys.stderr)
        results["snapshot"] = {
            "items": items,
            "latency": latency,
            "scanhub": asyncio.run(scanhub_snapshots(info, seeded, repeats, time.perf_counter)),
            "bare": asyncio.run(bare_aiohttp(info, seeded, repeats, time.perf_counter)),
            "sequential": sequential_requests(info, seeded),
        }
        print("2. CPU per item", file=sys.stderr)
        sp.call("faults", ("*", {}))
        seeded = sp.call("seed", cpu_items // 4)
        ours, bare = asyncio.run(cpu_interleaved(info, seeded, 3 if q else 9))
        results["cpu"] = {"items": cpu_items, "scanhub": ours, "bare": bare}
        print(f"4. paging {paged} promotions", file=sys.stderr)
        sp.call("synthetic", ("big", "9.9.9", paged))
        results["paging"] = asyncio.run(bench_paging(info, paged))
        print(f"6. one source, {one} items", file=sys.stderr)
        results["one_source"] = asyncio.run(bench_one_source(info, one, repeats, latency, sp))
        print("7. head-of-line and deadline", file=sys.stderr)
        results["hol"] = asyncio.run(bench_head_of_line(info, sp, hol_items, 0.5, hol_seconds))
        print("8. watch CPU at two sizes", file=sys.stderr)
        results["watch"] = [
            asyncio.run(bench_watch_cpu(info, sp, n, n / poll_rate, watch_seconds))
            for n in watch_sizes
        ]
        print("12. sinks", file=sys.stderr)
        results["sinks"] = bench_sinks(info, sp, q)
        print("5. politeness", file=sys.stderr)
        results["politeness"] = asyncio.run(
            bench_politeness(
                sp,
                info,
                limit=limit,
                demand=demand,
                scale=args.scale,
                retry_after=2.0,
                n429=40 if q else 300,
            )
        )
    print("3. normalization", file=sys.stderr)
    results["normalize"] = bench_normalize(budget)
    from scanhub.sansio import _common

    results["orjson"] = _common._orjson_loads is not None
    print(f"4. memory, {mem_items} items", file=sys.stderr)
    results["memory"] = bench_memory(mem_items)
    print(f"9. store, {store_transitions} transitions", file=sys.stderr)
    results["store"] = asyncio.run(bench_store(store_transitions, store_items))
    print(f"10. service, {service_items} items, {service_clients} stream clients", file=sys.stderr)
    results["service"] = asyncio.run(bench_service(service_items, service_clients, 10 if q else 20))
    print("11. PostgreSQL", file=sys.stderr)
    results["postgres"] = asyncio.run(bench_postgres(2_000 if q else 50_000, 10 if q else 50))
    print("13. the page", file=sys.stderr)
    results["page"] = asyncio.run(bench_page(1_000 if q else 10_000, 100 if q else 1_000))
    results["wall"] = time.perf_counter() - started
    if args.notes:
        results["notes"] = Path(args.notes).read_text().strip()
    text = report(results, args)
    Path(args.out).write_text(text, encoding="utf-8")
    saved = Path(args.out).with_suffix(".json")
    saved.write_text(json.dumps({**results, "_quick": args.quick, "_scale": args.scale}, indent=1))
    print(text)
    print(f"report written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

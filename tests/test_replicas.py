"""Several `scanhub serve` replicas on one PostgreSQL database: one truth, and a failover when
the lease holder is killed with SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from scanhub._demo import running_sims, sim_config
from scanhub.vendors import registry

from .pg import fresh_database

LEASE = 1.0


def toml(doc: dict[str, Any]) -> str:
    from scanhub.cli import _toml_value

    lines = [f"{k} = {_toml_value(doc[k])}" for k in ("interval", "timeout")]
    for key in ("source", "track"):
        for table in doc[key]:
            lines += [f"[[{key}]]", *(f"{k} = {_toml_value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


async def start_replica(
    cfg: Path, url: str, env: dict[str, str], *, lease_seconds: float = LEASE
) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scanhub",
        "serve",
        "-c",
        str(cfg),
        "--state",
        url,
        "--port",
        "0",
        "--lease-seconds",
        str(lease_seconds),
        env={**os.environ, **env, "SCANHUB_NO_PLUGINS": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    assert line.startswith("scanhub serve: http://"), line
    return proc, line.split()[2]


def shorten(sims: dict[str, Any], seconds: float) -> None:
    """Make every seeded item of the simulators finish `seconds` after it started."""
    for sim in sims.values():
        for attr in ("promotions", "pending", "scans", "versions", "tasks"):
            records = getattr(sim, attr, {})
            for value in records.values():
                for record in value if isinstance(value, list) else [value]:
                    if hasattr(record, "duration"):  # IQ's `scans` holds ids, not records
                        record.duration = seconds


async def holders(url: str) -> dict[str, str]:
    con = await asyncpg.connect(url)
    try:
        rows = await con.fetch("SELECT source, holder FROM leases WHERE expires_at > now()")
    finally:
        await con.close()
    return {r["source"]: r["holder"] for r in rows}


async def transitions(url: str) -> list[tuple[int, str, dict[str, Any]]]:
    con = await asyncpg.connect(url)
    try:
        rows = await con.fetch("SELECT id, key, after FROM transitions ORDER BY id")
    finally:
        await con.close()
    return [(r["id"], r["key"], json.loads(r["after"])) for r in rows]


async def test_three_replicas_fail_over_without_losing_or_repeating(
    tmp_path: Path, pg_cluster: str
) -> None:
    url = await fresh_database(pg_cluster, f"replicas_{uuid.uuid4().hex[:8]}")
    async with running_sims(speed=1.0) as sims:
        reg = registry()
        seeded = {name: reg.get(name).load_demo().sim_seed(sim) for name, sim in sims.items()}
        shorten(sims, 8.0)
        doc, env = sim_config(sims, seeded, reg)
        doc["interval"] = 0.3
        cfg = tmp_path / "scanhub.toml"
        cfg.write_text(toml(doc))

        procs = []
        try:
            for _ in range(3):
                procs.append(await start_replica(cfg, url, env))
            pids = {str(p.pid): (p, u) for p, u in procs}
            held = {}
            async with asyncio.timeout(10):
                while len(held) < len(sims):
                    held = await holders(url)
                    await asyncio.sleep(0.1)
            holder_pid = next(iter(held.values())).split(":")[1]
            victim, _ = pids[holder_pid]
            survivor_url = next(u for p, u in procs if str(p.pid) != holder_pid)

            # An SSE client on a surviving replica, from the first transition on.
            received: list[int] = []
            http = aiohttp.ClientSession()
            stream = await http.get(f"{survivor_url}/api/v1/events/stream?last_event_id=0")

            async def read() -> None:
                while True:
                    line = await stream.content.readline()
                    if not line:
                        return
                    if line.startswith(b"id: "):
                        received.append(int(line[4:]))

            reader = asyncio.create_task(read())
            await asyncio.sleep(2.0)  # the holder polls and records for a while
            requests_at_kill = {n: s.stats.requests for n, s in sims.items()}
            victim.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            await victim.wait()

            # Every source is polled again, by a survivor, within twice the lease period
            # (plus one poll interval).
            moved: dict[str, float] = {}
            async with asyncio.timeout(10):
                while len(moved) < len(sims):
                    for name, sim in sims.items():
                        if name not in moved and sim.stats.requests > requests_at_kill[name] + 1:
                            moved[name] = time.monotonic() - killed_at
                    await asyncio.sleep(0.05)
            # Twice the lease period, plus a poll interval and room for a loaded machine.
            assert max(moved.values()) <= 2 * LEASE + doc["interval"] + 1.5, moved
            now_held = await holders(url)
            assert set(now_held) == set(held) and all(
                holder_pid != h.split(":")[1] for h in now_held.values()
            )

            # Everything finishes; nothing is recorded twice or lost.
            async with asyncio.timeout(30):
                while True:
                    recorded = await transitions(url)
                    last: dict[str, str] = {}
                    for _, key, after in recorded:
                        last[key] = after["lifecycle"]
                    if last and all(lc in ("succeeded", "failed") for lc in last.values()):
                        break
                    await asyncio.sleep(0.3)
            await asyncio.sleep(1.0)  # the stream catches up
            reader.cancel()
            stream.close()
            await http.close()
        finally:
            for proc, _ in procs:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
            for proc, _ in procs:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.wait(), 10)

    previous: dict[str, tuple[str, str]] = {}
    for _, key, after in recorded:
        state = (after["lifecycle"], after["vendor_status"])
        assert previous.get(key) != state, f"{key} recorded {state} twice"
        previous[key] = state
    ids = [i for i, _, _ in recorded]
    assert received == ids[: len(received)] and len(received) == len(ids)  # in order, no gap
    assert all(p.returncode == 0 for p, _ in procs if p is not victim)


async def test_tracks_sent_round_robin_survive_the_holder_being_killed(
    tmp_path: Path, pg_cluster: str
) -> None:
    """Issue 16.1: three replicas, `POST /api/v1/track` spread over them in turn (as a load
    balancer would), a new IQ promotion or ThreadFix scan every 0.7 s, the lease holder
    SIGKILLed midway. Every tracked item reaches its final state with its whole history (no
    status the vendor walked through is missing), and every surviving replica lists exactly
    the same items."""
    from scanhub.vendors.threadfix.sim import WALK

    url = await fresh_database(pg_cluster, f"roundrobin_{uuid.uuid4().hex[:8]}")
    token = "round-robin-token"
    async with running_sims(speed=1.0) as sims:
        iq, tf = sims["iq"], sims["threadfix"]
        reg = registry()
        doc, env = sim_config({"iq": iq, "threadfix": tf}, {}, reg)
        doc["interval"] = 0.3
        cfg = tmp_path / "scanhub.toml"
        cfg.write_text(toml(doc))
        env = {**env, "SCANHUB_TOKEN": token}
        app_id, _ = iq.add_application("webshop")
        tf.add_application(6)

        procs = [await start_replica(cfg, url, env) for _ in range(3)]
        alive = list(procs)
        tracked: dict[str, str] = {}  # key -> the vendor (iq or threadfix)
        victim = None
        try:
            async with asyncio.timeout(10):
                while len(await holders(url)) < 2:
                    await asyncio.sleep(0.1)
            auth = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession() as http:
                for n in range(16):
                    if n % 2:
                        (sid,) = iq.seed_promotions(app_id, 1, duration=8)
                        body: dict[str, Any] = {
                            "source": "iq",
                            "public_id": "webshop",
                            "status_id": sid,
                        }
                    else:
                        (pid,) = tf.seed_pending(6, 1, duration=21)  # 3 s per status
                        body = {"source": "threadfix", "application_id": 6, "pending_scan_id": pid}
                    _, base = alive[n % len(alive)]
                    async with http.post(f"{base}/api/v1/track", json=body, headers=auth) as r:
                        assert r.status == 201, await r.text()
                        (key,) = (await r.json())["tracked"]
                    tracked[key] = body["source"]
                    if n == 7:  # midway: kill the replica polling ThreadFix
                        holder_pid = (await holders(url))["threadfix"].split(":")[1]
                        victim = next(p for p, _ in procs if str(p.pid) == holder_pid)
                        victim.send_signal(signal.SIGKILL)
                        await victim.wait()
                        alive = [(p, u) for p, u in procs if p is not victim]
                    await asyncio.sleep(0.7)

                async with asyncio.timeout(60):
                    while True:
                        last = {key: after for _, key, after in await transitions(url)}
                        if all(
                            k in last and last[k]["lifecycle"] in ("succeeded", "failed")
                            for k in tracked
                        ):
                            break
                        await asyncio.sleep(0.5)
                listed = []
                for _, base in alive:
                    page = await (await http.get(f"{base}/api/v1/items?limit=1000")).json()
                    listed.append(sorted(i["key"] for i in page["items"]))
        finally:
            for proc, _ in procs:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
            for proc, _ in procs:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.wait(), 10)

    assert victim is not None
    recorded = await transitions(url)
    history: dict[str, list[str]] = {}
    for _, key, after in recorded:
        history.setdefault(key, []).append(after["vendor_status"])
    for key, vendor in tracked.items():
        if vendor == "threadfix":
            assert history[key] == [*WALK, "DONE"], (key, history[key])
        else:
            assert history[key] == ["PENDING", "COMPLETED"], (key, history[key])
    assert listed[0] == listed[1] == sorted(tracked)  # every survivor lists the same items
    assert all(p.returncode == 0 for p, _ in procs if p is not victim)

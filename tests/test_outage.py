"""When the database goes away and comes back (issue 17.1): `scanhub serve` on PostgreSQL, the
server stopped for 8 s (`pg_ctl stop -m fast`) while scans move on, then started again, with
one replica and with two. Nothing the vendor showed is lost or recorded twice, the service
says it is not ready meanwhile, its API answers 503 problem+json, and the live stream of every
replica catches up with no gap and no repeat."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from scanhub._demo import running_sims, sim_config
from scanhub.testing import fresh_database, postgres_bindir, postgres_server
from scanhub.vendors import registry
from scanhub.vendors.threadfix.sim import WALK

from .pg import SKIP_REASON
from .test_replicas import start_replica, toml

TOKEN = "outage-token"
OUTAGE = 8.0

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason=SKIP_REASON)


async def rows(url: str, sql: str) -> list[Any]:
    con = await asyncpg.connect(url)
    try:
        return list(await con.fetch(sql))
    finally:
        await con.close()


async def read_ids(resp: aiohttp.ClientResponse, into: list[int]) -> None:
    """Collect the ids a live stream sends (until it ends or the task is cancelled)."""
    while True:
        line = await resp.content.readline()
        if not line:
            return
        if line.startswith(b"id: "):
            into.append(int(line[4:]))


@pytest.mark.parametrize("replicas", [1, 2])
async def test_a_database_outage_loses_nothing_and_is_told(tmp_path: Path, replicas: int) -> None:
    with postgres_server() as pg:
        url = await fresh_database(pg.dsn, f"outage_{uuid.uuid4().hex[:8]}")
        async with running_sims(speed=1.0) as sims:
            tf, asp = sims["threadfix"], sims["appsecplus"]
            tf.add_application(6)
            pids = tf.seed_pending(6, 3, duration=21)  # a new status every 3 s
            asp.add_application("app-x")
            asp.seed_scans("app-x", 2, duration=20, types=("dast", "sca"))
            doc, env = sim_config({"threadfix": tf, "appsecplus": asp}, {}, registry())
            doc["interval"] = 0.3
            doc["track"] = [
                *({"source": "threadfix", "application_id": 6, "pending_scan_id": p} for p in pids),
                {"source": "appsecplus", "application_id": "app-x"},  # a discovery rule
            ]
            cfg = tmp_path / "scanhub.toml"
            cfg.write_text(toml(doc))
            env = {**env, "SCANHUB_TOKEN": TOKEN}
            procs = [await start_replica(cfg, url, env, lease_seconds=5.0) for _ in range(replicas)]
            streams: dict[str, list[int]] = {}
            readers: list[asyncio.Task[None]] = []
            http = aiohttp.ClientSession()
            try:
                base = procs[0][1]

                async def stream(name: str, where: str) -> None:
                    got: list[int] = []
                    streams[name] = got
                    resp = await http.get(f"{where}/api/v1/events/stream?last_event_id=0")
                    # Opened even while the store is away (EventSource gives up for good on
                    # any other status): it reconnects when the stream closes.
                    assert resp.status == 200, (name, resp.status)
                    readers.append(asyncio.create_task(read_ids(resp, got)))

                for n, (_, where) in enumerate(procs):
                    await stream(f"before-{n}", where)
                await asyncio.sleep(2.0)
                before = len(await rows(url, "SELECT id FROM transitions"))
                assert before > 0, "the discovered items' first sightings are history"

                await asyncio.to_thread(pg.stop)  # the database goes away
                down_at = asyncio.get_running_loop().time()
                async with asyncio.timeout(OUTAGE - 1):
                    while True:
                        async with http.get(f"{base}/readyz") as r:
                            if r.status == 503:
                                problem = await r.json(content_type=None)
                                break
                        await asyncio.sleep(0.2)
                assert r.headers["Content-Type"].startswith("application/problem+json")
                assert "store" in problem["detail"]
                async with http.get(f"{base}/api/v1/events") as r:
                    assert r.status == 503 and "Retry-After" in r.headers
                    assert r.headers["Content-Type"].startswith("application/problem+json")
                for n, (_, where) in enumerate(procs):
                    await stream(f"during-{n}", where)
                # The metrics answer all the same, and say the store is down.
                async with http.get(f"{base}/metrics") as r:
                    assert r.status == 200 and "scanhub_store_up 0.0" in await r.text()
                # A track during the outage waits for the store (or is refused with 503).
                (late,) = tf.seed_pending(6, 1, duration=21)
                track = asyncio.create_task(
                    http.post(
                        f"{base}/api/v1/track",
                        json={"source": "threadfix", "application_id": 6, "pending_scan_id": late},
                        headers={"Authorization": f"Bearer {TOKEN}"},
                    )
                )
                await asyncio.sleep(
                    max(0.0, OUTAGE - (asyncio.get_running_loop().time() - down_at))
                )
                await asyncio.to_thread(pg.start)  # and comes back

                async with asyncio.timeout(30):
                    while True:
                        async with http.get(f"{base}/readyz") as r:
                            if r.status == 200:
                                break
                        await asyncio.sleep(0.2)
                answer = await track
                late_key = None
                if answer.status == 201:
                    (late_key,) = (await answer.json())["tracked"]
                else:
                    assert answer.status == 503 and "Retry-After" in answer.headers
                for n, (_, where) in enumerate(procs):
                    await stream(f"after-{n}", where)

                wanted = {f"threadfix:threadfix:scan:6:{p}" for p in pids}
                if late_key:
                    wanted.add(late_key)
                async with asyncio.timeout(60):
                    while True:
                        final = {
                            r["key"]: r["lifecycle"]
                            for r in await rows(url, "SELECT key, lifecycle FROM items")
                        }
                        if all(final.get(k) == "succeeded" for k in wanted) and all(
                            lc in ("succeeded", "failed") for k, lc in final.items()
                        ):
                            break
                        await asyncio.sleep(0.5)
                await asyncio.sleep(2.0)  # the streams catch up
                recorded = await rows(url, "SELECT id, key, after FROM transitions ORDER BY id")
                if late_key:
                    (origin,) = await rows(
                        url, f"SELECT origin FROM items WHERE key = '{late_key}'"
                    )
                    assert origin["origin"] == "api"
            finally:
                for task in readers:
                    task.cancel()
                await http.close()
                for proc, _ in procs:
                    if proc.returncode is None:
                        proc.send_signal(signal.SIGTERM)
                for proc, _ in procs:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(proc.wait(), 15)
                logs = ""
                for proc, _ in procs:
                    if proc.stderr is not None:
                        logs += (await proc.stderr.read()).decode()

    ids = [r["id"] for r in recorded]
    assert len(ids) > before, "recording went on after the outage"
    for name, got in streams.items():
        assert got == ids, f"{name}: {len(got)} ids, {len(ids)} recorded"  # no gap, no repeat
    history: dict[str, list[str]] = {}
    for r in recorded:
        history.setdefault(r["key"], []).append(json.loads(r["after"])["vendor_status"])
    order = [*WALK, "DONE"]
    for key in wanted:
        seen = history[key]
        assert seen[-1] == "DONE" and len(set(seen)) == len(seen), (key, seen)
        assert seen == sorted(seen, key=order.index), (key, seen)  # in the vendor's order
    discovered = [k for k in history if k.startswith("appsecplus:")]
    assert len(discovered) == 2 and all(history[k][-1] == "completed" for k in discovered)
    assert all(p.returncode == 0 for p, _ in procs)
    # A commit was attempted while the database was away (a status changes every 3 s): it was
    # held and retried, said once, and never dropped (the histories above are whole).
    assert "the store does not take commits" in logs
    # ... and its end is said too (a warning, which serve shows without -v).
    assert "the store takes commits again" in logs
    assert "Traceback" not in logs


async def test_serve_started_before_its_database_waits_for_it(tmp_path: Path) -> None:
    """A replica started while its database does not answer yet (deployed beside it, the
    database still starting) says so on stderr and waits for it, then serves: it exited with 2
    at once, and a supervisor restarted it in a loop. SIGTERM while it waits stops it (0)."""
    with postgres_server() as pg:
        url = await fresh_database(pg.dsn, f"late_{uuid.uuid4().hex[:8]}")
        cfg = tmp_path / "scanhub.toml"
        cfg.write_text(
            '[[source]]\nname = "asp"\nvendor = "appsecplus"\nbase_url = "http://127.0.0.1:9"\n'
            'token_env = "ASP_TOKEN"\n'
        )
        await asyncio.to_thread(pg.stop)

        async def started() -> asyncio.subprocess.Process:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "scanhub", "serve", "-c", str(cfg), "--state", url,
                "--port", "0",
                env={**os.environ, "ASP_TOKEN": "t", "SCANHUB_NO_PLUGINS": "1"},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert proc.stderr is not None
            said = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
            assert "the database is unavailable" in said and "trying again for up to 60 s" in said
            return proc

        proc = await started()
        try:
            await asyncio.sleep(1.5)
            assert proc.returncode is None  # still waiting
            await asyncio.to_thread(pg.start)
            assert proc.stdout is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line.startswith("scanhub serve: http://"), line
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{line.split()[2]}/readyz") as ready,
            ):
                assert ready.status == 200, await ready.text()
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 15) == 0

        await asyncio.to_thread(pg.stop)
        waiting = await started()
        waiting.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(waiting.wait(), 15) == 0

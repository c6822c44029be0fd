"""A simulator farm: several processes, each serving one AppSec+ simulator on loopback, so a
large watch is limited by the client under test and not by the simulator (one asyncio process
serves a few thousand status answers a second at most).

Also here: a load generator that runs in its own process (so its CPU is not the measured
process's), for the farm's capacity and for the service's readers.

`python -m bench.simfarm [--processes N] [--seconds S]` prints the farm's capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

#: Sim seconds: seeded scans stay queued for the whole benchmark.
NEVER = 1e12
SCAN_TYPES = ("sast", "dast", "sca", "container")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    except OSError:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def rss_bytes(pid: int) -> int:
    """A process's resident set size (Linux /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# --- one farm process ------------------------------------------------------------------------


async def _serve(conn: Connection) -> None:
    from scanhub.sim import SimClock
    from scanhub.vendors.appsecplus.sim import AppSecPlusSim

    sim = AppSecPlusSim(clock=SimClock(), keep_log=False)
    await sim.start()
    loop = asyncio.get_running_loop()
    try:
        while True:
            cmd, arg = await loop.run_in_executor(None, conn.recv)
            if cmd == "stop":
                conn.send(None)
                return
            if cmd == "info":
                conn.send({"url": sim.base_url, "token": sim.token, "pid": os.getpid()})
            elif cmd == "seed":  # arg: [(application, scan type)], in order; returns the ids
                conn.send(
                    [sim.seed_scans(app, 1, duration=NEVER, types=(kind,))[0] for app, kind in arg]
                )
            elif cmd == "requests":
                conn.send(sim.stats.requests)
            else:
                conn.send(ValueError(cmd))
    finally:
        await sim.stop()


def _main(conn: Connection) -> None:
    asyncio.run(_serve(conn))


class SimFarm:
    """`with SimFarm(n) as farm:` starts `n` processes, each an AppSec+ simulator; `farm.info`
    lists their URL, token and pid; `farm.seed(k, pairs)` seeds process k; `farm.requests()`
    sums the status requests every process has answered."""

    def __init__(self, processes: int) -> None:
        self.size = processes
        self.info: list[dict[str, Any]] = []
        self._conns: list[Connection] = []
        self._procs: list[Any] = []

    def __enter__(self) -> SimFarm:
        ctx = mp.get_context("spawn")
        for _ in range(self.size):
            conn, child = ctx.Pipe()
            proc = ctx.Process(target=_main, args=(child,), daemon=True)
            proc.start()
            self._conns.append(conn)
            self._procs.append(proc)
        self.info = [self.call(k, "info") for k in range(self.size)]
        return self

    def call(self, k: int, cmd: str, arg: Any = None) -> Any:
        self._conns[k].send((cmd, arg))
        out = self._conns[k].recv()
        if isinstance(out, Exception):
            raise out
        return out

    def seed(self, k: int, pairs: Sequence[tuple[str, str]]) -> list[str]:
        """Seed scans (application, scan type) in process k, in order; returns their ids
        (`scan-001`, `scan-002`, ... in each process: deterministic)."""
        out: list[str] = []
        for start in range(0, len(pairs), 5000):
            out += self.call(k, "seed", list(pairs[start : start + 5000]))
        return out

    def requests(self) -> int:
        return sum(self.call(k, "requests") for k in range(self.size))

    def cpu(self) -> float:
        """CPU seconds every farm process has used."""
        return sum(cpu_seconds(i["pid"]) for i in self.info)

    def __exit__(self, *exc: object) -> None:
        for k, proc in enumerate(self._procs):
            with contextlib.suppress(OSError, EOFError):
                self.call(k, "stop")
            proc.join(10)
            if proc.is_alive():
                proc.kill()


# --- a load generator in its own process -----------------------------------------------------


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    """`clients` concurrent readers for `seconds`. mode "urls": each GETs the URLs in turn
    (round robin over `urls`, with `headers`); mode "scanhub" / "baseline": each walks pages of
    `base` + `first`, following the answer's next_cursor (scanhub) or next_after (baseline) for
    up to `pages` pages, then starts again."""
    import aiohttp

    mode, clients, seconds = spec["mode"], spec["clients"], spec["seconds"]
    headers = spec.get("headers") or {}
    timeout = aiohttp.ClientTimeout(total=spec.get("timeout", 10.0))
    done = errors = 0
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        if spec.get("start_at"):  # wall clock: the parent measures the same window
            await asyncio.sleep(max(0.0, spec["start_at"] - time.time()))
        deadline = time.perf_counter() + seconds

        async def reader(n: int) -> None:
            nonlocal done, errors
            urls = spec.get("urls") or []
            i = n * 7919
            while time.perf_counter() < deadline:
                if mode == "urls":
                    url = urls[i % len(urls)]
                    i += 1
                    t0 = time.perf_counter()
                    try:
                        async with http.get(url, headers=headers) as r:
                            await r.read()
                            ok = r.status == 200
                    except (aiohttp.ClientError, TimeoutError):
                        ok = False
                    latencies.append(time.perf_counter() - t0)
                    done += ok
                    errors += not ok
                    continue
                url = spec["base"] + spec["first"]
                for _ in range(spec["pages"]):
                    if time.perf_counter() >= deadline:
                        break
                    try:
                        async with http.get(url) as r:
                            body = await r.read()
                            ok = r.status == 200
                    except (aiohttp.ClientError, TimeoutError):
                        ok, body = False, b""
                    done += ok
                    errors += not ok
                    if not ok:
                        break
                    data = json.loads(body)
                    if mode == "scanhub":
                        nxt = data.get("next_cursor")
                        if not nxt:
                            break
                        url = f"{spec['base']}{spec['first']}&cursor={nxt}"
                    else:
                        nxt = data.get("next_after")
                        if not nxt:
                            break
                        url = f"{spec['base']}{spec['first']}&after={nxt}"

        t0 = time.perf_counter()
        cpu0 = time.process_time()
        await asyncio.gather(*(reader(n) for n in range(clients)))
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    latencies.sort()
    return {
        "answered": done,
        "unanswered": errors,
        "seconds": elapsed,
        "per_s": done / elapsed,
        "client_cpu": cpu,
        "p50": latencies[len(latencies) // 2] if latencies else None,
    }


def _load_main(spec: dict[str, Any], conn: Connection) -> None:
    conn.send(asyncio.run(_load(spec)))


class Load:
    """A load generator in its own process: `Load(spec).start()`, then `.result()`."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def start(self) -> Load:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_load_main, args=(self.spec, child), daemon=True)
        self._proc.start()
        return self

    def result(self) -> dict[str, Any]:
        try:
            return self._conn.recv()  # type: ignore[no-any-return]
        finally:
            self._proc.join(10)


def run_loads(specs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run several load generators at once (each its own process) and wait for all."""
    loads = [Load(s).start() for s in specs]
    return [load.result() for load in loads]


# --- capacity ----------------------------------------------------------------------------------


def capacity(
    farm: SimFarm, ids: list[list[str]], *, seconds: float, generators: int = 2, clients: int = 64
) -> dict[str, Any]:
    """Status answers per second the farm serves to `generators` bare aiohttp load processes
    (each `clients` requests in flight), measured at the simulators; and the CPU each side
    used (to tell which was the bottleneck)."""
    urls = [
        f"{info['url']}/scans/{sid}"
        for info, k_ids in zip(farm.info, ids, strict=True)
        for sid in k_ids
    ]
    headers = {"Authorization": f"Bearer {farm.info[0]['token']}"}
    spec = {
        "mode": "urls",
        "urls": urls,
        "headers": headers,
        "clients": clients,
        "seconds": seconds,
    }
    # Warm up (connections, imports), then measure.
    run_loads([{**spec, "seconds": 0.5}])
    before, cpu0 = farm.requests(), farm.cpu()
    results = run_loads([spec] * generators)
    # The generators' own window (their start-up is outside it; the farm idles then).
    elapsed = max(r["seconds"] for r in results)
    answered = sum(r["answered"] for r in results)
    assert farm.requests() - before >= answered
    sim_cpu = farm.cpu() - cpu0
    return {
        "processes": farm.size,
        "generators": generators,
        "clients": clients,
        "seconds": seconds,
        "answers_per_s": answered / elapsed,
        "sim_cpu_share": sim_cpu / elapsed,  # cores the farm used
        "client_cpu_share": sum(r["client_cpu"] for r in results) / elapsed,
        "unanswered": sum(r["unanswered"] for r in results),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.simfarm")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args(argv)
    with SimFarm(args.processes) as farm:
        ids = [farm.seed(k, [("app", "sast")] * 200) for k in range(farm.size)]
        print(json.dumps(capacity(farm, ids, seconds=args.seconds), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
